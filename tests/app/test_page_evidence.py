"""AppTest of the Evidence graph (CORE) on the real data: graph, node pick, datasets, CORE-Reasoning, links."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from perturb_core.testing.fake_openai import FakeOpenAI

pytestmark = pytest.mark.realdata


def _node_box(at: AppTest):
    return next(s for s in at.selectbox if s.key and s.key.startswith("core_node_"))


def test_evidence_graph_renders_vote_prior_and_label(real_data, open_page) -> None:
    at = open_page("evidence")
    assert at.title[0].value == "Evidence graph"
    assert len(at.get("plotly_chart")) == 3  # the graph, the vote-vs-prior bars, the evidence mass bar
    shown = {m.label: m.value for m in at.metric}
    assert {"Evidence (+ / −)", "True label", "Final score", "Gene AUROC"} <= set(shown)
    assert 0.0 <= float(shown["Final score"]) <= 1.0
    items = next(d.value for d in at.dataframe if "side" in d.value.columns)
    assert set(items["side"]) <= {"positive", "negative", "unmeasured"}


def test_evidence_crossline_toggle_shows_crossline_items(real_data, open_page, assert_clean) -> None:
    at = open_page("evidence")
    at.toggle(key="core_crossline").set_value(True).run()
    assert_clean(at)
    items = next(d.value for d in at.dataframe if "side" in d.value.columns)
    assert set(items["kind"]) <= {"graph", "cross-line"} and "cross-line" in set(items["kind"])


def test_evidence_crossline_shows_the_same_knockdown_in_other_lines(
    real_data, open_with_query, assert_clean
) -> None:
    # EIF2B1 -> ATF4 (integrated stress response): ATF4 responded to EIF2B1 in the other lines' training labels
    link = {"dataset": "perturbqa-k562", "perturbation": "EIF2B1", "gene": "ATF4", "crossline": "1"}
    at = open_with_query("evidence", link)  # the link turns cross-line evidence on, and keeps it in the URL
    assert_clean(at)
    assert at.toggle(key="core_crossline").value is True
    assert at.query_params.get("crossline") in ("1", ["1"])
    items = next(d.value for d in at.dataframe if "side" in d.value.columns)
    same = items[items["relation_label"].str.startswith("same knock-down, other line")]
    assert len(same) >= 2 and set(same["kind"]) == {"cross-line"} and set(same["perturbation"]) == {"EIF2B1"}
    assert "positive" in set(same["side"])
    box = _node_box(at)
    label = next(o for o in box.options if o.startswith("EIF2B1 in "))  # e.g. "EIF2B1 in HEPG2 (positive)"
    line = label.split(" ")[2]
    box.select(f"gene:EIF2B1@{line}").run()
    assert any(f"**EIF2B1 in {line}**" in m.value for m in at.markdown)


def test_evidence_pick_a_node_shows_its_path(real_data, open_page, assert_clean) -> None:
    at = open_page("evidence")
    at.selectbox(key="core_pert_perturbqa-k562_de").select("AAMP").run()
    box = _node_box(at)
    evidence_node = next(
        o for o in box.options if "(unmeasured)" in o or "(positive)" in o or "(negative)" in o
    )
    node_id = "gene:" + evidence_node.split(" ")[0]
    box.select(node_id).run()
    assert_clean(at)
    assert any("●" in m.value and evidence_node.split(" ")[0] in m.value for m in at.markdown)
    assert any(c.value.startswith("AAMP →") for c in at.code)  # the relation path from the query


def test_evidence_switch_dataset_and_task(real_data, open_page, assert_clean) -> None:
    at = open_page("evidence", {"label_dataset": "tahoe-c32"})
    assert_clean(at)
    at.radio(key="core_task").set_value("dir").run()
    assert_clean(at)
    assert "Gene AUROC" in {m.label for m in at.metric}
    assert any(s.label.startswith("Perturbation p (drug)") for s in at.selectbox)


def test_evidence_core_reasoning_with_a_fake_llm(real_data, open_page, assert_clean) -> None:
    reply = "Probability: 0.72\nRationale: two related knock-downs changed this gene."
    with FakeOpenAI(lambda req: reply) as server:
        state = {"llm_overrides": {"llm_base_url": server.base_url, "llm_model": "fake-model"}}
        at = open_page("evidence", state)
        assert server.n_requests == 0  # never at the top level of a rerun
        next(b for b in at.button if b.label.startswith("Ask fake-model")).click().run()
        assert_clean(at)
        assert server.n_requests == 1
        assert {m.label: m.value for m in at.metric}["LLM probability"] == "0.720"
        assert any("two related knock-downs" in c.value for c in at.caption)


def test_evidence_llm_failure_is_an_error_with_the_fix(real_data, open_page) -> None:
    missing = (
        404,
        {"error": {"message": "model not found", "type": "invalid_request", "param": None, "code": None}},
    )
    with FakeOpenAI(lambda req: missing) as server:  # 404 is not retried: the test stays fast
        state = {"llm_overrides": {"llm_base_url": server.base_url, "llm_model": "fake-model"}}
        at = open_page("evidence", state)
        next(b for b in at.button if b.label.startswith("Ask fake-model")).click().run()
        assert not at.exception
        assert at.error and "falls back to CORE-Voting" in at.error[0].value


def test_a_link_with_an_unknown_name_warns_with_the_closest_names(
    real_data, open_with_query, assert_clean
) -> None:
    at = open_with_query(
        "evidence", {"dataset": "perturbqa-k562", "perturbation": "INTS11x", "gene": "LIMD2"}
    )
    assert_clean(at)
    assert any("Link parameter ignored" in w.value and "INTS11" in w.value for w in at.warning)


def test_a_link_opens_an_evidence_view(real_data, open_with_query, assert_clean) -> None:
    at = open_with_query("evidence", {"dataset": "perturbqa-k562", "perturbation": "ints1", "gene": "limd2"})
    assert_clean(at)
    assert any(m.value.startswith("**INTS1 → LIMD2**") for m in at.markdown)


def test_evidence_opens_on_a_test_pair_with_both_kinds_of_evidence(real_data, open_page) -> None:
    at = open_page("evidence")
    assert any(m.value.startswith("**INTS1 → LIMD2**") for m in at.markdown)
    shown = {m.label: (m.value, m.delta) for m in at.metric}
    assert shown["Evidence (+ / −)"][0] == "3 / 4" and shown["True label"][1] == "test pair"


def test_the_vote_formula_shows_its_unmeasured_term(real_data, open_page) -> None:
    at = open_page("evidence")
    formula = next(c.value for c in at.caption if c.value.startswith("Vote = P / (P + N + u·U)"))
    assert "unmeasured relative counts as" in formula


def test_switching_task_keeps_the_perturbation_and_gene(real_data, open_page, assert_clean) -> None:
    at = open_page("evidence")
    at.selectbox(key="core_pert_perturbqa-k562_de").select("AARS2").run()
    at.selectbox(key="core_gene_perturbqa-k562_de_AARS2").select("MT-ND5").run()
    at.radio(key="core_task").set_value("dir").run()
    assert_clean(at)
    assert at.selectbox(key="core_pert_perturbqa-k562_dir").value == "AARS2"
    assert at.selectbox(key="core_gene_perturbqa-k562_dir_AARS2").value == "MT-ND5"


def test_showcase_pair_draws_the_strongest_items_and_both_counts(real_data, open_with_query) -> None:
    at = open_with_query("evidence", {"dataset": "perturbqa-k562", "perturbation": "AARS2", "gene": "MT-ND5"})
    shown = {m.label: (m.value, m.delta) for m in at.metric}
    assert shown["Evidence (+ / −)"] == ("77 / 11", "569 unmeasured")
    assert any(c.value.startswith("Drawn: 8 of 77 positive; 8 of 11 negative; 8 of 569") for c in at.caption)
    items = next(d.value for d in at.dataframe if "side" in d.value.columns)
    assert (items["side"] == "positive").sum() == 77  # the full list is in the table


def test_the_search_box_finds_p_and_g_in_any_spelling(real_data, open_page, assert_clean) -> None:
    at = open_page("evidence")
    at.text_input(key="core_find_perturbqa-k562_de").input("aars-2 > mt nd5").run()
    assert_clean(at)
    assert any(m.value.startswith("**AARS2 → MT-ND5**") for m in at.markdown)


def test_drug_annotations_say_where_they_come_from(real_data, open_page, assert_clean) -> None:
    at = open_page("evidence", {"label_dataset": "tahoe-c32"})
    assert_clean(at)
    table = next(d.value for d in at.dataframe if "annotation from" in d.value.columns)
    assert set(table["annotation from"]) <= {
        "Tahoe-100M drug metadata table",
        "LINCS compound annotations",
        "none matched (no targets or mechanism)",
        "not in the drug table",
    }


def test_evidence_link_with_a_bad_crossline_value_is_warned(real_data, open_with_query) -> None:
    at = open_with_query("evidence", {"dataset": "perturbqa-k562", "crossline": "maybe"})
    assert not at.exception
    assert any("crossline = 'maybe' must be 1 or 0" in w.value for w in at.warning)
    assert at.toggle(key="core_crossline").value is False
    tahoe = open_with_query("evidence", {"dataset": "tahoe-c32", "crossline": "1"})
    assert not tahoe.exception
    assert any("PerturbQA lines only, not tahoe-c32" in w.value for w in tahoe.warning)
