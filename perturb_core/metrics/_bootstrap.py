"""Confidence intervals by resampling: bootstrap means of per-query metrics and of the CORE classification metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from perturb_core.errors import ValidationError, check_n_boot, check_seed
from perturb_core.metrics._classification import _per_group_auroc
from perturb_core.metrics._validation import _binary_task

__all__ = ["bootstrap_classification", "summarise"]

_BOOT_CELLS = 4_000_000  # bootstrap weight-matrix cells per chunk (32 MB of float64)


def summarise(
    per_query: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0, ci: float = 0.95
) -> pd.DataFrame:
    """Mean of each metric over queries with a percentile-bootstrap confidence interval.

    Rows (queries) are resampled with replacement ``n_boot`` times; each replicate's mean
    ignores NaN, as does the point estimate. All replicates come from one (n_boot, rows)
    index matrix, turned into resampling counts so that every replicate mean is one row
    of a matrix product.

    Args:
        per_query: one row per query, one numeric column per metric (non-numeric columns
            are ignored), e.g. the output of :func:`regression_metrics`.
        n_boot: number of bootstrap replicates.
        seed: seed of the NumPy random generator.
        ci: confidence level of the interval, in (0, 1).

    Returns:
        DataFrame indexed by metric with the columns ``mean, ci_low, ci_high, n`` (n = the
        number of non-NaN values of the metric).

    Raises:
        ValidationError: not a DataFrame, no numeric column, ``n_boot`` outside 1..100,000, ``seed``
            outside 0..2**32-1 or ``ci`` outside (0, 1).
    """
    if not isinstance(per_query, pd.DataFrame):
        raise ValidationError(f"per_query must be a pandas DataFrame; got {type(per_query).__name__}")
    n_boot = check_n_boot(n_boot)
    seed = check_seed(seed)
    if not 0 < ci < 1:
        raise ValidationError(f"ci must be in (0, 1), e.g. 0.95; got {ci!r}")
    numeric = per_query.select_dtypes(include="number")
    if numeric.shape[1] == 0:
        raise ValidationError(
            f"per_query has no numeric column (columns: {list(per_query.columns)}); pass metric columns"
        )
    values = numeric.to_numpy(dtype=np.float64)
    rows = values.shape[0]
    finite = ~np.isnan(values)
    filled = np.where(finite, values, 0.0)
    n_obs = finite.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = filled.sum(axis=0) / n_obs
    low = np.full(values.shape[1], np.nan)
    high = np.full(values.shape[1], np.nan)
    if rows > 0:
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, rows, size=(n_boot, rows))
        counts = _resample_counts(idx, rows)
        with np.errstate(divide="ignore", invalid="ignore"):
            boot = (counts @ filled) / (counts @ finite.astype(np.float64))
        alpha = (1.0 - ci) / 2.0
        ok = n_obs > 0
        if ok.any():
            q = np.nanpercentile(boot[:, ok], [100 * alpha, 100 * (1 - alpha)], axis=0)
            low[ok], high[ok] = q[0], q[1]
    return pd.DataFrame(
        {"mean": mean, "ci_low": low, "ci_high": high, "n": n_obs.astype(np.int64)},
        index=pd.Index(numeric.columns, name="metric"),
    )


def _resample_counts(idx: NDArray[np.integer], n: int) -> NDArray[np.float64]:
    """(B, n) index matrix of draws -> (B, n) counts of how often each item was drawn."""
    b = idx.shape[0]
    flat = (idx + (np.arange(b) * n)[:, None]).ravel()
    return np.bincount(flat, minlength=b * n).reshape(b, n).astype(np.float64)


def _weighted_auroc_auprc(
    y_sorted: NDArray[np.float64], starts: NDArray[np.intp], weights: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """AUROC and average precision for each row of sample weights, all rows at once.

    ``y_sorted`` holds labels ordered by ascending score and ``starts`` the first position
    of every run of equal scores; ``weights`` (B, n) are per-item weights in that order
    (bootstrap counts). Ties count ½ in AUROC; average precision steps over distinct scores,
    as sklearn's ``average_precision_score`` with ``sample_weight`` does.
    """
    pos = np.add.reduceat(weights * y_sorted, starts, axis=1)  # (B, runs), ascending score
    neg = np.add.reduceat(weights * (1.0 - y_sorted), starts, axis=1)
    n_pos, n_neg = pos.sum(1), neg.sum(1)
    below = np.cumsum(neg, axis=1) - neg
    with np.errstate(divide="ignore", invalid="ignore"):
        auc = (pos * (below + 0.5 * neg)).sum(1) / (n_pos * n_neg)
        tp = np.cumsum(pos[:, ::-1], axis=1)  # thresholds by descending score
        called = tp + np.cumsum(neg[:, ::-1], axis=1)
        precision = np.where(called > 0, tp / called, 0.0)
        ap = (pos[:, ::-1] * precision).sum(1) / n_pos
    one_class = (n_pos == 0) | (n_neg == 0)
    auc[one_class] = np.nan
    ap[one_class] = np.nan  # as auprc(): undefined without both classes
    return auc, ap


def bootstrap_classification(
    y: ArrayLike,
    score: ArrayLike,
    groups: ArrayLike,
    *,
    n_boot: int = 200,
    seed: int = 0,
    ci: float = 0.95,
) -> dict[str, tuple[float, float]]:
    """Percentile-bootstrap confidence intervals of the CORE classification metrics.

    ``auroc``, ``auprc`` and ``brier`` resample pairs; ``macro_gene_auroc`` resamples genes
    (their per-gene AUROC values, genes with both classes only). Replicates are computed as
    weighted metrics over one sort of the scores, in chunks of replicates, so 200 replicates
    of 100k pairs take well under a second.

    Args:
        y: 0/1 labels, shape (n,).
        score: finite scores, shape (n,).
        groups: gene of each pair, shape (n,).
        n_boot: number of bootstrap replicates.
        seed: seed of the NumPy random generator.
        ci: confidence level of the intervals, in (0, 1).

    Returns:
        Dict mapping ``auroc``, ``auprc``, ``brier`` and ``macro_gene_auroc`` to
        ``(low, high)``; ``(nan, nan)`` where the metric is undefined (one class, no gene
        with both classes, or ``brier`` for scores outside [0, 1]).

    Raises:
        ValidationError: bad inputs, ``n_boot`` outside 1..100,000, ``seed`` outside 0..2**32-1 or
            ``ci`` outside (0, 1).
    """
    n_boot = check_n_boot(n_boot)
    seed = check_seed(seed)
    if not 0 < ci < 1:
        raise ValidationError(f"ci must be in (0, 1), e.g. 0.95; got {ci!r}")
    yy, ss, codes, _ = _binary_task(y, score, groups)
    rng = np.random.default_rng(seed)
    n = yy.size
    order = np.argsort(ss, kind="stable")
    s_sorted, y_sorted = ss[order], yy[order]
    starts = np.flatnonzero(np.r_[True, s_sorted[1:] != s_sorted[:-1]])
    sq_err = (s_sorted - y_sorted) ** 2
    is_prob = bool(((ss >= 0) & (ss <= 1)).all())

    aucs, aps, briers = [], [], []
    chunk = max(1, _BOOT_CELLS // n)
    for first in range(0, n_boot, chunk):
        b = min(chunk, n_boot - first)
        counts = _resample_counts(rng.integers(0, n, size=(b, n)), n)
        auc, ap = _weighted_auroc_auprc(y_sorted, starts, counts)
        aucs.append(auc)
        aps.append(ap)
        briers.append(counts @ sq_err / n)

    per_gene, both = _per_group_auroc(yy, ss, codes)
    gene_auc = per_gene[both]
    if gene_auc.size:
        macro = gene_auc[rng.integers(0, gene_auc.size, size=(n_boot, gene_auc.size))].mean(1)
    else:
        macro = np.full(n_boot, np.nan)

    alpha = (1.0 - ci) / 2.0

    def interval(values: NDArray[np.float64]) -> tuple[float, float]:
        if np.isnan(values).all():
            return (float("nan"), float("nan"))
        lo, hi = np.nanpercentile(values, [100 * alpha, 100 * (1 - alpha)])
        return (float(lo), float(hi))

    return {
        "auroc": interval(np.concatenate(aucs)),
        "auprc": interval(np.concatenate(aps)),
        "brier": interval(np.concatenate(briers)) if is_prob else (float("nan"), float("nan")),
        "macro_gene_auroc": interval(macro),
    }
