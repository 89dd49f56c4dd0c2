"""Bootstrap intervals of perturb_core.metrics: summarise and bootstrap_classification."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from sklearn.metrics import average_precision_score, roc_auc_score

from perturb_core.errors import ValidationError
from perturb_core.metrics import bootstrap_classification, classification_metrics, summarise
from perturb_core.metrics._bootstrap import _weighted_auroc_auprc


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
        (pd.DataFrame({"x": [1.0]}), {"n_boot": 0}, r"n_boot must be an integer in 1\.\.100000"),
        (pd.DataFrame({"x": [1.0]}), {"ci": 1.5}, r"ci must be in \(0, 1\)"),
        # hostile numbers (issue 10, defect 12): refused with their range, before NumPy sees them
        (
            pd.DataFrame({"x": [1.0]}),
            {"n_boot": 10**9},
            r"n_boot must be an integer in 1\.\.100000 .*got 1000000000",
        ),
        (pd.DataFrame({"x": [1.0]}), {"seed": -1}, r"seed must be an integer in 0\.\.4294967295 .*got -1$"),
        (pd.DataFrame({"x": [1.0]}), {"seed": 2**64}, rf"0 <= seed < 2\*\*32\); got {2**64}$"),
        (pd.DataFrame({"x": [1.0]}), {"seed": 1.5}, r"seed must be an integer"),
    ],
)
def test_summarise_bad_inputs(per_query, kwargs, match) -> None:
    with pytest.raises(ValidationError, match=match):
        summarise(per_query, **kwargs)


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
