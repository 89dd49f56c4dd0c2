"""AppTest of the Signature query on the real data: a MEK signature recovers MEK inhibitors; bad input."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

pytestmark = pytest.mark.realdata


def _submit(at):
    return next(b for b in at.button if "Score every signature" in b.label)


def test_query_mek_example_ranks_mek_inhibitors_first(real_data, open_page, assert_clean) -> None:
    at = open_page("query")
    assert at.title[0].value == "Signature query"
    assert [s.label for s in at.sidebar.selectbox] == [
        "Signatures (LGR)",
        "Labels (CORE)",
    ]  # under the router
    assert len(at.title) == 1
    next(b for b in at.button if b.label.startswith("Example")).click().run()
    at.text_area(key="query_down").set_value(at.text_area(key="query_down").value + "\nNOTAGENE1")
    _submit(at).click().run()  # form widgets: values are sent with the submit
    assert_clean(at)
    assert "NOTAGENE1" in at.warning[0].value  # unknown genes are listed
    table = next(d.value for d in at.dataframe if "score" in d.value.columns)
    assert table["score"].is_monotonic_decreasing and (table["score"] < 0).any()  # reversals included
    top = table.head(20)
    assert (top["moa"] == "MEK inhibitor").mean() >= 0.5
    link = urlsplit(table["open"].iloc[0])
    assert link.path == "retrieval" and parse_qs(link.query)["drug"] == [table["drug"].iloc[0]]
    assert len(at.get("plotly_chart")) == 1  # mean WTCS per drug over all lines


def test_query_one_cell_line_and_ranked_list(real_data, open_page, assert_clean) -> None:
    at = open_page("query")
    at.selectbox(key="query_line_tahoe").select("A498").run()
    at.radio(key="query_mode").set_value("Ranked list").run()
    genes = ["EGR1", "FOS", "DUSP6", "SPRY4", "ETV4", "ETV5", "MYC", "CCND1", "PHLDA1", "IER3"]
    at.text_area(key="query_ranked").set_value("\n".join([*genes, "GAPDH", "ACTB"]))
    at.number_input(key="query_n").set_value(5)
    _submit(at).click().run()
    assert_clean(at)
    table = next(d.value for d in at.dataframe if "score" in d.value.columns)
    assert set(table["cell_line"]) == {"A498"}
    assert table["n_up"].max() <= 5 and table["n_down"].max() <= 5


@pytest.mark.parametrize(
    ("up", "down", "message"),
    [
        ("", "", "both gene lists are empty"),
        ("NOPE1, NOPE2", "NOPE3", "none of the 3 genes is measured"),
        ("EGR1", "egr1", "in both the up and the down list"),
    ],
)
def test_query_bad_input_one_message_nothing_stored(
    real_data, open_page, up: str, down: str, message: str
) -> None:
    at = open_page("query")
    next(b for b in at.button if b.label.startswith("Example")).click().run()
    _submit(at).click().run()
    assert "query_result" in at.session_state  # a good query first
    at.text_area(key="query_up").set_value(up)
    at.text_area(key="query_down").set_value(down)
    _submit(at).click().run()
    assert not at.exception
    assert len(at.error) == 1 and message in at.error[0].value
    assert "query_result" not in at.session_state  # the failed query leaves nothing behind
    assert not any("score" in d.value.columns for d in at.dataframe)


def test_query_retrieval_link_opens_that_drug(real_data, open_with_query, assert_clean) -> None:
    at = open_with_query("retrieval", {"dataset": "tahoe", "cell_line": "SW 1271", "drug": "Trametinib"})
    assert_clean(at)
    assert at.selectbox(key="lgr_cell_tahoe").value == "SW 1271"
    assert at.selectbox(key="lgr_drug_tahoe_SW 1271").value == "Trametinib"
