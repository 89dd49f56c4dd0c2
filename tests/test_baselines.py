"""Tests of perturb_core.baselines against hand-computed values on a tiny tensor."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from perturb_core.baselines import (
    BASELINE_LABELS,
    BASELINES,
    BaselineData,
    cell_mean,
    chem_knn,
    drug_mean,
    pca_ridge,
    predict_baseline,
)
from perturb_core.errors import UnknownNameError, ValidationError

NAN = np.nan

# 2 cell lines x 3 drugs x 2 genes
DELTAS = np.array(
    [
        [[1.0, 2.0], [3.0, NAN], [5.0, 6.0]],
        [[7.0, 8.0], [9.0, 10.0], [NAN, NAN]],  # (1, 2) not profiled
    ],
    dtype=np.float32,
)
PRESENT = ~np.isnan(DELTAS).all(2)
FPS = np.array([[1, 1, 0, 0], [1, 1, 1, 0], [0, 0, 1, 1]], dtype=bool)


def data(train: np.ndarray | None = None, loo: bool = False, valid: np.ndarray | None = None) -> BaselineData:
    return BaselineData(
        deltas=DELTAS,
        train=PRESENT.copy() if train is None else train,
        fingerprints=FPS,
        fp_valid=np.ones(3, bool) if valid is None else valid,
        leave_one_out=loo,
    )


def test_cell_mean_hand_values() -> None:
    train = PRESENT.copy()
    train[:, 0] = False  # drug 0 held out (unseen drug)
    res = cell_mean(data(train), np.array([0, 1]), np.array([0, 0]))
    # line 0 training drugs 1, 2: gene0 (3+5)/2, gene1 6 (drug 1 gene 1 missing); line 1: drug 1 only
    assert_allclose(res.prediction, [[4.0, 6.0], [9.0, 10.0]])
    assert res.fallback == (None, None)
    # unseen line: the global training mean
    train = PRESENT.copy()
    train[1] = False
    res = cell_mean(data(train), np.array([1]), np.array([0]))
    assert_allclose(res.prediction, [[3.0, 4.0]])
    assert res.fallback[0].startswith("cell line has no training pair")


def test_cell_mean_leave_one_out_excludes_the_query() -> None:
    res = cell_mean(data(loo=True), np.array([0, 1]), np.array([0, 1]))
    # (0,0) left out: drugs 1,2 of line 0 -> [4, 6]; (1,1) left out: drug 0 of line 1 -> [7, 8]
    assert_allclose(res.prediction, [[4.0, 6.0], [7.0, 8.0]])


def test_drug_mean_hand_values_and_fallback() -> None:
    train = PRESENT.copy()
    train[1] = False  # line 1 held out
    res = drug_mean(data(train), np.array([1, 1]), np.array([0, 1]))
    assert_allclose(res.prediction, [[1.0, 2.0], [3.0, NAN]])
    # leave-one-out: drug 2 is only profiled in line 0 -> falls back to the cell mean
    res = drug_mean(data(loo=True), np.array([0, 0]), np.array([0, 2]))
    assert_allclose(res.prediction[0], [7.0, 8.0])
    assert_allclose(res.prediction[1], [2.0, 2.0])  # cell mean of line 0 without drug 2
    assert res.fallback[0] is None and res.fallback[1].startswith("drug has no training pair")


def test_chem_knn_mean_of_neighbours_drug_means() -> None:
    # cosine: drug0 vs drug1 = 2/sqrt(6) = 0.816, drug0 vs drug2 = 0
    res = chem_knn(data(), np.array([0]), np.array([0]), k=1)
    assert list(res.neighbours[0]) == [1]
    assert_allclose(res.prediction, [[6.0, 10.0]])  # drug 1's mean over both lines
    res = chem_knn(data(), np.array([0]), np.array([0]), k=2)
    # mean of drug means: drug1 [6, 10], drug2 [5, 6] -> [5.5, 8]
    assert_allclose(res.prediction, [[5.5, 8.0]])
    assert res.k_used[0] == 2
    # no structure for the query -> cell mean, recorded
    res = chem_knn(data(valid=np.array([False, True, True])), np.array([0]), np.array([0]), k=2)
    assert res.fallback[0].startswith("no structure") and res.k_used[0] == 0


def test_pca_ridge_shapes_and_leave_one_out() -> None:
    rng = np.random.default_rng(0)
    deltas = rng.normal(size=(3, 6, 8)).astype(np.float32)
    fps = rng.random((6, 16)) > 0.5
    d = BaselineData(deltas, np.ones((3, 6), bool), fps, np.ones(6, bool), leave_one_out=True)
    cells, drugs = np.array([0, 1, 2]), np.array([0, 3, 5])
    pred = pca_ridge(d, cells, drugs, seed=0).prediction
    assert pred.shape == (3, 8) and np.isfinite(pred).all()
    # the query's own delta never reaches its prediction
    changed = deltas.copy()
    changed[0, 0] += 100.0
    d2 = BaselineData(changed, np.ones((3, 6), bool), fps, np.ones(6, bool), leave_one_out=True)
    assert_allclose(
        pca_ridge(d2, np.array([0]), np.array([0])).prediction,
        pca_ridge(d, np.array([0]), np.array([0])).prediction,
    )


def test_registry_and_errors() -> None:
    assert set(BASELINES) == set(BASELINE_LABELS) == {"cell_mean", "drug_mean", "chem_knn", "pca_ridge"}
    res = predict_baseline("drug_mean", data(), np.array([0]), np.array([0]))
    assert res.method == "drug_mean"
    with pytest.raises(UnknownNameError, match="valid: cell_mean, drug_mean, chem_knn, pca_ridge"):
        predict_baseline("mean", data(), np.array([0]), np.array([0]))
    with pytest.raises(ValidationError, match="out of range"):
        cell_mean(data(), np.array([5]), np.array([0]))
    with pytest.raises(ValidationError, match="train has shape"):
        BaselineData(DELTAS, np.ones((3, 3), bool), FPS, np.ones(3, bool))
