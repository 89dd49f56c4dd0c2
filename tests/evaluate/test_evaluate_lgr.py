"""Tests of perturb_core.evaluate.lgr: hand-checked metrics, the JSON contract, every method in every regime."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from perturb_core.config import Settings
from perturb_core.errors import LLMError, UnknownNameError, ValidationError
from perturb_core.evaluate import LGR_METHODS, LGR_NON_LLM_METHODS, evaluate_lgr
from perturb_core.evaluate.lgr import METHODS, NON_LLM_METHODS, Runner
from perturb_core.llm import LLM
from perturb_core.retrieval import BASELINES, REGIMES, SELECTORS, lgr_index
from perturb_core.spec import MethodSpec
from perturb_core.testing.fake_openai import (
    FakeOpenAI,
    error_body,
    last_user_message,
    lgr_candidates,
    lgr_final_answer,
)
from perturb_core.testing.signatures import tiny_drugs, tiny_eval_dataset, tiny_graph

CONTRACT_METRICS = {"pearson", "cosine", "mae", "mse", "sign_accuracy", "r2", "n_queries", "mean_k_used"}
EXTRA_METRICS = {"r2_pred", "precision_at_k", "mrr", "fallbacks"}  # DESIGN.md: allowed extras
HIGHER_IS_BETTER = {
    "pearson": True,
    "cosine": True,
    "sign_accuracy": True,
    "r2": True,
    "mae": False,
    "mse": False,
}


def lgr_answer(request: dict[str, Any]) -> Any:
    """Answer with the first k candidates; fail (HTTP 500) for one anchor drug."""
    if "Anchor drug: Afatinib\n" in last_user_message(request):
        return (500, error_body("model crashed"))
    cands, k, _ = lgr_candidates(request)
    return lgr_final_answer(cands[:k], "related.")


@pytest.fixture(scope="module")
def tiny_kit() -> dict[str, Any]:
    """The drug table and graph of the tiny datasets, as ``evaluate_lgr`` keyword arguments."""
    return {"drugs": tiny_drugs(), "graph": tiny_graph()}


def test_per_query_metrics_match_hand_computation(tiny_kit: dict[str, Any]) -> None:
    ds = tiny_eval_dataset()
    res = evaluate_lgr(ds, regime="open-world", methods=["cell_mean", "drug_mean"], n_boot=200, **tiny_kit)
    x = np.asarray(ds.adata.X, dtype=np.float64).reshape(3, 5, 6)
    assert res.n_eval_genes == 6 and len(res.per_query) == 2 * 15
    pq = res.per_query.set_index(["method", "cell_line", "drug"])
    for ci, c in enumerate(["C1", "C2", "C3"]):
        for di, d in enumerate(["Afatinib", "Binimetinib", "Trametinib", "Tucidinostat", "Mysterium"]):
            truth = x[ci, di]
            others = np.delete(x[ci], di, axis=0)  # leave-one-out cell mean
            cell_pred = np.nanmean(others, axis=0)
            drug_pred = np.nanmean(np.delete(x[:, di], ci, axis=0), axis=0)
            for method, pred in (("cell_mean", cell_pred), ("drug_mean", drug_pred)):
                ok = ~np.isnan(truth) & ~np.isnan(pred)
                t, p = truth[ok], pred[ok]
                row = pq.loc[(method, c, d)]
                assert_allclose(row["pearson"], np.corrcoef(p, t)[0, 1], rtol=1e-5)
                assert_allclose(row["cosine"], p @ t / np.sqrt((p @ p) * (t @ t)), rtol=1e-5)
                assert_allclose(row["mae"], np.abs(p - t).mean(), rtol=1e-5)
                assert_allclose(row["mse"], ((p - t) ** 2).mean(), rtol=1e-5)
                assert_allclose(row["sign_accuracy"], (np.sign(p) == np.sign(t)).mean())
                assert_allclose(row["r2"], np.corrcoef(p, t)[0, 1] ** 2, rtol=1e-5)
    summ = res.summary.set_index(["method", "metric"])
    for method in ("cell_mean", "drug_mean"):
        rows = res.per_query[res.per_query["method"] == method]
        for metric in HIGHER_IS_BETTER:
            s = summ.loc[(method, metric)]
            assert_allclose(s["mean"], rows[metric].mean())
            assert s["ci_low"] <= s["mean"] <= s["ci_high"]


def test_contract_json(tiny_kit: dict[str, Any]) -> None:
    res = evaluate_lgr(
        tiny_eval_dataset(),
        regime="unseen-drug",
        methods="kg_mechanism,chem_knn",
        k=2,
        n_boot=50,
        test_fraction=0.4,
        **tiny_kit,
    )
    doc = res.to_dict()
    assert {"dataset", "regime", "k", "methods"} <= set(doc)
    assert doc["dataset"] == "tiny-eval" and doc["regime"] == "unseen-drug" and doc["k"] == 2
    assert list(doc["methods"]) == ["kg_mechanism", "chem_knn"]
    for m in doc["methods"].values():
        assert set(m) == CONTRACT_METRICS | EXTRA_METRICS
    assert doc["methods"]["chem_knn"]["mean_k_used"] == 2
    assert doc["held_out"] == list(res.split.held_out) and len(doc["held_out"]) == 2
    assert doc["split_id"] == res.split.split_id and doc["seed"] == 0
    assert set(doc["ci"]["kg_mechanism"]) == set(HIGHER_IS_BETTER) | {"r2_pred", "precision_at_k", "mrr"}
    assert res.per_query.columns[:7].tolist() == [
        "method",
        "cell_line",
        "drug",
        "k_used",
        "n_neighbours",
        "fallback",
        "error",
    ]
    assert res.table().shape == (2, 11)  # 7 regression + 2 retrieval metrics, n_queries, mean_k_used


def test_errors(tiny_kit: dict[str, Any]) -> None:
    ds = tiny_eval_dataset()
    with pytest.raises(UnknownNameError, match=r"unknown LGR method 'knn'; valid: llm, kg_mechanism"):
        evaluate_lgr(ds, regime="open-world", methods=["knn"], **tiny_kit)
    with pytest.raises(ValidationError, match="k must be"):
        evaluate_lgr(ds, regime="open-world", methods=["random"], k=0, **tiny_kit)
    with pytest.raises(ValidationError, match="max_queries"):
        evaluate_lgr(ds, regime="open-world", methods=["random"], max_queries=0, **tiny_kit)
    with pytest.raises(ValidationError, match="unknown regime"):
        evaluate_lgr(ds, regime="closed-world", methods=["random"], **tiny_kit)  # type: ignore[arg-type]
    with pytest.raises(LLMError, match="OPENAI_BASE_URL"):
        evaluate_lgr(ds, regime="open-world", methods=["llm"], **tiny_kit)
    assert set(LGR_NON_LLM_METHODS) == set(LGR_METHODS) - {"llm"}
    with pytest.raises(ValidationError, match="no method given; valid: llm"):
        evaluate_lgr(ds, regime="open-world", methods=" , ", **tiny_kit)
    with pytest.raises(
        UnknownNameError, match="^unknown aggregation 'median'; valid: mean, rank_weighted, residual$"
    ):
        evaluate_lgr(ds, regime="open-world", methods=["random"], aggregation="median", **tiny_kit)  # type: ignore[arg-type]


def test_methods_are_specs_whose_labels_come_from_the_selector_or_baseline() -> None:
    for name, spec in METHODS.items():
        assert isinstance(spec, MethodSpec) and isinstance(spec.fn, Runner) and spec.name == name
        source = {"selector": SELECTORS, "baseline": BASELINES}[spec.fn.kind][spec.fn.target]
        assert (spec.label, spec.definition, spec.needs_llm) == (
            source.label,
            source.definition,
            source.needs_llm,
        )
    assert METHODS["chem_knn_retrieval"].fn == Runner("selector", "chem_knn_retrieval")
    assert METHODS["chem_knn"].fn == Runner("baseline", "chem_knn")
    assert LGR_METHODS is METHODS and NON_LLM_METHODS == LGR_NON_LLM_METHODS
    assert [m for m, s in METHODS.items() if s.needs_llm] == ["llm"]
    with pytest.raises(TypeError):
        METHODS["mine"] = METHODS["random"]  # type: ignore[index]


def test_method_names_in_any_spelling_and_the_memo_reuse(tiny_kit: dict[str, Any]) -> None:
    ds = tiny_eval_dataset()
    res = evaluate_lgr(
        ds,
        regime="Unseen_Drug",
        methods="Chem-KNN-Retrieval, random, RANDOM",
        n_boot=20,
        **tiny_kit,  # type: ignore[arg-type]
    )
    assert res.methods == ("chem_knn_retrieval", "random") and res.regime == "unseen-drug"
    index = lgr_index(ds, **tiny_kit)  # the index evaluate_lgr built, from the dataset's memo
    assert len(index.split_memo) == 1 and len(index.tensor_memo) == 1
    again = evaluate_lgr(ds, regime="unseen-drug", methods=["random"], n_boot=20, **tiny_kit)
    assert len(index.split_memo) == 1 and again.split.split_id == res.split.split_id
    pd.testing.assert_frame_equal(
        again.per_query.reset_index(drop=True),
        res.per_query[res.per_query["method"] == "random"].reset_index(drop=True),
    )


@pytest.mark.realdata
@pytest.mark.parametrize("regime", REGIMES)
def test_every_method_runs_in_every_regime_and_oracle_beats_random(
    regime: str, real_data: Settings, fake_openai_server: FakeOpenAI, fake_llm_settings: Settings
) -> None:
    fake_openai_server.responder = lgr_answer
    llm = LLM.from_settings(fake_llm_settings, backoff_s=0.001, sleep=lambda s: None)
    res = evaluate_lgr(
        "tahoe",
        regime=regime,
        methods=list(LGR_METHODS),
        max_queries=60,
        n_boot=100,
        settings=real_data,
        llm=llm,
        concurrency=16,
    )
    doc = res.to_dict()
    assert list(doc["methods"]) == list(LGR_METHODS)
    for m, v in doc["methods"].items():
        assert v["n_queries"] == 60 and v["pearson"] is not None, m
    for metric, higher in HIGHER_IS_BETTER.items():
        o, r = doc["methods"]["oracle"][metric], doc["methods"]["random"][metric]
        assert (o > r) if higher else (o < r), (regime, metric, o, r)
    llm_rows = res.per_query[res.per_query["method"] == "llm"]
    failed = llm_rows["drug"] == "Afatinib"
    assert llm_rows.loc[failed, "error"].str.contains("HTTP 500").all()
    assert llm_rows.loc[failed, "fallback"].str.contains("chem_knn").all()
    assert llm_rows.loc[~failed, "error"].isna().all() and (llm_rows.loc[~failed, "k_used"] == 10).all()
    assert doc["failed"]["llm"] == int(failed.sum())
    if regime == "unseen-drug":  # held-out drugs have no response in another line: recorded fallback
        tk = res.per_query[res.per_query["method"] == "transcriptome_knn"]
        assert tk["fallback"].notna().all() and (tk["k_used"] == 0).all()


@pytest.mark.realdata
def test_llm_batch_second_run_makes_no_http_call_and_progress(
    real_data: Settings, fake_openai_server: FakeOpenAI, fake_llm_settings: Settings
) -> None:
    fake_openai_server.responder = lgr_answer
    llm = LLM.from_settings(fake_llm_settings, backoff_s=0.001, sleep=lambda s: None)
    seen: list[tuple[int, int]] = []
    kwargs: dict[str, Any] = {
        "regime": "unseen-cell-line",
        "methods": ["llm", "random"],
        "max_queries": 12,
        "n_boot": 20,
        "settings": real_data,
        "llm": llm,
    }
    first = evaluate_lgr("tahoe", progress=lambda d, t: seen.append((d, t)), **kwargs)
    n = fake_openai_server.n_requests
    assert 12 <= n <= 12 * 3
    assert seen[-1] == (24, 24) and all(t == 24 for _, t in seen)
    fake_openai_server.reset()
    second = evaluate_lgr("tahoe", **kwargs)
    ok = first.per_query["error"].isna()
    assert fake_openai_server.n_requests == int((~ok).sum()) * 3  # only failed prompts are asked again
    same = first.per_query.columns.drop("cache_hit")  # the second run reads the cache, by design
    pd.testing.assert_frame_equal(first.per_query.loc[ok, same], second.per_query.loc[ok, same])
    assert not first.per_query.loc[ok & (first.per_query["method"] == "llm"), "cache_hit"].any()
    assert second.per_query.loc[ok & (second.per_query["method"] == "llm"), "cache_hit"].all()
    rw = evaluate_lgr(
        "tahoe",
        regime="open-world",
        methods=["oracle"],
        max_queries=12,
        n_boot=20,
        settings=real_data,
        aggregation="rank_weighted",
    )
    mean = evaluate_lgr(
        "tahoe",
        regime="open-world",
        methods=["oracle"],
        max_queries=12,
        n_boot=20,
        settings=real_data,
        aggregation="mean",
    )
    assert rw.aggregation == "rank_weighted" and not np.allclose(rw.per_query["mse"], mean.per_query["mse"])


@pytest.mark.realdata
def test_a_small_user_import_runs_in_every_regime(real_data: Settings, tmp_path) -> None:
    from perturb_core.data.importer import import_dataset
    from perturb_core.data.registry import load_signatures

    (tmp_path / "processed").symlink_to(real_data.processed_dir)  # drug table and graph
    settings = real_data.with_(data_dir=tmp_path)
    obs = pd.DataFrame(
        {"cell_line": ["A"] * 3 + ["B"] * 3, "drug": ["Afatinib", "Trametinib", "Bortezomib"] * 2}
    )
    a = ad.AnnData(
        X=np.random.default_rng(0).normal(size=(6, 40)).astype(np.float32),
        obs=obs.set_axis([f"r{i}" for i in range(6)]),
    )
    a.var_names = [f"G{i}" for i in range(40)]
    a.write_h5ad(tmp_path / "mine.h5ad")
    import_dataset(tmp_path / "mine.h5ad", name="mine", settings=settings)
    ds = load_signatures("mine", settings)
    for regime in REGIMES:
        res = evaluate_lgr(ds, regime=regime, methods=LGR_NON_LLM_METHODS, n_boot=20, settings=settings)
        assert res.to_dict()["methods"]["kg_mechanism"]["n_queries"] >= 1


def test_too_small_a_dataset_is_a_clear_error(tmp_path: Path, tiny_kit: dict[str, Any]) -> None:
    from perturb_core.data.importer import import_dataset
    from perturb_core.data.registry import load_signatures

    settings = Settings(mirror=None, data_dir=tmp_path, cache_dir=tmp_path / "cache")  # nothing built
    a = ad.AnnData(
        X=np.ones((2, 5), np.float32),
        obs=pd.DataFrame({"cell_line": ["A", "A"], "drug": ["x", "y"]}, index=["r0", "r1"]),
    )
    a.write_h5ad(tmp_path / "two.h5ad")
    import_dataset(tmp_path / "two.h5ad", name="two", settings=settings)
    with pytest.raises(ValidationError, match="at least 3 training signatures per gene"):
        evaluate_lgr(
            load_signatures("two", settings),
            regime="open-world",
            methods=["random"],
            settings=settings,
            **tiny_kit,
        )


@pytest.mark.parametrize("regime", ["unseen-drug", "unseen-cell-line", "open-world"])
def test_tuning_uses_training_data_only(tiny_kit: dict[str, Any], regime: str) -> None:
    clean = tiny_eval_dataset()
    res = evaluate_lgr(
        clean, regime=regime, methods="transcriptome_knn,random,additive", tune=True, n_boot=20, **tiny_kit
    )
    table = res.tuning_table()
    assert set(table["method"]) == {"transcriptome_knn", "random"}  # baselines are not tuned
    assert table["k"].isin([5, 10, 20, 30]).all() and (table["n_cv_queries"] > 0).all()
    assert res.to_dict()["tuning"] and res.aggregation == ("mean" if regime == "unseen-drug" else "residual")
    if regime == "open-world":  # nested: one choice per fold of lines, from the other lines only
        assert len(table) == 2 * 3
        return
    noisy = tiny_eval_dataset()
    obs = noisy.adata.obs
    x = np.array(noisy.adata.X, copy=True)
    for c, d in res.split.test_pairs:
        row = np.flatnonzero((obs["cell_line"] == c).to_numpy() & (obs["drug"] == d).to_numpy())
        x[row] = np.random.default_rng(0).normal(scale=9.0, size=x[row].shape)
    noisy.adata.X = x
    again = evaluate_lgr(
        noisy, regime=regime, methods="transcriptome_knn,random,additive", tune=True, n_boot=20, **tiny_kit
    )
    pd.testing.assert_frame_equal(again.tuning_table(), table)
