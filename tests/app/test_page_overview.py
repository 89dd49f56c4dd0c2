"""AppTest of the Overview page on the real data (and of every page before the data is built)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.realdata


def test_overview_lists_datasets_and_links(real_data, open_page) -> None:
    at = open_page("overview")
    assert at.title[0].value == "Perturbation reasoning explorer"
    assert len(at.dataframe) == 2  # signature and label datasets
    sig = at.dataframe[0].value
    assert {"tahoe", "sciplex", "openproblems"} <= set(sig["dataset"])
    assert int(sig.loc[sig["dataset"] == "tahoe", "cell lines"].iloc[0]) == 40
    labels = at.dataframe[1].value
    assert "perturbqa-k562" in set(labels["dataset"])
    assert len(at.metric) == 4
    assert not at.warning  # the data is built


def test_sidebar_choice_is_shared_across_pages(real_data, open_page, assert_clean) -> None:
    at = open_page("overview")
    at.selectbox(key="sig_dataset").select("sciplex").run()
    at.selectbox(key="label_dataset").select("tahoe-c32").run()
    at.switch_page("pages/data.py").run()
    assert_clean(at)
    assert at.session_state["sig_dataset"] == "sciplex"
    assert at.session_state["label_dataset"] == "tahoe-c32"
    assert any("sciplex" in t.label for t in at.tabs)
    assert at.metric[0].value == "3"  # sci-Plex 3 has three cell lines


@pytest.mark.parametrize("page", ["overview", "retrieval", "evidence", "benchmarks", "data"])
def test_without_built_data_every_page_says_how_to_build_it(
    page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, open_page
) -> None:
    monkeypatch.setenv("PERTURB_CORE_DATA_DIR", str(tmp_path / "empty"))
    at = open_page(page)
    assert at.warning and "python -m perturb_core data build" in at.warning[0].value
    if page == "overview":
        assert any(b.label == "Build the data now" for b in at.button)


def test_overview_offers_examples_that_open_as_links(real_data, open_page) -> None:
    at = open_page("overview")
    assert any(s.value == "Try an example" for s in at.subheader)
    links = [p for p in at.get("page_link") if "INTS1" in p.proto.label]
    assert (
        links
        and "perturbation=INTS1" in links[0].proto.query_string
        and "gene=LIMD2" in links[0].proto.query_string
    )
