"""AppTest of the shared sidebar: dataset choices survive the pages' own URL updates; one name per cell line."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.realdata


@pytest.mark.parametrize(
    ("page", "key", "other"),
    [("evidence", "label_dataset", "perturbqa-rpe1"), ("retrieval", "sig_dataset", "sciplex")],
)
def test_a_dataset_picked_in_the_sidebar_sticks_on_a_page_opened_without_link(
    real_data, open_page, assert_clean, page: str, key: str, other: str
) -> None:
    at = open_page(page)  # no URL parameters: the page then writes its own (dataset=...) into the URL
    at.sidebar.selectbox(key=key).select(other).run()
    assert_clean(at)
    assert at.sidebar.selectbox(key=key).value == other, "the first change of dataset was undone"
    at.run()
    assert at.sidebar.selectbox(key=key).value == other


def test_a_tahoe_label_dataset_reads_as_the_cell_line_every_page_names(real_data, open_page) -> None:
    at = open_page("overview")
    box = at.sidebar.selectbox(key="label_dataset")
    labels = dict(zip(box.options, box.options, strict=True))
    assert "C32 · Tahoe drugs" in labels and "NCI-H23 · Tahoe drugs" in labels
    assert "K562 · PerturbQA CRISPRi" in labels


def test_a_second_link_in_the_same_session_is_followed(real_data, open_with_query, assert_clean) -> None:
    """An Overview example opens its view even after the visitor used the page (and picked another dataset)."""
    at = open_with_query("evidence", {"dataset": "perturbqa-k562", "perturbation": "AARS2", "gene": "MT-ND5"})
    at.sidebar.selectbox(key="label_dataset").select("perturbqa-rpe1").run()
    for k in list(at.query_params):
        del at.query_params[k]
    at.query_params.update({"dataset": "perturbqa-k562", "perturbation": "INTS1", "gene": "LIMD2"})
    at.run()
    assert_clean(at)
    assert at.sidebar.selectbox(key="label_dataset").value == "perturbqa-k562"
    assert any(m.value.startswith("**INTS1 → LIMD2**") for m in at.markdown)
