"""AppTest of the Retrieval explorer (LGR) on the real data: default query, inputs, LLM selector, links."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from perturb_core.testing.fake_openai import FakeOpenAI

pytestmark = pytest.mark.realdata


def _neighbours(at: AppTest):
    return next(d.value for d in at.dataframe if "own_pearson" in d.value.columns)


def test_retrieval_default_query_renders_everything(real_data, open_page) -> None:
    at = open_page("retrieval")
    assert at.title[0].value == "Retrieval explorer"
    assert [m.label for m in at.metric][:6] == ["Pearson r", "Cosine", "MAE", "MSE", "Sign accuracy", "R²"]
    assert all(m.help for m in at.metric[:6])  # every tile carries its definition
    neigh = _neighbours(at)
    assert len(neigh) == 10
    assert {"rank", "name", "own_pearson", "loo_delta_pearson", "targets", "score"} <= set(neigh.columns)
    assert any("**Why each neighbour**" in m.value for m in at.markdown)  # justifications in full
    assert len(at.get("plotly_chart")) == 1  # predicted vs observed
    assert len(at.get("image")) == 1  # RDKit structures of the query and its neighbours
    baselines = next(d.value for d in at.dataframe if "pearson" in d.value.columns)
    # all four baselines by default (PCA + ridge is answered from cached cross-products)
    assert {"cell_mean", "drug_mean", "chem_knn", "pca_ridge"} <= set(baselines.index)
    assert baselines.loc["pca_ridge", ["pearson", "mse"]].notna().all()
    # the baselines need no opt-in switch; the only switch (off) opens the pathway enrichment
    assert [(t.key, t.value) for t in at.toggle] == [("lgr_enrichment", False)]
    at.toggle(key="lgr_enrichment").set_value(True).run()
    assert not at.exception and not at.error
    assert "Pathway enrichment: predicted vs observed" in [h.value for h in at.subheader]
    # top genes come from QueryExplanation.top_genes: 10 up, 10 down, ✓ = in both lists
    tops = [d.value for d in at.dataframe if "predicted Δ" in d.value.columns]
    assert len(tops) == 2 and all(len(t) == 10 for t in tops)
    up = tops[0]
    assert list(up["predicted Δ"]) == sorted(up["predicted Δ"], reverse=True)
    shared = sum(str(g).endswith(" ✓") for g in up["predicted"])
    assert any(f"{shared} of the top 10 up-regulated genes are in both lists" in c.value for c in at.caption)


def test_retrieval_choose_cell_line_drug_and_selector(real_data, open_page, assert_clean, texts) -> None:
    at = open_page("retrieval")
    at.selectbox(key="lgr_cell_tahoe").select("NCI-H23").run()
    at.selectbox(key="lgr_drug_tahoe_NCI-H23").select("Trametinib").run()
    assert_clean(at)
    assert at.subheader[0].value == "Trametinib in NCI-H23"
    kg = _neighbours(at)
    assert "Trametinib" not in set(kg["name"])  # never its own neighbour
    at.selectbox(key="lgr_selector").select("chem_knn_retrieval").run()
    assert_clean(at)
    chem = _neighbours(at)
    assert chem["similarity"].is_monotonic_decreasing  # chemistry ranks by Tanimoto
    assert "Tanimoto" in texts(at)
    at.slider(key="lgr_k").set_value(5).run()
    assert len(_neighbours(at)) == 5


def test_retrieval_llm_selector_without_endpoint_explains_the_fix(real_data, open_page) -> None:
    at = open_page("retrieval")
    at.selectbox(key="lgr_selector").select("llm").run()
    assert not at.exception
    assert at.warning and "OPENAI_BASE_URL" in at.warning[0].value
    assert not any(b.label.startswith("Ask the LLM") for b in at.button)


def test_retrieval_llm_selector_shows_prompt_answer_and_cache(real_data, open_page, assert_clean) -> None:
    answer = (
        "<Final Answer>\n1. Trametinib: MEK inhibitor acting on the same RTK/MAPK axis.\n"
        "2. Binimetinib: another MEK inhibitor.\n3. Wonderdrug: not a real candidate.\n</Final Answer>"
    )
    with FakeOpenAI(lambda req: answer) as server:
        state = {"llm_overrides": {"llm_base_url": server.base_url, "llm_model": "fake-model"}}
        at = open_page("retrieval", state)
        at.selectbox(key="lgr_selector").select("llm").run()
        assert not at.metric  # nothing is asked before the button
        assert server.n_requests == 0
        ask = next(b for b in at.button if b.label.startswith("Ask the LLM"))
        ask.click().run()
        assert_clean(at)
        assert server.n_requests == 1
        assert set(_neighbours(at)["name"][:2]) == {"Trametinib", "Binimetinib"}
        shown = {m.label: m.value for m in at.metric}
        assert shown["k used"] == "2 / 10"
        assert shown["Cache"] == "miss"
        assert any("Wonderdrug" in str(m.value) for m in at.markdown)  # filtered item
        assert any("<Final Answer>" in c.value for c in at.code)  # the raw answer
        next(b for b in at.button if b.label.startswith("Ask the LLM")).click().run()
        assert {m.label: m.value for m in at.metric}["Cache"] == "hit"
        assert server.n_requests == 1


def test_a_link_opens_a_retrieval_view_with_any_spelling(real_data, open_with_query) -> None:
    at = open_with_query(
        "retrieval", {"cell_line": "nci h23", "drug": "TRAMETINIB", "selector": "chem_knn", "k": "5"}
    )
    assert not at.warning, [w.value for w in at.warning]
    assert at.subheader[0].value == "Trametinib in NCI-H23"
    assert len(_neighbours(at)) == 5


def test_a_link_with_the_old_chem_knn_selector_name_resolves_with_a_note(real_data, open_with_query) -> None:
    at = open_with_query("retrieval", {"cell_line": "C32", "selector": "chem_knn"})
    assert at.selectbox(key="lgr_selector").value == "chem_knn_retrieval"
    assert any("now 'chem_knn_retrieval'" in c.value for c in at.caption)


def test_unknown_link_parameters_warn_one_by_one(real_data, open_with_query) -> None:
    params = {
        "dataset": "tahoe-xyz",
        "selector": "psychic",
        "regime": "sideways",
        "k": "99",
        "aggregation": "max",
    }
    at = open_with_query("retrieval", params)
    shown = " ".join(w.value for w in at.warning)
    for bad in ("'tahoe-xyz'", "'psychic'", "'sideways'", "'99'", "'max'"):
        assert bad in shown, (bad, shown)
    assert "Link parameter ignored" in shown


def test_the_search_box_takes_the_apps_name_rules(real_data, open_page, assert_clean) -> None:
    at = open_page("retrieval")
    at.text_input(key="lgr_find_tahoe").input("c 32").run()
    assert_clean(at)
    assert at.selectbox(key="lgr_cell_tahoe").value == "C32"
    at.text_input(key="lgr_find_tahoe").input("C-32 > trametinib").run()
    assert at.subheader[0].value == "Trametinib in C32"


def test_a_failed_llm_call_is_labelled_as_the_fallback_everywhere(real_data, open_page) -> None:
    refused = (401, {"error": {"message": "bad key", "type": "auth", "param": None, "code": None}})
    with FakeOpenAI(lambda req: refused) as server:
        state = {"llm_overrides": {"llm_base_url": server.base_url, "llm_model": "fake-model"}}
        at = open_page("retrieval", state)
        at.selectbox(key="lgr_selector").select("llm").run()
        next(b for b in at.button if b.label.startswith("Ask the LLM")).click().run()
    assert not at.exception
    heads = [m.value for m in at.markdown if m.value.startswith("**Metrics of the")]
    assert heads and "fallback" in heads[0] and "LLM (OpenAI" not in heads[0]
    table = next(d.value for d in at.dataframe if "pearson" in d.value.columns)
    assert table.index[0].startswith("chem_knn_retrieval (fallback for llm)")
    assert not any("<Final Answer>" in w.value for w in at.warning)  # no answer: no parsing warning


def test_identical_baseline_rows_are_flagged_in_the_table(real_data, open_page) -> None:
    at = open_page("retrieval")
    at.selectbox(key="lgr_regime").select("unseen-drug").run()
    table = next(d.value for d in at.dataframe if "pearson" in d.value.columns)
    notes = dict(zip(table.index, table["note"], strict=True))
    if "identical to cell_mean" not in notes["drug_mean"]:  # the default query's drug may be a training drug
        pytest.skip("drug_mean did not fall back on this query")
    assert "identical to cell_mean" in notes["drug_mean"]
    # and in full under the table, where a narrow window cannot cut it off
    assert any("**drug_mean**: identical to cell_mean" in m.value for m in at.markdown)


def test_best_per_metric_is_said_in_full_under_the_baselines(real_data, open_page) -> None:
    at = open_page("retrieval")
    table = next(d.value for d in at.dataframe if "pearson" in d.value.columns)
    line = next(m.value for m in at.markdown if m.value.startswith("Best per metric: "))
    for method, best in table["best in"].items():
        if best:
            assert f"**{method}**: {best}" in line
