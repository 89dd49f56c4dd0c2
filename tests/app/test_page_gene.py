"""AppTest of the Gene view on the real data: EGR1 end to end, Ensembl ids, links, bad input."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

pytestmark = pytest.mark.realdata


def test_gene_view_egr1_answers_which_perturbations_move_it(real_data, open_page) -> None:
    at = open_page("gene")
    assert at.title[0].value == "Gene view"
    assert [s.label for s in at.sidebar.selectbox] == [
        "Signatures (LGR)",
        "Labels (CORE)",
    ]  # under the router
    assert len(at.title) == 1
    assert len(at.get("plotly_chart")) == 1  # the drug x cell line heatmap
    shown = {m.label: m.value for m in at.metric}
    assert int(shown["Signatures measuring it"].replace(",", "")) > 3000
    per_drug = next(d.value for d in at.dataframe if "n_lines" in d.value.columns)
    assert per_drug["mean"].is_monotonic_decreasing and len(per_drug) > 100
    kd = next(d.value for d in at.dataframe if "evidence" in d.value.columns)
    assert set(kd["split"]) <= {"train", "test"} and set(kd["direction"]) <= {"up", "down", ""}
    link = urlsplit(kd["evidence"].iloc[0])
    assert link.path == "evidence"
    q = parse_qs(link.query)
    assert q["gene"] == ["EGR1"] and q["dataset"][0].startswith("perturbqa-") and q["task"] == ["de"]
    auroc = next(d.value for d in at.dataframe if "n_test" in d.value.columns)
    assert set(auroc["line"]) <= {"K562", "RPE1", "HEPG2", "JURKAT"}
    assert any("GO terms" in c.value for c in at.caption)


def test_gene_view_accepts_an_ensembl_id_and_any_case(real_data, open_page, assert_clean) -> None:
    at = open_page("gene")
    at.text_input(key="gene_query").set_value("ensg00000120738").run()  # EGR1
    assert_clean(at)
    assert "EGR1" in at.code[-1].value  # the command-line twin names the resolved symbol


def test_gene_view_from_a_link(real_data, open_with_query, assert_clean) -> None:
    at = open_with_query("gene", {"gene": "dusp6"})
    assert_clean(at)
    assert "DUSP6" in at.code[-1].value


@pytest.mark.parametrize(("text", "message"), [("NOTAGENE123", "unknown gene"), ("", None)])
def test_gene_view_bad_input_gets_one_clear_message(
    real_data, open_page, text: str, message: str | None
) -> None:
    at = open_page("gene")
    at.text_input(key="gene_query").set_value(text).run()
    assert not at.exception
    if message:
        assert len(at.error) == 1 and message in at.error[0].value and "closest known" in at.error[0].value
    else:
        assert not at.error and any("Type a gene" in i.value for i in at.info)
    assert not at.get("plotly_chart")


def test_gene_view_gene_not_measured_in_the_signatures(real_data, open_page, assert_clean) -> None:
    at = open_page("gene")
    at.text_input(key="gene_query").set_value("MYOD1").run()  # a graph gene outside Tahoe's 13,435 columns
    assert_clean(at)
    assert any("not among the measured genes of tahoe" in i.value for i in at.info)
    assert not at.get("plotly_chart")


def test_gene_view_evidence_link_opens_that_pair(real_data, open_with_query, assert_clean) -> None:
    # the link of EGR1's first responding knock-down (HepG2, POU3F1) as the Gene view builds it
    at = open_with_query(
        "evidence", {"dataset": "perturbqa-hepg2", "task": "de", "perturbation": "POU3F1", "gene": "EGR1"}
    )
    assert_clean(at)
    assert at.selectbox(key="core_pert_perturbqa-hepg2_de").value == "POU3F1"
    assert at.selectbox(key="core_gene_perturbqa-hepg2_de_POU3F1").value == "EGR1"
