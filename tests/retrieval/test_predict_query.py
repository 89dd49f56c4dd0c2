"""One explained LGR prediction: top genes, neighbours and their evidence, baselines, the LLM selector.

The tiny-data tests need nothing on disk; the ``realdata`` ones run on Tahoe.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import numpy as np
import pytest

from perturb_core.config import Settings
from perturb_core.data.registry import SignatureDataset
from perturb_core.errors import LLMError, UnknownNameError, ValidationError
from perturb_core.llm import LLM, read_jsonl
from perturb_core.retrieval import (
    BASELINES,
    NEIGHBOUR_LOG,
    SELECTORS,
    TOP_GENE_COLUMNS,
    QueryDrug,
    predict_query,
    query_split,
    top_genes,
)
from perturb_core.testing.fake_openai import FakeOpenAI, error_body, lgr_candidates
from perturb_core.testing.signatures import tiny_dataset, tiny_drugs, tiny_graph


def lgr_answer(request: dict[str, Any]) -> str:
    """A well-formed answer: the last k candidates in reverse order, plus one out-of-pool name."""
    cands, k, _ = lgr_candidates(request)
    lines = [f"{i}. {c}: acts on a related pathway." for i, c in enumerate(reversed(cands[-k:]), 1)]
    return (
        "Thinking about mechanisms.\n<Final Answer>\n"
        + "\n".join(lines)
        + "\n99. Aspirin: not a candidate.\n</Final Answer>"
    )


def make_llm(settings: Settings, **changes: Any) -> LLM:
    return LLM.from_settings(settings.with_(**changes), backoff_s=0.01, sleep=lambda s: None)


@pytest.fixture(scope="module")
def tiny() -> SignatureDataset:
    return tiny_dataset()


@pytest.fixture(scope="module")
def tiny_kit() -> dict[str, Any]:
    """The drug table and graph of the tiny dataset, as ``predict_query`` keyword arguments."""
    return {"drugs": tiny_drugs(), "graph": tiny_graph()}


# --------------------------------------------------------------------------- top genes


def test_top_genes_hand_values() -> None:
    genes = ["A", "B", "C", "D", "E", "F"]
    pred = np.array([2.0, -1.0, 0.5, np.nan, -3.0, 1.0])
    truth = np.array([1.0, 0.2, 3.0, 5.0, -2.0, -0.5])  # D has no prediction: not ranked
    top = top_genes(genes, pred, truth, n=2)
    assert list(top.columns) == [
        "direction",
        "rank",
        "predicted_gene",
        "predicted",
        "observed_gene",
        "observed",
        "predicted_in_both",
        "observed_in_both",
    ]
    # up: predicted A (2.0), F (1.0); observed C (3.0), A (1.0) -> A in both lists
    # down: predicted E (-3.0), B (-1.0); observed E (-2.0), F (-0.5) -> E in both lists
    assert top.to_dict(orient="records") == [
        {"direction": "up", "rank": 1, "predicted_gene": "A", "predicted": 2.0, "observed_gene": "C",
         "observed": 3.0, "predicted_in_both": True, "observed_in_both": False},
        {"direction": "up", "rank": 2, "predicted_gene": "F", "predicted": 1.0, "observed_gene": "A",
         "observed": 1.0, "predicted_in_both": False, "observed_in_both": True},
        {"direction": "down", "rank": 1, "predicted_gene": "E", "predicted": -3.0, "observed_gene": "E",
         "observed": -2.0, "predicted_in_both": True, "observed_in_both": True},
        {"direction": "down", "rank": 2, "predicted_gene": "B", "predicted": -1.0, "observed_gene": "F",
         "observed": -0.5, "predicted_in_both": False, "observed_in_both": False},
    ]  # fmt: skip
    # more genes asked than comparable: all five, in both directions; ties keep gene order
    everything = top_genes(genes, pred, truth, n=50)
    assert len(everything) == 10 and set(everything["rank"]) == {1, 2, 3, 4, 5}
    tied = top_genes(["X", "Y", "Z"], np.ones(3), np.array([1.0, 2.0, 3.0]), n=2)
    assert list(tied["predicted_gene"]) == ["X", "Y", "X", "Y"]


@pytest.mark.parametrize(
    ("genes", "pred", "truth", "n", "message"),
    [
        (
            ["A", "B"],
            [1.0, 2.0],
            [1.0, 2.0],
            0,
            "number of top genes n must be an integer in 1..10000; got 0",
        ),
        (["A", "B"], [1.0, 2.0], [1.0, 2.0], 2.5, "got 2.5"),
        (["A", "B"], [1.0, 2.0, 3.0], [1.0, 2.0], 1, "must be 1-D and aligned"),
    ],
)
def test_top_genes_errors(
    genes: list[str], pred: list[float], truth: list[float], n: Any, message: str
) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        top_genes(genes, np.array(pred), np.array(truth), n=n)


# --------------------------------------------------------------------------- predict_query on tiny data


@pytest.mark.parametrize("selector", [s for s, spec in SELECTORS.items() if not spec.needs_llm])
def test_predict_query_on_tiny_data_explains_every_non_llm_selector(
    tiny: SignatureDataset, tiny_kit: dict[str, Any], selector: str
) -> None:
    ex = predict_query(tiny, cell_line="c1", drug="trametinib", selector=selector, k=2, **tiny_kit)
    doc = json.loads(json.dumps(ex.to_dict(n_top_genes=2)))
    assert doc["cell_line"] == "C1" and doc["drug"] == "Trametinib" and doc["selector"] == selector
    assert doc["selector_label"] == SELECTORS[selector].label and doc["pool_size"] == 4
    assert set(doc["baselines"]) == set(BASELINES) and doc["n_eval_genes"] == 6
    assert doc["query"]["targets"] == ["MAP2K1", "MAP2K2"] and doc["query"]["has_structure"]
    names = [n["name"] for n in doc["neighbours"]]
    assert len(names) == len(set(names)) == ex.n_neighbours and "Trametinib" not in names
    assert all(n["justification"] for n in doc["neighbours"])
    assert abs(sum(n["weight"] for n in doc["neighbours"]) - 1.0) < 1e-9
    assert len(doc["top_genes"]) == 4 and list(doc["top_genes"][0]) == list(TOP_GENE_COLUMNS)
    # the typed parts the app reads are what the JSON says
    assert isinstance(ex.query, QueryDrug) and doc["query"] == ex.query.to_dict()
    assert ex.query.targets == ("MAP2K1", "MAP2K2") and ex.query.has_structure
    assert (ex.pool_size, ex.n_eval_genes) == (doc["pool_size"], doc["n_eval_genes"])
    assert doc["neighbours"] == [n.to_dict() for n in ex.neighbours]


def test_kg_mechanism_states_its_evidence_on_tiny_data(
    tiny: SignatureDataset, tiny_kit: dict[str, Any]
) -> None:
    ex = predict_query(tiny, cell_line="C1", drug="Trametinib", selector="kg_mechanism", k=3, **tiny_kit)
    first, second = ex.neighbours[:2]
    assert first.name == "Binimetinib" and first.source == "selector"
    assert "shares targets MAP2K1, MAP2K2" in first.justification
    assert "same mechanism (MEK inhibitor)" in first.justification
    assert first.mechanism == ("MEK/ERK inhibition",) and first.programs == ("RTK/MAPK signalling",)
    assert second.name == "Afatinib"
    assert "targets MAP2K1 and EGFR share pathway 'MAPK signalling' (5 genes)" in second.justification


def test_predict_query_options_in_any_spelling_and_errors(
    tiny: SignatureDataset, tiny_kit: dict[str, Any]
) -> None:
    ex = predict_query(
        tiny,
        cell_line="C2",
        drug="Afatinib",
        selector="Chem-KNN",
        aggregation="Rank_Weighted",  # type: ignore[arg-type]
        regime="Unseen Drug",  # type: ignore[arg-type]
        baselines=["CELL_MEAN"],
        **tiny_kit,
    )
    assert (ex.selector, ex.aggregation, ex.regime) == ("chem_knn_retrieval", "rank_weighted", "unseen-drug")
    assert list(ex.baselines) == ["cell_mean"]
    with pytest.raises(UnknownNameError, match="^unknown baseline 'mean'; valid: cell_mean, drug_mean"):
        predict_query(
            tiny, cell_line="C2", drug="Afatinib", selector="random", baselines=["mean"], **tiny_kit
        )
    with pytest.raises(UnknownNameError, match="^unknown aggregation 'median'"):
        predict_query(
            tiny, cell_line="C2", drug="Afatinib", selector="random", aggregation="median", **tiny_kit
        )  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="'Tucidinostat' was not profiled in C3"):
        predict_query(tiny, cell_line="C3", drug="Tucidinostat", selector="random", **tiny_kit)
    other = query_split(tiny, "open-world", "C1", "Afatinib")
    with pytest.raises(ValidationError, match="is not a test pair of split"):
        predict_query(tiny, cell_line="C2", drug="Afatinib", selector="random", split=other, **tiny_kit)


def test_llm_selector_on_tiny_data(
    tiny: SignatureDataset,
    tiny_kit: dict[str, Any],
    fake_openai_server: FakeOpenAI,
    fake_llm_settings: Settings,
) -> None:
    fake_openai_server.responder = lgr_answer
    ex = predict_query(
        tiny,
        cell_line="C1",
        drug="Afatinib",
        selector="llm",
        k=2,
        settings=fake_llm_settings,
        llm=make_llm(fake_llm_settings),
        baselines=(),
        **tiny_kit,
    )
    assert fake_openai_server.n_requests == 1 and ex.k_used == 2 and ex.filtered == ("Aspirin",)
    assert [n.name for n in ex.neighbours] == ["Tucidinostat", "Trametinib"]  # the last two, reversed
    assert [n.score for n in ex.neighbours] == [2.0, 1.0]
    assert [n.justification for n in ex.neighbours] == ["acts on a related pathway."] * 2
    assert read_jsonl(fake_llm_settings.cache_dir / NEIGHBOUR_LOG)[0]["drug"] == "Afatinib"


# --------------------------------------------------------------------------- predict_query on real data


@pytest.mark.realdata
@pytest.mark.parametrize("selector", ["kg_mechanism", "chem_knn", "transcriptome_knn", "random", "oracle"])
def test_predict_query_explains_every_non_llm_selector(real_data: Settings, selector: str) -> None:
    # the four baselines are scored once (kg_mechanism); the others check one to stay fast
    baselines = None if selector == "kg_mechanism" else ("cell_mean",)
    ex = predict_query(
        "tahoe",
        cell_line="c32",
        drug="trametinib",
        selector=selector,
        k=5,
        settings=real_data,
        baselines=baselines,
    )
    doc = ex.to_dict()
    for key in (
        "dataset",
        "cell_line",
        "drug",
        "selector",
        "selector_label",
        "k",
        "k_used",
        "aggregation",
        "regime",
        "neighbours",
        "filtered",
        "fallback",
        "metrics",
        "baselines",
        "llm",
    ):
        assert key in doc
    assert doc["cell_line"] == "C32" and doc["drug"] == "Trametinib" and doc["k_used"] == 5
    assert doc["llm"] is None and doc["fallback"] is None and doc["filtered"] == []
    assert set(doc["metrics"]) == {
        "pearson",
        "cosine",
        "mae",
        "mse",
        "sign_accuracy",
        "r2",
        "r2_pred",
        "precision_at_k",
        "mrr",
    }
    assert set(doc["baselines"]) == (
        {"cell_mean", "drug_mean", "chem_knn", "pca_ridge", "pool_mean", "additive"}
        if baselines is None
        else {"cell_mean"}
    )
    assert all(set(v) == set(doc["metrics"]) - {"precision_at_k", "mrr"} for v in doc["baselines"].values())
    names = [n["name"] for n in doc["neighbours"]]
    assert len(names) == len(set(names)) == 5 and "Trametinib" not in names
    for n in doc["neighbours"]:
        assert set(n) >= {
            "name",
            "rank",
            "justification",
            "mechanism",
            "programs",
            "targets",
            "similarity",
            "own_pearson",
            "loo_delta_pearson",
            "score",
        }
        assert n["justification"]
    assert ex.prediction.shape == ex.truth.shape == (len(ex.genes),) == (2000,)


@pytest.mark.realdata
def test_explanation_top_genes_match_its_arrays_and_json(real_data: Settings) -> None:
    ex = predict_query(
        "tahoe",
        cell_line="C32",
        drug="Trametinib",
        selector="chem_knn",
        k=5,
        settings=real_data,
        baselines=(),
    )
    top = ex.top_genes(3)
    assert list(top["direction"]) == ["up"] * 3 + ["down"] * 3
    ok = np.isfinite(ex.prediction) & np.isfinite(ex.truth)
    genes = np.asarray(ex.genes)[ok]
    up = top[top["direction"] == "up"]
    assert up["predicted_gene"].iloc[0] == genes[np.argmax(ex.prediction[ok])]
    assert up["observed"].iloc[0] == ex.truth[ok].max()
    assert top[top["direction"] == "down"]["predicted"].iloc[0] == ex.prediction[ok].min()
    doc = json.loads(json.dumps(ex.to_dict(n_top_genes=3)))  # plain JSON types
    assert doc["top_genes"] == top.to_dict(orient="records")
    assert len(ex.to_dict()["top_genes"]) == 20  # 10 per direction by default


@pytest.mark.realdata
def test_kg_mechanism_states_its_evidence(real_data: Settings) -> None:
    ex = predict_query(
        "tahoe",
        cell_line="C32",
        drug="Trametinib",
        selector="kg_mechanism",
        k=3,
        settings=real_data,
        baselines=(),
    )
    first = ex.neighbours[0]
    assert first.name == "Binimetinib"
    assert (
        "shares targets MAP2K1, MAP2K2" in first.justification
        and "same mechanism (MEK inhibitor)" in first.justification
    )
    assert first.mechanism == ("MEK/ERK inhibition",) and first.programs == ("RTK/MAPK signalling",)
    assert ex.selector_label.endswith("(rule-based, no LLM)")
    oracle = predict_query(
        "tahoe", cell_line="C32", drug="Trametinib", selector="oracle", k=3, settings=real_data, baselines=()
    )
    assert oracle.metrics["pearson"] > 0.7 and all(n.own_pearson > 0.5 for n in oracle.neighbours)


@pytest.mark.realdata
def test_predict_query_errors(real_data: Settings) -> None:
    with pytest.raises(UnknownNameError, match="valid: llm, kg_mechanism"):
        predict_query("tahoe", cell_line="C32", drug="Trametinib", selector="gpt", settings=real_data)
    with pytest.raises(ValidationError, match="k must be"):
        predict_query("tahoe", cell_line="C32", drug="Trametinib", selector="random", k=0, settings=real_data)
    with pytest.raises(UnknownNameError, match="closest known"):
        predict_query("tahoe", cell_line="C-32x", drug="Trametinib", selector="random", settings=real_data)
    with pytest.raises(LLMError, match="OPENAI_BASE_URL.*kg_mechanism"):
        predict_query("tahoe", cell_line="C32", drug="Trametinib", selector="llm", settings=real_data)


# --------------------------------------------------------------------------- the LLM selector on real data (fake server)


@pytest.mark.realdata
def test_llm_selector_end_to_end_and_cache(
    real_data: Settings, fake_openai_server: FakeOpenAI, fake_llm_settings: Settings
) -> None:
    fake_openai_server.responder = lgr_answer
    llm = make_llm(fake_llm_settings)
    ex = predict_query(
        "tahoe",
        cell_line="C32",
        drug="Afatinib",
        selector="llm",
        k=4,
        settings=real_data,
        llm=llm,
        baselines=(),
    )
    assert fake_openai_server.n_requests == 1
    assert ex.k_used == 4 and ex.filtered == ("Aspirin",) and ex.fallback is None
    assert ex.llm is not None and not ex.llm.cache_hit and ex.llm.raw_answer.startswith("Thinking")
    assert [n.justification for n in ex.neighbours] == ["acts on a related pathway."] * 4
    assert ex.to_dict()["llm"]["prompt"][1]["content"].startswith("The transcriptional response")
    request = fake_openai_server.requests[0]
    assert request["temperature"] == 0.0
    cands, k, anchor = lgr_candidates(request)
    assert anchor == "Afatinib" and "Afatinib" not in cands and k == 4 and len(cands) == len(ex.pool)
    again = predict_query(
        "tahoe",
        cell_line="C32",
        drug="Afatinib",
        selector="llm",
        k=4,
        settings=real_data,
        llm=llm,
        baselines=(),
    )
    assert fake_openai_server.n_requests == 1 and again.llm.cache_hit
    assert [n.name for n in again.neighbours] == [n.name for n in ex.neighbours]
    records = read_jsonl(fake_llm_settings.cache_dir / NEIGHBOUR_LOG)
    assert len(records) == 2 and records[1]["cache_hit"]
    rec = records[0]
    assert rec["cell_line"] == "C32" and rec["drug"] == "Afatinib" and rec["k_used"] == 4
    assert rec["filtered"] == ["Aspirin"] and rec["model"] == "fake-model" and len(rec["prompt_hash"]) == 12
    assert (
        rec["neighbours"][0].keys() == {"molecule", "score", "justification"}
        and rec["raw_text"]
        and rec["time"]
    )


@pytest.mark.realdata
def test_llm_nonsense_answer_falls_back_to_chemistry(
    real_data: Settings, fake_openai_server: FakeOpenAI, fake_llm_settings: Settings
) -> None:
    fake_openai_server.responder = lambda req: (
        "<Final Answer>\n1. Unobtainium: trust me\n2. Vibranium: sure\n</Final Answer>"
    )
    ex = predict_query(
        "tahoe",
        cell_line="C32",
        drug="Afatinib",
        selector="llm",
        k=5,
        settings=real_data,
        llm=make_llm(fake_llm_settings),
        baselines=(),
    )
    assert ex.k_used == 0 and ex.filtered == ("Unobtainium", "Vibranium")
    assert "named no pool drug" in ex.fallback and "5 chem_knn" in ex.fallback
    assert [n.source for n in ex.neighbours] == ["hybrid_chem"] * 5
    # one valid name only: padded up to k with chemistry
    fake_openai_server.responder = lambda req: (
        "<Final Answer>\n1. Neratinib maleate: EGFR too\n</Final Answer>"
    )
    ex = predict_query(
        "tahoe",
        cell_line="C32",
        drug="Afatinib",
        selector="llm",
        k=4,
        settings=real_data,
        llm=make_llm(fake_llm_settings),
        baselines=(),
    )
    assert ex.k_used == 1 and ex.n_neighbours == 4 and "padded with 3 chem_knn" in ex.fallback
    assert ex.neighbours[0].source == "selector" and ex.neighbours[0].justification == "EGFR too"


@pytest.mark.realdata
def test_llm_429_then_success(
    real_data: Settings, fake_openai_server: FakeOpenAI, fake_llm_settings: Settings
) -> None:
    calls = {"n": 0}

    def flaky(req: dict[str, Any]) -> Any:
        calls["n"] += 1
        return (429, error_body("rate limited", "rate_limit_error")) if calls["n"] == 1 else lgr_answer(req)

    fake_openai_server.responder = flaky
    ex = predict_query(
        "tahoe",
        cell_line="C32",
        drug="Afatinib",
        selector="llm",
        k=3,
        settings=real_data,
        llm=make_llm(fake_llm_settings),
        baselines=(),
    )
    assert fake_openai_server.n_requests == 2 and ex.k_used == 3 and ex.llm.error is None


@pytest.mark.realdata
def test_llm_server_errors_and_timeouts_are_recorded_not_raised(
    real_data: Settings, fake_openai_server: FakeOpenAI, fake_llm_settings: Settings
) -> None:
    fake_openai_server.responder = lambda req: (500, error_body("boom"))
    ex = predict_query(
        "tahoe",
        cell_line="C32",
        drug="Afatinib",
        selector="llm",
        k=3,
        settings=real_data,
        llm=make_llm(fake_llm_settings),
        baselines=(),
    )
    assert fake_openai_server.n_requests == 3  # 1 + 2 retries
    assert "HTTP 500" in ex.llm.error and ex.llm.raw_answer is None
    assert (
        ex.fallback.startswith("LLM call failed")
        and ex.n_neighbours == 3
        and ex.metrics["pearson"] is not None
    )
    fake_openai_server.reset()

    def slow(req: dict[str, Any]) -> str:
        time.sleep(0.6)
        return lgr_answer(req)

    fake_openai_server.responder = slow
    llm = make_llm(fake_llm_settings, llm_timeout=0.2, llm_max_retries=1)
    ex = predict_query(
        "tahoe",
        cell_line="C32",
        drug="Afatinib",
        selector="llm",
        k=3,
        settings=real_data,
        llm=llm,
        baselines=(),
    )
    assert "timed out" in ex.llm.error and "chem_knn" in ex.fallback
