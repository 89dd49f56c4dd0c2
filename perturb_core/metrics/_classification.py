"""CORE classification metrics of gene responses: AUROC, AUPRC, macro per-gene AUROC, calibration, rates."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy.stats import rankdata
from sklearn.metrics import average_precision_score, roc_auc_score

from perturb_core.errors import ValidationError
from perturb_core.metrics._validation import _as_float, _binary_labels, _binary_task, _probabilities, _scores

__all__ = [
    "GeneAUROC",
    "auprc",
    "auroc",
    "brier",
    "classification_metrics",
    "macro_gene_auroc",
    "predicted_positive_rate",
    "reliability_curve",
]


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
