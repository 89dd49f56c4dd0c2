"""Classification metrics of perturb_core.metrics (CORE pairs) against hand-computed values and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.metrics import average_precision_score, roc_auc_score

from perturb_core.errors import ValidationError
from perturb_core.metrics import (
    CLASSIFICATION_METRICS,
    GeneAUROC,
    auprc,
    auroc,
    bootstrap_classification,
    brier,
    classification_metrics,
    macro_gene_auroc,
    predicted_positive_rate,
    reliability_curve,
)


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
