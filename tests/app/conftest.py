"""Shared AppTest helpers for the page tests, exposed as fixtures (test modules never import each other).

Each page test runs ``app.py`` (router + shared sidebar) and switches to one page, as a user
would. Data, graph and derived tables are cached per process, so only the first test pays
for loading them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "app.py")
TIMEOUT = 90


def _assert_clean(at: AppTest) -> None:
    """No exception and no error box on the page."""
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _open_page(page: str, state: dict | None = None) -> AppTest:
    """Run the app, set session state, switch to ``pages/<page>.py`` and run it; the page must be clean."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for k, v in (state or {}).items():
        at.session_state[k] = v
    at.run()
    at.switch_page(f"pages/{page}.py").run()
    _assert_clean(at)
    return at


def _open_with_query(page: str, params: dict[str, str]) -> AppTest:
    """Open ``pages/<page>.py`` from a link with these query parameters (no exception allowed)."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for k, v in params.items():
        at.query_params[k] = v
    at.run()
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _texts(at: AppTest) -> str:
    """All markdown, captions, info, warnings and successes as one string."""
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [i.value for i in at.info] + [w.value for w in at.warning] + [s.value for s in at.success]
    return "\n".join(map(str, parts))


@pytest.fixture
def app_path() -> str:
    """The app's entrypoint, ``app.py``."""
    return APP


@pytest.fixture
def assert_clean() -> Callable[[AppTest], None]:
    """``assert_clean(at)``: no exception and no error box on the page."""
    return _assert_clean


@pytest.fixture
def open_page() -> Callable[..., AppTest]:
    """``open_page(page, state=None)``: the app switched to ``pages/<page>.py``, checked clean."""
    return _open_page


@pytest.fixture
def open_with_query() -> Callable[[str, dict[str, str]], AppTest]:
    """``open_with_query(page, params)``: the page opened from a link with query parameters."""
    return _open_with_query


@pytest.fixture
def texts() -> Callable[[AppTest], str]:
    """``texts(at)``: every markdown, caption, info, warning and success of the page as one string."""
    return _texts
