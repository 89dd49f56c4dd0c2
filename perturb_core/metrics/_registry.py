"""The metric registry: label, definition, unit and direction of every metric the package reports.

The app, the CLI and the docs read a metric's description from here; :data:`REGRESSION_METRICS`,
:data:`CLASSIFICATION_METRICS` and :data:`METRIC_DEFINITIONS` are views of :data:`METRICS`, so
nothing is declared twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from perturb_core.errors import check_choice
from perturb_core.spec import registry

__all__ = [
    "CLASSIFICATION_METRICS",
    "METRICS",
    "METRIC_DEFINITIONS",
    "REGRESSION_METRICS",
    "RETRIEVAL_METRICS",
    "MetricFamily",
    "MetricSpec",
    "metric",
]

MetricFamily = Literal["regression", "classification", "lgr_run", "retrieval"]
"""Where a metric comes from: a column of :func:`~perturb_core.metrics.regression_metrics` (per LGR
query), a key of :func:`~perturb_core.metrics.classification_metrics` (per CORE pair set), a
per-method figure of an LGR evaluation run, or a per-query retrieval-quality score of an LGR
selector against the oracle's neighbours (:func:`~perturb_core.metrics.retrieval_quality`)."""

_RANK_SCORES = (
    "rank scores (the built datasets' deltas are inverse-normal rank scores, not log fold "
    "changes; an imported dataset keeps its own delta units)"
)


@dataclass(frozen=True)
class MetricSpec:
    """One metric.

    Attributes:
        name: the column or dict key, as in the CLI contract.
        label: human label for tables and tiles.
        definition: one-line formula or definition.
        unit: what the number is, with its range where it has one.
        higher_is_better: ``True``/``False`` for a score with a direction; ``None`` where neither
            direction is better (counts, rates to compare with the true rate, prevalence).
        family: where the metric comes from (see :data:`MetricFamily`).
        count: whether the number is a count (shown as a number, not compared as a score).
    """

    name: str
    label: str
    definition: str
    unit: str
    higher_is_better: bool | None
    family: MetricFamily
    count: bool = False

    @property
    def better(self) -> str:
        """``"higher is better"``, ``"lower is better"`` or ``"neither direction is better"``."""
        if self.higher_is_better is None:
            return "neither direction is better"
        return "higher is better" if self.higher_is_better else "lower is better"


