"""Regression metrics of perturb_core.metrics (LGR deltas) against hand-computed values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from perturb_core.errors import ValidationError
from perturb_core.metrics import REGRESSION_METRICS, regression_metrics, top_variable_genes


def test_regression_hand_computed() -> None:
    # x = [1, 2, 3], y = [1, 2, 4]: x̄ = 2, ȳ = 7/3
    # Σ(x−x̄)(y−ȳ) = 3, Σ(x−x̄)² = 2, Σ(y−ȳ)² = 14/3  ->  r = 3 / √(28/3), r² = 27/28
    # cos = 17 / √(14·21); errors [0, 0, 1] -> MAE = MSE = 1/3; all signs positive
    out = regression_metrics(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0]))
    assert list(out.columns) == list(REGRESSION_METRICS)
    assert len(out) == 1
    # r2_pred = 1 − SSE/SST = 1 − 1 / (14/3) = 11/14
    expected = [3 / np.sqrt(28 / 3), 17 / np.sqrt(14 * 21), 1 / 3, 1 / 3, 1.0, 27 / 28, 11 / 14]
    assert_allclose(out.iloc[0].to_numpy(), expected, rtol=1e-12)


def test_regression_vectorised_rows_match_single_queries() -> None:
    rng = np.random.default_rng(0)
    pred, truth = rng.normal(size=(7, 50)), rng.normal(size=(7, 50))
    batch = regression_metrics(pred, truth)
    for q in range(7):
        assert_allclose(batch.iloc[q], regression_metrics(pred[q], truth[q]).iloc[0], rtol=1e-10)
        assert_allclose(batch.loc[q, "pearson"], np.corrcoef(pred[q], truth[q])[0, 1], rtol=1e-10)
        slope, intercept = np.polyfit(pred[q], truth[q], 1)
        resid = truth[q] - (slope * pred[q] + intercept)
        r2 = 1 - (resid**2).sum() / ((truth[q] - truth[q].mean()) ** 2).sum()
        assert_allclose(batch.loc[q, "r2"], r2, rtol=1e-10)


def test_regression_sign_accuracy_zeros() -> None:
    # signs: (+,+) match, (0,0) match, (0,+) no, (−,+) no  ->  2/4
    out = regression_metrics(np.array([1.0, 0.0, 0.0, -1.0]), np.array([2.0, 0.0, 3.0, 1.0]))
    assert out.loc[0, "sign_accuracy"] == 0.5


def test_regression_nan_and_mask_exclude_genes() -> None:
    pred = np.array([[1.0, 2.0, np.nan, 3.0, 100.0], [1.0, 2.0, 3.0, 9.0, 9.0]])
    truth = np.array([[1.0, 2.0, 5.0, 4.0, -100.0], [1.0, 2.0, 4.0, np.nan, 9.0]])
    mask = np.array([True, True, True, True, False])
    out = regression_metrics(pred, truth, mask=mask)
    ref = regression_metrics([1.0, 2.0, 3.0], [1.0, 2.0, 4.0]).iloc[0]
    assert_allclose(out.iloc[0], ref, rtol=1e-12)
    assert_allclose(out.iloc[1], ref, rtol=1e-12)
    # a 2-D mask works the same way
    out2 = regression_metrics(pred, truth, mask=np.broadcast_to(mask, pred.shape))
    pd.testing.assert_frame_equal(out, out2)


def test_regression_too_few_genes_and_constants_are_nan() -> None:
    pred = np.array([[1.0, np.nan, np.nan], [2.0, 2.0, 2.0], [1.0, 2.0, 3.0]])
    truth = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 4.0], [5.0, 5.0, 5.0]])
    out = regression_metrics(pred, truth)
    assert out.iloc[0].isna().all()  # one valid gene
    # constant prediction: no correlation, no regression; errors still defined
    # x = [2, 2, 2], y = [1, 2, 4]: cos = 14 / √(12·21), errors [1, 0, 2] -> MAE 1, MSE 5/3
    assert np.isnan(out.loc[1, "pearson"]) and np.isnan(out.loc[1, "r2"])
    assert_allclose(out.loc[1, ["cosine", "mae", "mse"]].to_numpy(float), [14 / np.sqrt(12 * 21), 1, 5 / 3])
    # constant truth: same
    assert np.isnan(out.loc[2, "pearson"]) and np.isnan(out.loc[2, "r2"])
    assert_allclose(out.loc[2, "mae"], 3.0)


def test_regression_does_not_mutate_inputs() -> None:
    pred = np.array([[1.0, np.nan, 3.0]])
    truth = np.array([[1.0, 2.0, 4.0]])
    before = pred.copy(), truth.copy()
    regression_metrics(pred, truth)
    assert_allclose(pred, before[0])
    assert_allclose(truth, before[1])


@pytest.mark.parametrize(
    ("pred", "truth", "kwargs", "match"),
    [
        (np.zeros((2, 3)), np.zeros((2, 4)), {}, r"pred has shape \(2, 3\) but truth has shape \(2, 4\)"),
        (np.zeros(3), np.zeros(4), {}, r"\(3,\).*\(4,\)"),
        (np.zeros((2, 2, 2)), np.zeros((2, 2, 2)), {}, "1-D .* or 2-D"),
        (np.array([1.0, np.inf]), np.zeros(2), {}, "pred contains ±inf"),
        (np.zeros((2, 3)), np.zeros((2, 3)), {"mask": np.ones(3)}, "mask must be boolean"),
        (np.zeros((2, 3)), np.zeros((2, 3)), {"mask": np.ones(2, bool)}, r"mask has shape \(2,\)"),
        (np.array(["a", "b"]), np.zeros(2), {}, "pred must be numeric"),
    ],
)
def test_regression_bad_inputs(pred, truth, kwargs, match) -> None:
    with pytest.raises(ValidationError, match=match):
        regression_metrics(pred, truth, **kwargs)


def test_top_variable_genes() -> None:
    deltas = np.array(
        [
            [0.0, 1.0, 0.0, 5.0, np.nan],
            [0.0, -1.0, 2.0, -5.0, 100.0],
            [0.0, 1.0, -2.0, np.nan, -100.0],
            [0.0, -1.0, 0.0, np.nan, np.nan],
        ]
    )
    # gene 3 and 4 have only 2 observations; variances: g0 0, g1 4/3, g2 8/3
    assert top_variable_genes(deltas, n=2).tolist() == [2, 1]
    assert top_variable_genes(deltas, n=10).tolist() == [2, 1, 0]


@pytest.mark.parametrize(
    ("deltas", "n", "match"),
    [
        (np.zeros(5), 2, "2-D"),
        (np.zeros((4, 3)), 0, "positive integer; got 0"),
        (np.zeros((4, 3)), 2.5, "positive integer; got 2.5"),
        (np.full((4, 3), np.inf), 2, "inf"),
    ],
)
def test_top_variable_genes_bad_inputs(deltas, n, match) -> None:
    with pytest.raises(ValidationError, match=match):
        top_variable_genes(deltas, n=n)
