"""AppTest of the Benchmarks page on the real data: a small LGR regime and a small CORE task."""

from __future__ import annotations

import pytest

from pages import _export as export
from perturb_core.evaluate.lgr import QUERY_METRICS
from perturb_core.metrics import METRICS

pytestmark = pytest.mark.realdata


def test_benchmarks_runs_a_small_lgr_regime(real_data, open_page, assert_clean) -> None:
    at = open_page("benchmarks")
    assert at.title[0].value == "Benchmarks"
    at.selectbox(key="bench_lgr_regime").select("unseen-drug")
    at.number_input(key="bench_lgr_maxq").set_value(20)
    at.multiselect(key="bench_lgr_methods").set_value(["drug_mean", "kg_mechanism", "random"])
    next(b for b in at.button if b.label == "Run on tahoe").click().run()
    assert_clean(at)
    table = next(d.value for d in at.dataframe if "Pearson r" in d.value.columns)
    assert list(table.index) == ["drug_mean", "kg_mechanism", "random"]
    assert all("[" in cell for cell in table["Pearson r"])  # mean [ci_low, ci_high]
    assert len(at.get("plotly_chart")) == len(QUERY_METRICS)  # one bar chart per metric
    labels = [b.proto.label for b in at.get("download_button")]
    tables = [x for x in labels if x not in ("SVG", "PNG")]
    assert len(tables) == 3  # summary CSV, all tables, JSON
    exported = len(QUERY_METRICS) if export.browser_path() else 0  # no browser: a note instead
    assert labels.count("SVG") == labels.count("PNG") == exported  # each chart's SVG and PNG
    result = at.session_state["bench_lgr"]  # the LGRResult itself
    assert result.table().at["kg_mechanism", "n_queries"] == 20
    assert result.to_dict()["methods"]["kg_mechanism"]["n_queries"] == 20


def test_benchmarks_runs_a_small_core_task(real_data, open_page, assert_clean) -> None:
    at = open_page("benchmarks")
    at.number_input(key="bench_core_maxp").set_value(1500)
    at.multiselect(key="bench_core_methods").set_value(["gene_frequency", "core_voting"])
    next(b for b in at.button if b.label == "Run on perturbqa-k562").click().run()
    assert_clean(at)
    table = next(d.value for d in at.dataframe if "AUROC" in d.value.columns)
    assert list(table.index) == ["gene_frequency", "core_voting"]
    assert all("[" in cell for cell in table["Per-gene AUROC (macro)"])
    keys = {c.proto.id for c in at.get("plotly_chart")}
    assert len(keys) == 8  # six metric bars, calibration curve, per-gene AUROC histogram
    result = at.session_state["bench_core"].table()  # the COREResult's method x metric table
    assert result.at["gene_frequency", "macro_gene_auroc"] == pytest.approx(0.5)
    assert 0 < result.at["core_voting", "n_pairs"] <= 1500
    # labels, directions and units come from the metric registry: rates have no "better" direction
    heads = {m.value.split("**")[1]: m.value for m in at.markdown if m.value.startswith("**")}
    for name in ("predicted_positive_rate", "true_positive_rate"):
        spec = METRICS[name]
        assert spec.higher_is_better is None
        assert heads[spec.label] == f"**{spec.label}**"  # no direction where neither is better
        assert "higher is better" not in heads[spec.label]
    assert heads["AUROC"] == "**AUROC** (higher is better)"
    assert heads["Brier score"] == "**Brier score** (lower is better)"
    captions = [c.value for c in at.caption]
    for name in ("auroc", "predicted_positive_rate", "true_positive_rate", "brier"):
        assert any(
            c.startswith(METRICS[name].definition) and f"Unit: {METRICS[name].unit}." in c for c in captions
        )
    assert "True positive rate" not in {str(c) for d in at.dataframe for c in d.value.columns}
    assert {"Positive share (prevalence)", "Pairs", "Genes in macro AUROC"} <= set(table.columns)


def test_benchmarks_shows_how_the_llm_calls_went(
    real_data, open_page, assert_clean, fake_openai_server, monkeypatch
) -> None:
    from perturb_core.testing.fake_openai import FAKE_API_KEY, FAKE_MODEL, lgr_candidates, lgr_final_answer

    def answer(request):  # the first two candidates, plus a name outside the pool
        names, _, _ = lgr_candidates(request)
        return lgr_final_answer([*names[:2], "Not A Drug"])

    fake_openai_server.responder = answer
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai_server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_API_KEY)
    monkeypatch.setenv("PERTURB_CORE_LLM_MODEL", FAKE_MODEL)
    at = open_page("benchmarks")
    at.selectbox(key="bench_lgr_regime").select("unseen-drug")
    at.number_input(key="bench_lgr_maxq").set_value(4)
    at.multiselect(key="bench_lgr_methods").set_value(["cell_mean", "llm"])
    next(b for b in at.button if b.label == "Run on tahoe").click().run()
    assert_clean(at)
    quality = next(d.value for d in at.dataframe if "out-of-pool names" in d.value.columns)
    assert list(quality.index) == ["llm"]
    row = quality.loc["llm"]
    assert row["answered"] == 1.0 and row["parse failures"] == 0.0
    assert row["out-of-pool names"] == pytest.approx(1 / 3, abs=1e-4)  # rounded in llm_stats
    assert row["mean k_used"] == 2.0