_SPECS = (
    # regression, per query over its valid genes g = 1..n (x = prediction, y = truth)
    MetricSpec(
        "pearson",
        "Pearson r",
        "r = Σ(x−x̄)(y−ȳ) / √(Σ(x−x̄)² · Σ(y−ȳ)²) over the query's genes",
        "Pearson r, dimensionless [-1, 1]",
        True,
        "regression",
    ),
    MetricSpec(
        "cosine",
        "Cosine",
        "cos = Σxy / √(Σx² · Σy²) over the query's genes (no centring)",
        "cosine similarity, dimensionless [-1, 1]",
        True,
        "regression",
    ),
    MetricSpec(
        "mae",
        "MAE",
        "MAE = (1/n) Σ|x − y| over the query's genes",
        "mean absolute difference of " + _RANK_SCORES,
        False,
        "regression",
    ),
    MetricSpec(
        "mse",
        "MSE",
        "MSE = (1/n) Σ(x − y)² over the query's genes",
        "mean squared difference of " + _RANK_SCORES,
        False,
        "regression",
    ),
    MetricSpec(
        "sign_accuracy",
        "Sign accuracy",
        "fraction of genes with sign(x) = sign(y); sign(0) = 0 matches only 0",
        "fraction of genes [0, 1]",
        True,
        "regression",
    ),
    MetricSpec(
        "r2",
        "R² (squared correlation of the linear fit = Pearson r²)",
        "R² of the least-squares fit y ≈ a + b·x, which equals Pearson r² (the paper's definition; it "
        "repeats Pearson r and ignores scale and offset: see r2_pred); NaN if x or y is constant",
        "squared Pearson r, dimensionless [0, 1]",
        True,
        "regression",
    ),
    MetricSpec(
        "r2_pred",
        "Predictive R² (1 − SSE/SST, can be negative)",
        "1 − Σ(y − x)² / Σ(y − ȳ)² over the query's genes: no refitted slope or intercept, so a "
        "mis-scaled or shifted prediction is penalised (negative = worse than the query's own mean)",
        "fraction of the truth's variance explained, dimensionless (−∞, 1]",
        True,
        "regression",
    ),
    # retrieval quality, per query, against the oracle's k neighbours
    MetricSpec(
        "precision_at_k",
        "Precision@k vs the oracle",
        "|N ∩ O| / |N|: share of the method's aggregated neighbours N (at most k) that are among the "
        "oracle's k pool drugs O closest (Pearson r) to the true response",
        "fraction of neighbours [0, 1] (random ≈ k / pool size)",
        True,
        "retrieval",
    ),
    MetricSpec(
        "mrr",
        "Reciprocal rank of the first oracle neighbour",
        "1 / (position in the method's neighbour list of the first drug among the oracle's k), 0 if "
        "none; averaged over queries (mean reciprocal rank)",
        "reciprocal rank [0, 1]",
        True,
        "retrieval",
    ),
    # classification, over (perturbation, gene) pairs
    MetricSpec(
        "auroc",
        "AUROC",
        "P(score of a random positive pair > score of a random negative pair), ties count ½",
        "probability [0, 1] (0.5 = chance)",
        True,
        "classification",
    ),
    MetricSpec(
        "auprc",
        "AUPRC",
        "average precision = Σₖ (Rₖ − Rₖ₋₁) · Pₖ over score thresholds (sklearn)",
        "average precision [0, 1] (chance = the positive share)",
        True,
        "classification",
    ),
    MetricSpec(
        "macro_gene_auroc",
        "Per-gene AUROC (macro)",
        "AUROC over perturbations within each gene, averaged over genes with both classes",
        "mean of per-gene AUROCs [0, 1] (0.5 = chance)",
        True,
        "classification",
    ),
    MetricSpec(
        "n_pairs",
        "Pairs",
        "number of (perturbation, gene) pairs scored",
        "count of pairs",
        None,
        "classification",
        count=True,
    ),
    MetricSpec(
        "n_genes_macro",
        "Genes in macro AUROC",
        "number of genes with both classes (those averaged in macro AUROC)",
        "count of genes",
        None,
        "classification",
        count=True,
    ),
    MetricSpec(
        "predicted_positive_rate",
        "Predicted positive rate",
        "fraction of pairs with score ≥ threshold (compare with the true rate)",
        "fraction of pairs [0, 1]",
        None,
        "classification",
    ),
    MetricSpec(
        "true_positive_rate",
        "Positive share (prevalence)",
        "fraction of pairs whose label is positive (prevalence, not recall)",
        "fraction of pairs [0, 1]",
        None,
        "classification",
    ),
    MetricSpec(
        "brier",
        "Brier score",
        "Brier = (1/n) Σ(p − y)² for probabilities p in [0, 1]; lower is better",
        "mean squared error of probabilities [0, 1]",
        False,
        "classification",
    ),
    # per method of an LGR evaluation run
    MetricSpec(
        "n_queries",
        "Queries",
        "number of test (cell line, drug) queries the method was evaluated on",
        "count of queries",
        None,
        "lgr_run",
        count=True,
    ),
    MetricSpec(
        "mean_k_used",
        "Mean k used",
        "mean over queries of k_used, the valid in-pool neighbours the selector itself gave (≤ k, before hybrid padding)",
        "neighbours per query, mean count [0, k]",
        None,
        "lgr_run",
    ),
)


METRICS: Mapping[str, MetricSpec] = registry(*_SPECS)
"""Metric name -> :class:`MetricSpec` (read-only), regression, then classification, then LGR run figures."""

REGRESSION_METRICS: tuple[str, ...] = tuple(n for n, s in METRICS.items() if s.family == "regression")
"""Columns of :func:`~perturb_core.metrics.regression_metrics`, in order."""

RETRIEVAL_METRICS: tuple[str, ...] = tuple(n for n, s in METRICS.items() if s.family == "retrieval")
"""Per-query retrieval-quality columns of an LGR evaluation (NaN for methods without neighbours)."""

CLASSIFICATION_METRICS: tuple[str, ...] = tuple(n for n, s in METRICS.items() if s.family == "classification")
"""Keys of :func:`~perturb_core.metrics.classification_metrics`, in order."""

METRIC_DEFINITIONS: Mapping[str, str] = MappingProxyType({n: s.definition for n, s in METRICS.items()})
"""One-line formula or definition of every metric, keyed by its column or dict key (read-only)."""


def metric(name: str) -> MetricSpec:
    """The spec of metric ``name`` (case-, space- and punctuation-insensitive).

    Args:
        name: a key of :data:`METRICS`, e.g. ``"macro_gene_auroc"``.

    Returns:
        Its :class:`MetricSpec`.

    Raises:
        UnknownNameError: unknown name; the message lists the valid ones.
    """
    return METRICS[check_choice("metric", name, METRICS)]
