"""Tests of ``python -m perturb_core lgr ...`` (in-process through ``perturb_core.cli.main``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from perturb_core.cli import main
from perturb_core.config import Settings
from perturb_core.testing.fake_openai import (
    FAKE_API_KEY,
    FAKE_MODEL,
    FakeOpenAI,
    lgr_candidates,
    lgr_final_answer,
)

CONTRACT_METRICS = {"pearson", "cosine", "mae", "mse", "sign_accuracy", "r2", "n_queries", "mean_k_used"}
EXTRA_METRICS = {"r2_pred", "precision_at_k", "mrr", "fallbacks"}  # DESIGN.md: allowed extras


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["lgr", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.realdata
def test_evaluate_json_contract_and_csv(
    real_data: Settings, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    csv = tmp_path / "rows.csv"
    code, out, _ = run(
        capsys, "evaluate", "--dataset", "tahoe", "--regime", "unseen-cell-line", "--methods", "kg_mechanism,cell_mean,oracle",
        "--k", "5", "--seed", "1", "--max-queries", "25", "--n-boot", "50", "--out", str(csv), "--json", "--quiet",
    )  # fmt: skip
    assert code == 0
    doc = json.loads(out)
    assert (
        doc["dataset"] == "tahoe"
        and doc["regime"] == "unseen-cell-line"
        and doc["k"] == 5
        and doc["seed"] == 1
    )
    assert list(doc["methods"]) == ["kg_mechanism", "cell_mean", "oracle"]
    for m in doc["methods"].values():
        assert set(m) == CONTRACT_METRICS | EXTRA_METRICS and m["n_queries"] == 25
    assert doc["methods"]["cell_mean"]["mean_k_used"] is None and doc["methods"]["oracle"]["mean_k_used"] == 5
    rows = pd.read_csv(csv)
    assert len(rows) == 75 and {"method", "cell_line", "drug", "k_used", "fallback", "pearson", "r2"} <= set(
        rows.columns
    )
    assert {"r2_pred", "precision_at_k", "mrr", "k", "similarity_power"} <= set(rows.columns)
    assert doc["aggregation"] == "residual"  # the unseen-cell-line default
    assert doc["methods"]["oracle"]["precision_at_k"] == 1.0 and doc["methods"]["cell_mean"]["mrr"] is None


@pytest.mark.realdata
def test_evaluate_aggregations_baselines_and_weights(
    real_data: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ("--regime", "unseen-cell-line", "--max-queries", "30", "--n-boot", "20", "--json", "--quiet")
    docs = {}
    for agg in ("mean", "residual"):
        code, out, _ = run(
            capsys, "evaluate", "--methods", "transcriptome_knn,additive,pool_mean,residual_oracle",
            "--aggregation", agg, "--similarity-power", "4", *common,
        )  # fmt: skip
        assert code == 0
        docs[agg] = json.loads(out)
        assert docs[agg]["aggregation"] == agg and docs[agg]["similarity_power"] == 4.0
    mean, resid = docs["mean"]["methods"], docs["residual"]["methods"]
    assert resid["transcriptome_knn"]["pearson"] > mean["transcriptome_knn"]["pearson"]
    assert (
        resid["additive"] == mean["additive"] and resid["additive"]["pearson"] > mean["pool_mean"]["pearson"]
    )
    code, _, err = run(capsys, "evaluate", "--methods", "random", "--aggregation", "median", *common)
    assert code == 2 and "unknown aggregation 'median'; valid: mean, rank_weighted, residual" in err


@pytest.mark.realdata
def test_evaluate_table_and_unknown_method(real_data: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys,
        "evaluate",
        "--regime",
        "open-world",
        "--methods",
        "random",
        "--max-queries",
        "10",
        "--n-boot",
        "20",
    )
    assert code == 0 and out.splitlines()[0].startswith("tahoe open-world k=10") and "random" in out
    code, out, err = run(capsys, "evaluate", "--regime", "open-world", "--methods", "random,gpt4", "--json")
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "error: unknown LGR method 'gpt4'; valid: llm, kg_mechanism"
    )


@pytest.mark.realdata
def test_predict_json(real_data: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "predict",
        "--dataset",
        "tahoe",
        "--cell-line",
        "nci h23",
        "--drug",
        "Binimetinib",
        "--selector",
        "kg_mechanism",
        "--k",
        "4",
        "--json",
    )
    assert code == 0
    doc = json.loads(out)
    assert doc["cell_line"] == "NCI-H23" and doc["drug"] == "Binimetinib" and doc["k_used"] == 4
    assert doc["neighbours"][0]["name"] == "Trametinib" and "MAP2K1" in doc["neighbours"][0]["justification"]
    assert doc["llm"] is None and set(doc["baselines"]) == {
        "cell_mean",
        "drug_mean",
        "chem_knn",
        "pca_ridge",
        "pool_mean",
        "additive",
    }
    top = doc["top_genes"]  # the page's "top genes, predicted vs observed" table, as records
    assert [(r["direction"], r["rank"]) for r in top] == [("up", i) for i in range(1, 11)] + [
        ("down", i) for i in range(1, 11)
    ]
    assert set(top[0]) == {
        "direction",
        "rank",
        "predicted_gene",
        "predicted",
        "observed_gene",
        "observed",
        "predicted_in_both",
        "observed_in_both",
    }
    up = [r for r in top if r["direction"] == "up"]
    assert [r["predicted"] for r in up] == sorted((r["predicted"] for r in up), reverse=True)
    assert [r["observed"] for r in up] == sorted((r["observed"] for r in up), reverse=True)
    shared = {r["predicted_gene"] for r in up} & {r["observed_gene"] for r in up}
    assert {r["predicted_gene"] for r in up if r["predicted_in_both"]} == shared


@pytest.mark.realdata
def test_predict_text_lists_top_genes(real_data: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "predict", "--cell-line", "C32", "--drug", "Trametinib", "--selector", "chem_knn", "--k", "3",
        "--top-genes", "2",
    )  # fmt: skip
    assert code == 0
    lines = out.splitlines()
    i = lines.index("top 2 up-regulated genes, predicted vs observed (* = in both lists):")
    assert lines[i + 1].lstrip().startswith("1. ") and lines[i + 2].lstrip().startswith("2. ")
    assert lines[i + 3] == "top 2 down-regulated genes, predicted vs observed (* = in both lists):"
    assert "pca_ridge" in out
    code, _, err = run(capsys, "predict", "--cell-line", "C32", "--drug", "Trametinib", "--selector", "random",
                       "--top-genes", "0", "--json")  # fmt: skip
    assert code == 2 and "number of top genes n must be an integer in 1..10000; got 0" in err


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--selector", "psychic"], "unknown selector 'psychic'; valid: llm, kg_mechanism"),
        (["--selector", "random", "--k", "0"], "k must be an integer in 1..1000"),
        (["--selector", "llm"], "set OPENAI_BASE_URL"),
    ],
)
def test_predict_errors(
    real_data: Settings, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, _, err = run(capsys, "predict", "--cell-line", "C32", "--drug", "Trametinib", *argv)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


@pytest.mark.realdata
def test_predict_llm_via_environment(
    real_data: Settings,
    capsys: pytest.CaptureFixture[str],
    fake_openai_server: FakeOpenAI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def answer(request: dict[str, Any]) -> str:
        names, k, _ = lgr_candidates(request)
        return lgr_final_answer(names[:k], "similar.")

    fake_openai_server.responder = answer
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai_server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_API_KEY)
    monkeypatch.setenv("PERTURB_CORE_LLM_MODEL", FAKE_MODEL)
    argv = ("predict", "--cell-line", "C32", "--drug", "Afatinib", "--selector", "llm", "--k", "3", "--json")
    code, out, _ = run(capsys, *argv)
    doc = json.loads(out)
    assert (
        code == 0 and doc["k_used"] == 3 and doc["llm"]["model"] == FAKE_MODEL and not doc["llm"]["cache_hit"]
    )
    assert (
        doc["llm"]["raw_answer"].startswith("<Final Answer>") and doc["llm"]["prompt"][0]["role"] == "system"
    )
    assert FAKE_API_KEY not in out
    code, out, _ = run(capsys, *argv)
    assert json.loads(out)["llm"]["cache_hit"] and fake_openai_server.n_requests == 1


@pytest.mark.realdata
def test_selectors_and_mechanisms(real_data: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "selectors", "--json")
    doc = json.loads(out)
    assert (
        code == 0
        and "oracle" in doc["selectors"]
        and doc["methods"]["chem_knn_retrieval"]["runs"] == "chem_knn_retrieval"
    )
    code, out, _ = run(capsys, "mechanisms", "--dataset", "tahoe", "--json")
    assert json.loads(out)["n_drugs"] == 110
    code, out, _ = run(capsys, "mechanisms", "--drug", "tucidinostat")
    assert code == 0 and "HDAC inhibition" in out and "epigenetic or proteostasis stress" in out


def test_cli_regime_choices_match_the_core() -> None:
    from perturb_core.cli import lgr as cli_lgr
    from perturb_core.retrieval import REGIMES

    assert tuple(cli_lgr._REGIMES) == tuple(REGIMES)  # kept literal so `--help` needs no heavy imports


def test_selectors_json_is_read_from_the_registries(capsys: pytest.CaptureFixture[str]) -> None:
    from perturb_core.evaluate.lgr import METHODS
    from perturb_core.retrieval import SELECTORS

    code, out, _ = run(capsys, "selectors", "--json")
    doc = json.loads(out)
    assert code == 0
    assert doc["selectors"] == {
        s: {"label": v.label, "definition": v.definition} for s, v in SELECTORS.items()
    }
    assert doc["methods"]["chem_knn"] == {
        "kind": "baseline",
        "runs": "chem_knn",
        "label": METHODS["chem_knn"].label,
        "needs_llm": False,
    }
    assert doc["methods"]["llm"]["kind"] == "selector" and doc["methods"]["llm"]["needs_llm"]
    code, out, _ = run(capsys, "selectors")
    assert code == 0 and "kg_mechanism" in out and "chem_knn_retrieval" in out


# Hostile numbers (issue 10, defect 12): refused at the boundary with their range, exit 2, one line.
_SEED_RANGE = "seed must be an integer in 0..4294967295 (0 <= seed < 2**32)"
_N_BOOT_RANGE = "n_boot must be an integer in 1..100000"
_K_RANGE = "k must be an integer in 1..1000"
_PREDICT = ["predict", "--cell-line", "C32", "--drug", "Trametinib", "--selector", "random"]
_EVALUATE = ["evaluate", "--regime", "open-world", "--methods", "random", "--max-queries", "10"]


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([*_PREDICT, "--seed", "-1"], f"{_SEED_RANGE}; got -1"),
        ([*_PREDICT, "--seed", str(2**64)], f"{_SEED_RANGE}; got {2**64}"),
        ([*_PREDICT, "--seed", str(2**32)], f"{_SEED_RANGE}; got {2**32}"),
        ([*_PREDICT, "--k", "0"], f"{_K_RANGE}"),
        ([*_PREDICT, "--k", str(10**9)], f"{_K_RANGE}"),
        ([*_EVALUATE, "--seed", "-1"], f"{_SEED_RANGE}; got -1"),
        ([*_EVALUATE, "--seed", str(2**64)], f"{_SEED_RANGE}; got {2**64}"),
        ([*_EVALUATE, "--n-boot", str(10**9)], f"{_N_BOOT_RANGE}"),
        ([*_EVALUATE, "--n-boot", "0"], f"{_N_BOOT_RANGE}"),
        ([*_EVALUATE, "--k", str(10**9)], f"{_K_RANGE}"),
        ([*_EVALUATE, "--k", "-3"], f"{_K_RANGE}"),
    ],
    ids=lambda v: " ".join(v[-2:]) if isinstance(v, list) else None,
)
def test_hostile_numbers_are_refused_with_their_range(
    real_data: Settings, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.realdata
def test_evaluate_text_table_shows_llm_fallbacks(
    real_data: Settings,
    capsys: pytest.CaptureFixture[str],
    fake_openai_server: FakeOpenAI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_openai_server.responder = lambda request: "I would rather not say."  # no <Final Answer>: fallback
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai_server.base_url)
    monkeypatch.setenv("PERTURB_CORE_LLM_MODEL", FAKE_MODEL)
    argv = (
        "evaluate",
        "--regime",
        "unseen-drug",
        "--methods",
        "llm,random",
        "--max-queries",
        "3",
        "--n-boot",
        "10",
    )
    code, out, _ = run(capsys, *argv)
    assert code == 0 and "fallbk" in out
    llm_row = next(line for line in out.splitlines() if line.startswith("llm "))
    random_row = next(line for line in out.splitlines() if line.startswith("random "))
    assert llm_row.split()[-1] == "3" and random_row.split()[-1] == "0"
    assert "note: llm: 3 of 3 queries fell back" in out and "those rows are not llm results" in out
