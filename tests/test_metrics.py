"""Tests of perturb_core.metrics against hand-computed values and scikit-learn."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from sklearn.metrics import average_precision_score, roc_auc_score

from perturb_core.errors import ValidationError
from perturb_core.metrics import (
    CLASSIFICATION_METRICS,
    METRIC_DEFINITIONS,
    REGRESSION_METRICS,
    GeneAUROC,
    _weighted_auroc_auprc,
    auprc,
    auroc,
    bootstrap_classification,
    brier,
    classification_metrics,
    macro_gene_auroc,
    predicted_positive_rate,
    regression_metrics,
    reliability_curve,
    summarise,
    top_variable_genes,
)

# --------------------------------------------------------------------------- regression


def test_regression_hand_computed() -> None:
    # x = [1, 2, 3], y = [1, 2, 4]: x̄ = 2, ȳ = 7/3
    # Σ(x−x̄)(y−ȳ) = 3, Σ(x−x̄)² = 2, Σ(y−ȳ)² = 14/3  ->  r = 3 / √(28/3), r² = 27/28
    # cos = 17 / √(14·21); errors [0, 0, 1] -> MAE = MSE = 1/3; all signs positive
    out = regression_metrics(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0]))
    assert list(out.columns) == list(REGRESSION_METRICS)
    assert len(out) == 1
    expected = [3 / np.sqrt(28 / 3), 17 / np.sqrt(14 * 21), 1 / 3, 1 / 3, 1.0, 27 / 28]
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


# --------------------------------------------------------------------------- genes and summaries


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


def test_summarise_mean_ci_and_nan() -> None:
    per_query = pd.DataFrame({"a": [1.0, 2.0, 3.0, np.nan], "b": [5.0, 5.0, 5.0, 5.0], "name": list("wxyz")})
    out = summarise(per_query, n_boot=500, seed=1)
    assert list(out.index) == ["a", "b"]
    assert out.index.name == "metric"
    assert list(out.columns) == ["mean", "ci_low", "ci_high", "n"]
    assert_allclose(out.loc["a", "mean"], 2.0)
    assert out.loc["a", "n"] == 3 and out.loc["b", "n"] == 4
    assert 1.0 <= out.loc["a", "ci_low"] < 2.0 < out.loc["a", "ci_high"] <= 3.0
    assert_allclose(out.loc["b", ["ci_low", "ci_high"]].to_numpy(float), [5.0, 5.0])
    # deterministic for a seed
    pd.testing.assert_frame_equal(out, summarise(per_query, n_boot=500, seed=1))


def test_summarise_matches_loop_bootstrap() -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(size=40)
    n_boot = 300
    out = summarise(pd.DataFrame({"m": values}), n_boot=n_boot, seed=7, ci=0.9)
    idx = np.random.default_rng(7).integers(0, 40, size=(n_boot, 40))
    boot = values[idx].mean(axis=1)
    assert_allclose(out.loc["m", ["ci_low", "ci_high"]].to_numpy(float), np.percentile(boot, [5, 95]))


@pytest.mark.parametrize(
    ("per_query", "kwargs", "match"),
    [
        (np.zeros((3, 2)), {}, "must be a pandas DataFrame"),
        (pd.DataFrame({"x": ["a"]}), {}, "no numeric column"),
        (pd.DataFrame({"x": [1.0]}), {"n_boot": 0}, "n_boot must be a positive integer"),
        (pd.DataFrame({"x": [1.0]}), {"ci": 1.5}, r"ci must be in \(0, 1\)"),
    ],
)
def test_summarise_bad_inputs(per_query, kwargs, match) -> None:
    with pytest.raises(ValidationError, match=match):
        summarise(per_query, **kwargs)


# --------------------------------------------------------------------------- classification


def test_auroc_auprc_hand_computed() -> None:
    y = np.array([0, 0, 1, 1])
    s = np.array([0.1, 0.4, 0.35, 0.8])
    # positive-negative pairs: (0.35 > 0.1), (0.35 < 0.4), (0.8 > both) -> 3/4
    assert_allclose(auroc(y, s), 0.75)
    # descending: 0.8 (+) P=1 R=½, 0.4 (−), 0.35 (+) P=2/3 R=1 -> AP = ½·1 + ½·2/3
    assert_allclose(auprc(y, s), 0.5 + 1 / 3)
    # a tie between a positive and a negative counts ½
    assert_allclose(auroc([0, 1], [0.5, 0.5]), 0.5)


def test_one_class_gives_nan() -> None:
    assert np.isnan(auroc([1, 1, 1], [0.1, 0.2, 0.3]))
    assert np.isnan(auprc([0, 0], [0.1, 0.2]))


def test_macro_gene_auroc_matches_sklearn_per_group_with_ties() -> None:
    rng = np.random.default_rng(0)
    n = 3000
    groups = rng.choice([f"g{i}" for i in range(60)], size=n)
    y = (rng.random(n) < 0.3).astype(int)
    score = np.round(rng.random(n) + 0.3 * y, 1)  # many ties
    res = macro_gene_auroc(y, score, groups)
    assert isinstance(res, GeneAUROC)
    expected = {}
    for g in np.unique(groups):
        sel = groups == g
        if 0 < y[sel].sum() < sel.sum():
            expected[g] = roc_auc_score(y[sel], score[sel])
    got = res.per_group.dropna()
    assert sorted(got.index) == sorted(expected)
    assert_allclose(got.loc[list(expected)].to_numpy(), list(expected.values()), rtol=1e-12)
    assert res.n_groups == len(expected)
    assert_allclose(res.mean, np.mean(list(expected.values())), rtol=1e-12)


def test_macro_gene_auroc_excludes_single_class_groups() -> None:
    y = np.array([1, 0, 1, 1, 0, 0])
    s = np.array([0.9, 0.1, 0.2, 0.3, 0.5, 0.6])
    g = np.array(["A", "A", "B", "B", "C", "C"])
    res = macro_gene_auroc(y, s, g)
    assert res.n_groups == 1
    assert res.per_group.index.tolist() == ["A", "B", "C"]
    assert_allclose(res.per_group["A"], 1.0)
    assert np.isnan(res.per_group["B"]) and np.isnan(res.per_group["C"])
    assert_allclose(res.mean, 1.0)
    assert np.isnan(macro_gene_auroc([1, 0], [0.2, 0.1], ["A", "B"]).mean)


def test_gene_frequency_score_is_exactly_half_per_gene() -> None:
    rng = np.random.default_rng(5)
    n_genes, n = 200, 20_000
    genes = rng.integers(0, n_genes, size=n)
    rate = rng.random(n_genes)
    y = (rng.random(n) < rate[genes]).astype(int)
    freq = rate[genes]  # constant within each gene
    res = macro_gene_auroc(y, freq, genes)
    assert res.n_groups > 0
    assert np.all(res.per_group.dropna().to_numpy() == 0.5)
    assert res.mean == 0.5
    assert auroc(y, freq) > 0.7  # ...while it wins aggregate AUROC


def test_brier_reliability_rate() -> None:
    y = np.array([0, 1, 1, 0])
    p = np.array([0.1, 0.8, 1.0, 0.45])
    assert_allclose(brier(y, p), (0.01 + 0.04 + 0.0 + 0.2025) / 4)
    curve = reliability_curve(y, p, n_bins=4)
    # bins [0,.25): 0.1; [.25,.5): 0.45; [.75,1]: 0.8, 1.0; bin 2 empty -> dropped
    assert curve["bin"].tolist() == [0, 1, 3]
    assert_allclose(curve["p_mean"], [0.1, 0.45, 0.9])
    assert_allclose(curve["y_rate"], [0.0, 0.0, 1.0])
    assert curve["count"].tolist() == [1, 1, 2]
    assert_allclose(predicted_positive_rate(p), 0.5)
    assert_allclose(predicted_positive_rate(p, threshold=0.45), 0.75)  # >= threshold


def test_classification_metrics_dict() -> None:
    y = np.array([0, 0, 1, 1, 1, 0])
    s = np.array([0.1, 0.4, 0.35, 0.8, 0.9, 0.2])
    g = np.array(["A", "A", "A", "A", "B", "B"])
    out = classification_metrics(y, s, g)
    assert list(out) == list(CLASSIFICATION_METRICS)
    assert_allclose(out["auroc"], roc_auc_score(y, s))
    assert_allclose(out["auprc"], average_precision_score(y, s))
    assert_allclose(out["macro_gene_auroc"], (0.75 + 1.0) / 2)
    assert out["n_pairs"] == 6 and out["n_genes_macro"] == 2
    assert_allclose(out["predicted_positive_rate"], 2 / 6)
    assert_allclose(out["true_positive_rate"], 0.5)
    assert_allclose(out["brier"], np.mean((s - y) ** 2))
    # scores outside [0, 1] are not probabilities: no Brier score
    assert np.isnan(classification_metrics(y, s * 10, g)["brier"])


def test_every_metric_has_a_definition() -> None:
    for name in (*REGRESSION_METRICS, *CLASSIFICATION_METRICS):
        assert METRIC_DEFINITIONS[name].strip()


def test_weighted_auroc_auprc_match_sklearn_sample_weight() -> None:
    rng = np.random.default_rng(2)
    n = 500
    y = (rng.random(n) < 0.4).astype(float)
    s = np.round(rng.random(n) + 0.2 * y, 2)
    order = np.argsort(s, kind="stable")
    ss, yy = s[order], y[order]
    starts = np.flatnonzero(np.r_[True, ss[1:] != ss[:-1]])
    w = rng.integers(0, 3, size=(4, n)).astype(float)
    auc, ap = _weighted_auroc_auprc(yy, starts, w)
    assert_allclose(auc, [roc_auc_score(yy, ss, sample_weight=wi) for wi in w], rtol=1e-12)
    assert_allclose(ap, [average_precision_score(yy, ss, sample_weight=wi) for wi in w], rtol=1e-12)


def test_bootstrap_classification_intervals_and_speed() -> None:
    rng = np.random.default_rng(4)
    n = 100_000
    genes = rng.integers(0, 5000, size=n)
    y = (rng.random(n) < 0.2).astype(int)
    p = np.clip(0.2 + 0.3 * y + rng.normal(0, 0.2, size=n), 0, 1)
    start = time.perf_counter()
    ci = bootstrap_classification(y, p, genes, n_boot=200, seed=0)
    assert time.perf_counter() - start < 5
    point = classification_metrics(y, p, genes)
    assert set(ci) == {"auroc", "auprc", "brier", "macro_gene_auroc"}
    for name, (low, high) in ci.items():
        assert low <= point[name] <= high, name
        assert high - low < 0.05, name
    assert ci == bootstrap_classification(y, p, genes, n_boot=200, seed=0)
    # raw scores: no Brier interval
    assert all(np.isnan(bootstrap_classification(y, p * 5, genes, n_boot=10)["brier"]))


@pytest.mark.parametrize(
    ("y", "score", "groups", "match"),
    [
        ([0, 1, 1], [0.1, 0.2], ["a", "b", "c"], r"y has shape \(3,\) but score has shape \(2,\)"),
        ([0, 1], [0.1, 0.2], ["a", "b", "c"], r"groups has shape \(3,\) but y has shape \(2,\)"),
        ([0, 2], [0.1, 0.2], ["a", "b"], r"0/1 .* found \[2\.0\]"),
        ([0, np.nan], [0.1, 0.2], ["a", "b"], "0/1"),
        ([0, 1], [0.1, np.nan], ["a", "b"], "score has 1 non-finite"),
        ([], [], [], "y is empty"),
        ([[0, 1]], [[0.1, 0.2]], [["a", "b"]], "y must be 1-D"),
        ([0, 1], [0.1, 0.2], ["a", None], "missing label"),
        (["no", "yes"], [0.1, 0.2], ["a", "b"], "y must be numeric"),
    ],
)
@pytest.mark.parametrize("func", [classification_metrics, macro_gene_auroc, bootstrap_classification])
def test_classification_bad_inputs(func, y, score, groups, match) -> None:
    with pytest.raises(ValidationError, match=match):
        func(y, score, groups)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: brier([0, 1], [0.5, 1.2]), r"probabilities in \[0, 1\]"),
        (lambda: reliability_curve([0, 1], [-0.1, 0.5]), r"probabilities in \[0, 1\]"),
        (lambda: reliability_curve([0, 1], [0.1, 0.5], n_bins=0), "n_bins must be a positive integer"),
        (lambda: predicted_positive_rate([0.1, np.nan]), "non-finite"),
        (lambda: auroc([0, 1, 1], [0.1, 0.2]), r"y has shape \(3,\) but score has shape \(2,\)"),
        (lambda: bootstrap_classification([0, 1], [0.1, 0.2], ["a", "a"], n_boot=0), "n_boot"),
    ],
)
def test_other_bad_inputs(call, match) -> None:
    with pytest.raises(ValidationError, match=match):
        call()
