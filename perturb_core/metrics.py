"""Evaluation metrics: LGR regression of expression deltas and CORE classification of gene responses.

Every function is pure and vectorised over queries, pairs or genes. Inputs are validated
once here and a bad one raises :class:`~perturb_core.errors.ValidationError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy.stats import rankdata
from sklearn.metrics import average_precision_score, roc_auc_score

from perturb_core.errors import ValidationError

__all__ = [
    "CLASSIFICATION_METRICS",
    "METRIC_DEFINITIONS",
    "REGRESSION_METRICS",
    "GeneAUROC",
    "auprc",
    "auroc",
    "bootstrap_classification",
    "brier",
    "classification_metrics",
    "macro_gene_auroc",
    "predicted_positive_rate",
    "regression_metrics",
    "reliability_curve",
    "summarise",
    "top_variable_genes",
]

REGRESSION_METRICS: tuple[str, ...] = ("pearson", "cosine", "mae", "mse", "sign_accuracy", "r2")
"""Columns of :func:`regression_metrics`, in order."""

CLASSIFICATION_METRICS: tuple[str, ...] = (
    "auroc",
    "auprc",
    "macro_gene_auroc",
    "n_pairs",
    "n_genes_macro",
    "predicted_positive_rate",
    "true_positive_rate",
    "brier",
)
"""Keys of :func:`classification_metrics`, in order."""

METRIC_DEFINITIONS: dict[str, str] = {
    # regression, per query over its valid genes g = 1..n (x = prediction, y = truth)
    "pearson": "r = Σ(x−x̄)(y−ȳ) / √(Σ(x−x̄)² · Σ(y−ȳ)²) over the query's genes",
    "cosine": "cos = Σxy / √(Σx² · Σy²) over the query's genes (no centring)",
    "mae": "MAE = (1/n) Σ|x − y| over the query's genes",
    "mse": "MSE = (1/n) Σ(x − y)² over the query's genes",
    "sign_accuracy": "fraction of genes with sign(x) = sign(y); sign(0) = 0 matches only 0",
    "r2": "R² of the least-squares fit y ≈ a + b·x (= r²; NaN if x or y is constant)",
    # classification, over (perturbation, gene) pairs
    "auroc": "P(score of a random positive pair > score of a random negative pair), ties count ½",
    "auprc": "average precision = Σₖ (Rₖ − Rₖ₋₁) · Pₖ over score thresholds (sklearn)",
    "macro_gene_auroc": "AUROC over perturbations within each gene, averaged over genes with both classes",
    "n_pairs": "number of (perturbation, gene) pairs scored",
    "n_genes_macro": "number of genes with both classes (those averaged in macro AUROC)",
    "predicted_positive_rate": "fraction of pairs with score ≥ threshold (compare with the true rate)",
    "true_positive_rate": "fraction of pairs whose label is positive (prevalence, not recall)",
    "brier": "Brier = (1/n) Σ(p − y)² for probabilities p in [0, 1]; lower is better",
}
"""One-line formula or definition of every metric, keyed by its column or dict key."""

_MIN_GENE_OBS = 3  # top_variable_genes: fewer observations than this excludes a gene
_BOOT_CELLS = 4_000_000  # bootstrap weight-matrix cells per chunk (32 MB of float64)


# --------------------------------------------------------------------------- validation


def _as_float(x: ArrayLike, name: str) -> NDArray[np.float64]:
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{name} must be numeric; could not convert it to float ({exc})") from exc
    return arr


def _same_shape(a: NDArray[Any], b: NDArray[Any], name_a: str, name_b: str) -> None:
    if a.shape != b.shape:
        raise ValidationError(
            f"{name_a} has shape {a.shape} but {name_b} has shape {b.shape}; "
            "they must match (one row per query/pair, one column per gene)"
        )


def _binary_labels(y: ArrayLike, name: str = "y") -> NDArray[np.float64]:
    arr = _as_float(y, name)
    if arr.ndim != 1:
        raise ValidationError(f"{name} must be 1-D (one label per pair); got shape {arr.shape}")
    if arr.size == 0:
        raise ValidationError(f"{name} is empty; pass at least one labelled pair")
    bad = ~((arr == 0) | (arr == 1))
    if bad.any():
        values = np.unique(arr[bad])[:5]
        raise ValidationError(
            f"{name} must hold only 0/1 (or False/True) labels; found {values.tolist()} "
            "(binarise the labels, e.g. y = (label == 'DE'))"
        )
    return arr


def _scores(score: ArrayLike, y: NDArray[np.float64], name: str = "score") -> NDArray[np.float64]:
    arr = _as_float(score, name)
    _same_shape(y, arr, "y", name)
    if not np.isfinite(arr).all():
        n_bad = int((~np.isfinite(arr)).sum())
        raise ValidationError(
            f"{name} has {n_bad} non-finite value(s) (NaN or inf); drop those pairs or impute a score"
        )
    return arr


def _probabilities(p: NDArray[np.float64], name: str = "p") -> None:
    if ((p < 0) | (p > 1)).any():
        raise ValidationError(
            f"{name} must be probabilities in [0, 1]; got values in [{p.min():.4g}, {p.max():.4g}] "
            "(use a calibrated probability, not a raw score)"
        )


def _groups(groups: ArrayLike, y: NDArray[np.float64]) -> tuple[NDArray[np.intp], pd.Index]:
    labels = np.asarray(groups)
    if labels.ndim != 1 or labels.shape != y.shape:
        raise ValidationError(
            f"groups has shape {labels.shape} but y has shape {y.shape}; they must match (one gene per pair)"
        )
    codes, uniques = pd.factorize(labels, sort=True)
    if (codes < 0).any():
        raise ValidationError(
            f"groups has {int((codes < 0).sum())} missing label(s) (None/NaN); every pair needs a gene"
        )
    return codes, pd.Index(uniques)


def _binary_task(
    y: ArrayLike, score: ArrayLike, groups: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.intp], pd.Index]:
    yy = _binary_labels(y)
    ss = _scores(score, yy)
    codes, uniques = _groups(groups, yy)
    return yy, ss, codes, uniques


# --------------------------------------------------------------------------- regression


def regression_metrics(pred: ArrayLike, truth: ArrayLike, *, mask: ArrayLike | None = None) -> pd.DataFrame:
    """Per-query regression metrics of predicted against measured expression deltas.

    A gene is used for a query when ``pred`` and ``truth`` are both non-NaN there and
    ``mask`` (if given) is True. Metrics of a query with fewer than 2 such genes are NaN.

    Definitions over the n valid genes of a query (x = prediction, y = truth):

    - ``pearson``: Pearson correlation; NaN if x or y is constant.
    - ``cosine``: Σxy / (‖x‖‖y‖), no centring; NaN if x or y is all zero.
    - ``mae``, ``mse``: mean absolute and mean squared error.
    - ``sign_accuracy``: fraction of genes with ``sign(x) == sign(y)``, where sign(0) = 0,
      so an exact zero matches only an exact zero.
    - ``r2``: R² of the ordinary least-squares regression of y on x, which equals r² when
      both vary. NaN for a constant prediction (the slope is undefined) or constant truth
      (no variance to explain).

    Args:
        pred: predicted deltas, shape (Q, G), or (G,) for a single query.
        truth: measured deltas, same shape as ``pred``.
        mask: optional boolean mask of genes to use, shape (Q, G) or (G,) (the same genes
            for every query, e.g. the top variable genes).

    Returns:
        DataFrame with one row per query (index 0..Q-1) and the columns
        ``pearson, cosine, mae, mse, sign_accuracy, r2``.

    Raises:
        ValidationError: shapes differ, inputs are not numeric or contain ±inf, or the mask
            is not boolean or has the wrong shape.
    """
    x = _as_float(pred, "pred")
    y = _as_float(truth, "truth")
    _same_shape(x, y, "pred", "truth")
    if x.ndim == 1:
        x, y = x[None, :], y[None, :]
    if x.ndim != 2:
        raise ValidationError(f"pred must be 1-D (G,) or 2-D (Q, G); got shape {x.shape}")
    for name, arr in (("pred", x), ("truth", y)):
        if np.isinf(arr).any():
            raise ValidationError(f"{name} contains ±inf; use NaN for a missing gene, or clip the values")
    valid = ~(np.isnan(x) | np.isnan(y))
    if mask is not None:
        m = np.asarray(mask)
        if m.dtype != np.bool_:
            raise ValidationError(f"mask must be boolean; got dtype {m.dtype} (use e.g. deltas != 0)")
        if m.shape not in (x.shape, (x.shape[1],)):
            raise ValidationError(
                f"mask has shape {m.shape}; expected {x.shape} or ({x.shape[1]},) to match pred"
            )
        valid = valid & m

    n = valid.sum(axis=1)
    xs, ys = np.where(valid, x, 0.0), np.where(valid, y, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        nf = n.astype(np.float64)
        xc = np.where(valid, x - (xs.sum(axis=1) / nf)[:, None], 0.0)
        yc = np.where(valid, y - (ys.sum(axis=1) / nf)[:, None], 0.0)
        sxx, syy, sxy = (xc * xc).sum(1), (yc * yc).sum(1), (xc * yc).sum(1)
        # constant vectors are found exactly (max == min), not from round-off in sxx
        x_const = np.where(valid, x, -np.inf).max(1) == np.where(valid, x, np.inf).min(1)
        y_const = np.where(valid, y, -np.inf).max(1) == np.where(valid, y, np.inf).min(1)
        pearson = np.where(x_const | y_const, np.nan, sxy / np.sqrt(sxx * syy))
        pearson = np.clip(pearson, -1.0, 1.0)
        nx, ny = np.sqrt((xs * xs).sum(1)), np.sqrt((ys * ys).sum(1))
        cosine = np.clip(np.where((nx > 0) & (ny > 0), (xs * ys).sum(1) / (nx * ny), np.nan), -1.0, 1.0)
        diff = xs - ys
        mae = np.abs(diff).sum(1) / nf
        mse = (diff * diff).sum(1) / nf
        sign_accuracy = (valid & (np.sign(xs) == np.sign(ys))).sum(1) / nf
    out = pd.DataFrame(
        {
            "pearson": pearson,
            "cosine": cosine,
            "mae": mae,
            "mse": mse,
            "sign_accuracy": sign_accuracy,
            "r2": pearson**2,
        }
    )
    out.loc[n < 2, :] = np.nan
    return out


def top_variable_genes(deltas: ArrayLike, n: int = 2000) -> NDArray[np.intp]:
    """Indices of the ``n`` genes whose deltas vary most across rows, ignoring NaN.

    Variance is the sample variance (ddof=1) over a gene's non-NaN rows; genes observed in
    fewer than 3 rows are never chosen. Ties keep the lower gene index first.

    Args:
        deltas: training deltas, shape (N, G), NaN = gene missing in that row.
        n: how many genes to return; fewer come back if fewer genes are eligible.

    Returns:
        Gene (column) indices, most variable first, shape (min(n, eligible),).

    Raises:
        ValidationError: ``deltas`` is not 2-D numeric or contains ±inf, or ``n`` < 1.
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValidationError(f"n must be a positive integer; got {n!r}")
    d = _as_float(deltas, "deltas")
    if d.ndim != 2:
        raise ValidationError(f"deltas must be 2-D (rows, genes); got shape {d.shape}")
    if np.isinf(d).any():
        raise ValidationError("deltas contains ±inf; use NaN for a missing gene, or clip the values")
    obs = ~np.isnan(d)
    count = obs.sum(axis=0)
    eligible = count >= _MIN_GENE_OBS
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(obs, d, 0.0).sum(axis=0) / count
        centred = np.where(obs, d - mean, 0.0)
        var = (centred * centred).sum(axis=0) / (count - 1)
    var = np.where(eligible, var, -np.inf)
    order = np.argsort(-var, kind="stable")
    return order[: min(int(n), int(eligible.sum()))]


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
        ValidationError: not a DataFrame, no numeric column, ``n_boot`` < 1 or ``ci`` outside (0, 1).
    """
    if not isinstance(per_query, pd.DataFrame):
        raise ValidationError(f"per_query must be a pandas DataFrame; got {type(per_query).__name__}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, int | np.integer) or n_boot < 1:
        raise ValidationError(f"n_boot must be a positive integer; got {n_boot!r}")
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


# --------------------------------------------------------------------------- classification


def auroc(y: ArrayLike, score: ArrayLike) -> float:
    """Area under the ROC curve (sklearn ``roc_auc_score``); NaN if only one class is present.

    Args:
        y: 0/1 labels, shape (n,).
        score: finite scores, higher = more likely positive, shape (n,).

    Returns:
        AUROC in [0, 1], or NaN.

    Raises:
        ValidationError: shapes differ, labels are not 0/1 or scores are not finite.
    """
    yy = _binary_labels(y)
    ss = _scores(score, yy)
    if yy.min() == yy.max():
        return float("nan")
    return float(roc_auc_score(yy, ss))


def auprc(y: ArrayLike, score: ArrayLike) -> float:
    """Area under the precision-recall curve as average precision (sklearn); NaN if one class.

    Args:
        y: 0/1 labels, shape (n,).
        score: finite scores, higher = more likely positive, shape (n,).

    Returns:
        Average precision in [0, 1], or NaN.

    Raises:
        ValidationError: shapes differ, labels are not 0/1 or scores are not finite.
    """
    yy = _binary_labels(y)
    ss = _scores(score, yy)
    if yy.min() == yy.max():
        return float("nan")
    return float(average_precision_score(yy, ss))


@dataclass(frozen=True, eq=False)
class GeneAUROC:
    """Macro per-gene AUROC.

    Attributes:
        mean: mean AUROC over the genes with both classes (NaN if there are none).
        per_group: AUROC of every gene, indexed by gene (sorted); NaN for a gene with one class.
        n_groups: number of genes with both classes, i.e. those averaged into ``mean``.
    """

    mean: float
    per_group: pd.Series
    n_groups: int


def _per_group_auroc(
    y: NDArray[np.float64], score: NDArray[np.float64], codes: NDArray[np.intp]
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """AUROC of each group (NaN without both classes) and the both-classes mask, all at once.

    Uses the Mann-Whitney rank-sum formula. Ranking the composite key (group, dense rank of
    score) ranks items within their group (ties only between equal scores of the same group
    get the average rank) after an offset equal to the number of items in earlier groups.
    """
    n_groups = int(codes.max()) + 1
    dense = rankdata(score, method="dense").astype(np.int64)
    key = codes.astype(np.int64) * (int(dense.max()) + 1) + dense
    size = np.bincount(codes, minlength=n_groups)
    offset = np.cumsum(size) - size
    rank = rankdata(key, method="average") - offset[codes]
    n_pos = np.bincount(codes, weights=y, minlength=n_groups)
    n_neg = size - n_pos
    rank_sum = np.bincount(codes, weights=rank * y, minlength=n_groups)
    both = (n_pos > 0) & (n_neg > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        auc = np.where(both, (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg), np.nan)
    return auc, both


def macro_gene_auroc(y: ArrayLike, score: ArrayLike, groups: ArrayLike) -> GeneAUROC:
    """AUROC within each gene over its perturbations, averaged over genes with both classes.

    Vectorised over genes: each gene's AUROC is the Mann-Whitney statistic
    (R₊ − n₊(n₊+1)/2) / (n₊n₋) with average ranks for ties, computed for all genes from
    one ranking. A score that is constant within every gene (e.g. gene frequency) gets
    exactly 0.5.

    Args:
        y: 0/1 labels, shape (n,).
        score: finite scores, shape (n,).
        groups: gene of each pair (any hashable labels), shape (n,).

    Returns:
        A :class:`GeneAUROC`.

    Raises:
        ValidationError: shapes differ, labels are not 0/1, scores are not finite or a gene is missing.
    """
    yy, ss, codes, uniques = _binary_task(y, score, groups)
    auc, both = _per_group_auroc(yy, ss, codes)
    per_group = pd.Series(auc, index=uniques, name="auroc")
    mean = float(auc[both].mean()) if both.any() else float("nan")
    return GeneAUROC(mean=mean, per_group=per_group, n_groups=int(both.sum()))


def brier(y: ArrayLike, p: ArrayLike) -> float:
    """Brier score: mean squared difference between probability and 0/1 outcome.

    Args:
        y: 0/1 labels, shape (n,).
        p: predicted probabilities in [0, 1], shape (n,).

    Returns:
        Brier score in [0, 1]; lower is better.

    Raises:
        ValidationError: shapes differ, labels are not 0/1 or p is not in [0, 1].
    """
    yy = _binary_labels(y)
    pp = _scores(p, yy, "p")
    _probabilities(pp)
    return float(np.mean((pp - yy) ** 2))


def reliability_curve(y: ArrayLike, p: ArrayLike, n_bins: int = 10) -> pd.DataFrame:
    """Calibration table: observed positive rate per equal-width bin of predicted probability.

    Bin b covers [b/n_bins, (b+1)/n_bins); p = 1 falls in the last bin. Empty bins are dropped.

    Args:
        y: 0/1 labels, shape (n,).
        p: predicted probabilities in [0, 1], shape (n,).
        n_bins: number of equal-width bins on [0, 1].

    Returns:
        DataFrame with the columns ``bin`` (0-based index), ``p_mean`` (mean prediction in
        the bin), ``y_rate`` (fraction of positives in the bin) and ``count``.

    Raises:
        ValidationError: bad labels or probabilities, or ``n_bins`` < 1.
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, int | np.integer) or n_bins < 1:
        raise ValidationError(f"n_bins must be a positive integer; got {n_bins!r}")
    yy = _binary_labels(y)
    pp = _scores(p, yy, "p")
    _probabilities(pp)
    b = np.minimum((pp * n_bins).astype(np.int64), n_bins - 1)
    count = np.bincount(b, minlength=n_bins)
    keep = count > 0
    p_sum = np.bincount(b, weights=pp, minlength=n_bins)
    y_sum = np.bincount(b, weights=yy, minlength=n_bins)
    return pd.DataFrame(
        {
            "bin": np.flatnonzero(keep),
            "p_mean": p_sum[keep] / count[keep],
            "y_rate": y_sum[keep] / count[keep],
            "count": count[keep],
        }
    )


