"""Tests of the additive and pool-mean baselines, residual aggregation, similarity weights, and that no
test delta reaches any non-oracle prediction."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from perturb_core.data.registry import SignatureDataset
from perturb_core.errors import ValidationError
from perturb_core.metrics import retrieval_quality
from perturb_core.retrieval import (
    AGGREGATIONS,
    BASELINES,
    DEFAULT_AGGREGATION,
    SELECTORS,
    LGRIndex,
    SelectOptions,
    SplitData,
    aggregate,
    default_aggregation,
    make_split,
    predict_baseline,
    select_neighbours,
    split_data,
    weights,
)

ORACLES = ("oracle", "residual_oracle")


def _grid(sd: SplitData) -> tuple[np.ndarray, np.ndarray]:
    return sd.deltas.astype(np.float64), ~np.isnan(sd.deltas)


def test_additive_and_pool_mean_by_hand(tiny: SignatureDataset, index: LGRIndex) -> None:
    split = make_split(tiny, "unseen-cell-line", seed=0)
    sd = split_data(index, split)
    y, _ = _grid(sd)
    c = int(np.flatnonzero(split.test.any(1))[0])
    d = int(np.flatnonzero(split.test[c])[0])
    train = split.train
    # drug term: mean over training lines (all other than c); line term: mean over c's pool; grand mean
    drug_term = np.nanmean(np.where(train[:, d, None], y[:, d], np.nan), axis=0)
    pool = index.present[c] & split.pool_drugs
    pool[d] = False
    line_term = np.nanmean(np.where(pool[:, None], y[c], np.nan), axis=0)
    grand = np.nanmean(np.where(train[:, :, None], y, np.nan).reshape(-1, y.shape[2]), axis=0)
    add = predict_baseline("additive", sd.baseline_data, np.array([c]), np.array([d])).prediction[0]
    assert_allclose(add, drug_term + line_term - grand, rtol=1e-6)
    pm = predict_baseline("pool_mean", sd.baseline_data, np.array([c]), np.array([d])).prediction[0]
    assert_allclose(pm, line_term, rtol=1e-6)
    # the unseen line's cell_mean is the global mean, the pool mean is its own line
    cm = predict_baseline("cell_mean", sd.baseline_data, np.array([c]), np.array([d])).prediction[0]
    assert_allclose(cm, grand, rtol=1e-6)


def test_residual_aggregation_is_additive_plus_mean_neighbour_residual(
    tiny: SignatureDataset, index: LGRIndex
) -> None:
    split = make_split(tiny, "unseen-cell-line", seed=0)
    sd = split_data(index, split)
    y, _ = _grid(sd)
    c = int(np.flatnonzero(split.test.any(1))[0])
    d = int(np.flatnonzero(split.test[c])[0])
    cells, drugs = np.array([c]), np.array([d])
    sel = select_neighbours(sd, cells, drugs, "random", SelectOptions(k=2))
    nb = sel.order[0][sel.order[0] >= 0]
    add = predict_baseline("additive", sd.baseline_data, cells, drugs).prediction[0]
    # each neighbour's own additive fit: its drug term + the same line term - grand mean
    line_minus_grand = add - np.nanmean(np.where(split.train[:, d, None], y[:, d], np.nan), axis=0)
    resid = []
    for e in nb:
        drug_e = np.nanmean(np.where(split.train[:, e, None], y[:, e], np.nan), axis=0)
        resid.append(y[c, e] - (drug_e + line_minus_grand))
    expected = add + np.nanmean(resid, axis=0)
    assert_allclose(aggregate(sd, cells, sel, "residual")[0], expected, rtol=1e-6, atol=1e-9)


def test_residual_falls_back_to_the_plain_mean_for_an_unseen_drug(
    tiny: SignatureDataset, index: LGRIndex
) -> None:
    sd = split_data(index, make_split(tiny, "unseen-drug", seed=0))
    c, d = np.nonzero(sd.split.test)
    sel = select_neighbours(sd, c, d, "chem_knn", SelectOptions(k=2))
    assert_allclose(aggregate(sd, c, sel, "residual"), aggregate(sd, c, sel, "mean"))
    assert default_aggregation("unseen-drug") == "mean" == DEFAULT_AGGREGATION["unseen-drug"]
    assert default_aggregation("unseen-cell-line") == "residual" == default_aggregation("open-world")
    assert default_aggregation("open-world", "Rank-Weighted") == "rank_weighted"


def test_similarity_weights(tiny: SignatureDataset, index: LGRIndex) -> None:
    sd = split_data(index, make_split(tiny, "open-world"))
    c, d = np.array([0]), np.array([0])
    sel = select_neighbours(sd, c, d, "oracle", SelectOptions(k=3))
    nb = sel.order[0][:3]
    r = np.clip(sel.scores.values[0, nb], 0, None)
    w = weights(sel, "mean", 2.0)[0]
    if r.sum() > 0:
        assert_allclose(w[nb], r**2 / (r**2).sum())
    assert_allclose(weights(sel, "mean", 0.0)[0, nb], 1 / 3)
    # a selector without a similarity (random) keeps uniform weights
    rnd = select_neighbours(sd, c, d, "random", SelectOptions(k=3))
    assert_allclose(weights(rnd, "mean", 4.0), weights(rnd, "mean", 0.0))
    with pytest.raises(ValidationError, match="similarity_power must be a number in 0..64"):
        weights(sel, "mean", -1.0)


def test_retrieval_quality_by_hand() -> None:
    out = retrieval_quality(
        np.array([[3, 1, 2], [4, -1, -1], [-1, -1, -1]]), np.array([[1, 2, 9], [5, 6, 7], [1, 2, 3]])
    )
    assert_allclose(out["precision_at_k"].to_numpy(), [2 / 3, 0.0, np.nan])
    assert_allclose(out["mrr"].to_numpy(), [1 / 2, 0.0, np.nan])
    with pytest.raises(ValidationError, match="one row per query"):
        retrieval_quality(np.array([1, 2]), np.array([[1]]))


def _all_predictions(sd: SplitData, cells: np.ndarray, drugs: np.ndarray) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for selector, spec in SELECTORS.items():
        if spec.needs_llm or selector in ORACLES:
            continue
        sel = select_neighbours(sd, cells, drugs, selector, SelectOptions(k=2))
        for agg in AGGREGATIONS:
            for p in (0.0, 4.0):
                out[f"{selector}/{agg}/{p}"] = aggregate(sd, cells, sel, agg, similarity_power=p)  # type: ignore[arg-type]
    for name in BASELINES:
        out[name] = predict_baseline(name, sd.baseline_data, cells, drugs, k=2).prediction
    return out


@pytest.mark.parametrize("regime", ["unseen-drug", "unseen-cell-line"])
def test_no_test_delta_reaches_any_non_oracle_prediction(
    tiny: SignatureDataset, index: LGRIndex, regime: str
) -> None:
    split = make_split(tiny, regime, seed=0)
    sd = split_data(index, split)
    rng = np.random.default_rng(5)
    # queries perturbed together share no line (in unseen-cell-line a query's pool is its line's
    # other measured pairs, i.e. other test pairs, which LGR is allowed to read)
    q_c, q_d = np.nonzero(split.test)
    groups = (
        [np.flatnonzero(q_d == j) for j in np.unique(q_d)]
        if regime == "unseen-cell-line"
        else [np.arange(q_c.size)]
    )
    for g in groups:
        cells, drugs = q_c[g], q_d[g]
        before = _all_predictions(sd, cells, drugs)
        noisy = np.array(sd.deltas, copy=True)
        noisy[cells, drugs] = rng.normal(scale=5.0, size=(g.size, noisy.shape[2])).astype(np.float32)
        sd2 = SplitData(index=index, split=split, gene_idx=sd.gene_idx, deltas=noisy)
        after = _all_predictions(sd2, cells, drugs)
        for name in before:
            assert_array_equal(before[name], after[name], err_msg=f"{regime}: {name} reads a test delta")
        # the oracles do read it (they are ceilings): the check has teeth
        o1 = select_neighbours(sd, cells, drugs, "oracle", SelectOptions(k=2))
        o2 = select_neighbours(sd2, cells, drugs, "oracle", SelectOptions(k=2))
        assert not np.array_equal(o1.scores.values, o2.scores.values, equal_nan=True)
