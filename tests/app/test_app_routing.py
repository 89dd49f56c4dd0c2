"""Every page runs under ``app.py``'s router, even as the first request of a server process.

Streamlit keeps a legacy mode for apps with a ``pages/`` folder beside the entrypoint: until
the process's first ``st.navigation`` call, a deep link runs the page file on its own. AppTest
starts every run in that state (it re-detects the ``pages/`` folder before each run), so each
run here is what a fresh server does with a deep link. ``pages/_widgets.route_through_app``
answers it with public API only (it runs the entrypoint, whose ``st.navigation`` ends the
legacy mode); these tests break loudly if a Streamlit upgrade changes either side of that.
"""

from __future__ import annotations

import pytest

from pages import _widgets

pytestmark = pytest.mark.realdata

PAGES = list(_widgets.PAGES)  # every page the router knows


@pytest.mark.parametrize("page", PAGES)
def test_a_page_opened_directly_gets_the_router_and_sidebar_once(real_data, open_page, page: str) -> None:
    at = open_page(page)
    assert [s.label for s in at.sidebar.selectbox] == ["Signatures (LGR)", "Labels (CORE)"], (
        f"pages/{page}.py did not run under app.py's router: no shared sidebar"
    )
    assert len(at.title) == 1, (
        f"pages/{page}.py rendered {len(at.title)} times: the unrouted run did not stop"
    )


def test_streamlit_still_runs_a_pages_file_on_its_own_before_st_navigation(
    real_data, open_page, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_widgets, "route_through_app", lambda: None)
    at = open_page("data")
    assert at.title[0].value == "Data"
    assert not at.sidebar.selectbox, (
        "Streamlit no longer runs a pages/ file on its own before the first st.navigation call "
        "(its legacy pages/ directory mode is gone or changed). pages/_widgets.route_through_app() "
        "is then no longer needed: remove it, its call in header() and this test."
    )
