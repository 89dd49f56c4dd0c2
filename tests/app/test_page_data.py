"""AppTest of the Data page on the real data."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.realdata


def test_data_page_shows_every_tab(real_data, open_page) -> None:
    at = open_page("data")
    assert at.title[0].value == "Data"
    assert [t.label for t in at.tabs][1:] == ["Drugs", "Labels: perturbqa-k562", "Knowledge graph"]
    assert len(at.dataframe) >= 5  # per-line summary, drugs, labels, graph nodes and edges
    graph_edges = at.dataframe[-1].value
    assert "regulates" in set(graph_edges["relation"])
    assert not graph_edges.set_index("relation").loc["regulates", "used by default"]