def predicted_positive_rate(p: ArrayLike, threshold: float = 0.5) -> float:
    """Fraction of pairs called positive, i.e. with ``p >= threshold``.

    Args:
        p: finite scores or probabilities, shape (n,).
        threshold: decision threshold.

    Returns:
        The rate in [0, 1] (NaN for an empty input).

    Raises:
        ValidationError: p is not 1-D or not finite.
    """
    pp = _as_float(p, "p")
    if pp.ndim != 1:
        raise ValidationError(f"p must be 1-D (one score per pair); got shape {pp.shape}")
    if not np.isfinite(pp).all():
        raise ValidationError("p has non-finite value(s) (NaN or inf); drop those pairs or impute a score")
    return float(np.mean(pp >= threshold)) if pp.size else float("nan")


def classification_metrics(
    y: ArrayLike, score: ArrayLike, groups: ArrayLike, *, threshold: float = 0.5
) -> dict[str, float]:
    """All CORE classification metrics of one method on one set of (perturbation, gene) pairs.

    Args:
        y: 0/1 labels, shape (n,).
        score: finite scores, shape (n,); probabilities in [0, 1] for ``brier``.
        groups: gene of each pair, shape (n,).
        threshold: score at or above which a pair is called positive.

    Returns:
        Dict with the keys of :data:`CLASSIFICATION_METRICS` (see :data:`METRIC_DEFINITIONS`):
        ``auroc``, ``auprc``, ``macro_gene_auroc``, ``n_pairs``, ``n_genes_macro``,
        ``predicted_positive_rate``, ``true_positive_rate`` (the prevalence of positives)
        and ``brier`` (NaN when a score lies outside [0, 1]).

    Raises:
        ValidationError: shapes differ, labels are not 0/1, scores are not finite or a gene is missing.
    """
    yy, ss, codes, _ = _binary_task(y, score, groups)
    two_classes = yy.min() != yy.max()
    auc, both = _per_group_auroc(yy, ss, codes)
    is_prob = bool(((ss >= 0) & (ss <= 1)).all())
    return {
        "auroc": float(roc_auc_score(yy, ss)) if two_classes else float("nan"),
        "auprc": float(average_precision_score(yy, ss)) if two_classes else float("nan"),
        "macro_gene_auroc": float(auc[both].mean()) if both.any() else float("nan"),
        "n_pairs": int(yy.size),
        "n_genes_macro": int(both.sum()),
        "predicted_positive_rate": float(np.mean(ss >= threshold)),
        "true_positive_rate": float(yy.mean()),
        "brier": float(np.mean((ss - yy) ** 2)) if is_prob else float("nan"),
    }


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
        ValidationError: bad inputs, ``n_boot`` < 1 or ``ci`` outside (0, 1).
    """
    if isinstance(n_boot, bool) or not isinstance(n_boot, int | np.integer) or n_boot < 1:
        raise ValidationError(f"n_boot must be a positive integer; got {n_boot!r}")
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
