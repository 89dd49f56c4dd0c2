"""Evaluation metrics: LGR regression of expression deltas and CORE classification of gene responses.

Every function is pure and vectorised over queries, pairs or genes. Inputs are validated
once and a bad one raises :class:`~perturb_core.errors.ValidationError`. :data:`METRICS` says
what each number is (label, definition, unit, whether higher is better).

Modules (private; import from here):
    ``_regression``: :func:`regression_metrics`, :func:`top_variable_genes`.
    ``_classification``: :func:`auroc`, :func:`auprc`, :func:`macro_gene_auroc`, :func:`brier`,
    :func:`reliability_curve`, :func:`predicted_positive_rate`, :func:`classification_metrics`.
    ``_retrieval``: :func:`retrieval_quality` (precision@k and reciprocal rank against the oracle).
    ``_bootstrap``: :func:`summarise`, :func:`bootstrap_classification`.
    ``_registry``: :class:`MetricSpec`, :data:`METRICS`, :func:`metric` and the derived views.
    ``_validation``: the shared input checks.
"""

from __future__ import annotations

from perturb_core.metrics._bootstrap import bootstrap_classification, summarise
from perturb_core.metrics._classification import (
    GeneAUROC,
    auprc,
    auroc,
    brier,
    classification_metrics,
    macro_gene_auroc,
    predicted_positive_rate,
    reliability_curve,
)
from perturb_core.metrics._registry import (
    CLASSIFICATION_METRICS,
    METRIC_DEFINITIONS,
    METRICS,
    REGRESSION_METRICS,
    RETRIEVAL_METRICS,
    MetricFamily,
    MetricSpec,
    metric,
)
from perturb_core.metrics._regression import regression_metrics, top_variable_genes
from perturb_core.metrics._retrieval import retrieval_quality

__all__ = [
    "CLASSIFICATION_METRICS",
    "METRICS",
    "METRIC_DEFINITIONS",
    "REGRESSION_METRICS",
    "RETRIEVAL_METRICS",
    "GeneAUROC",
    "MetricFamily",
    "MetricSpec",
    "auprc",
    "auroc",
    "bootstrap_classification",
    "brier",
    "classification_metrics",
    "macro_gene_auroc",
    "metric",
    "predicted_positive_rate",
    "regression_metrics",
    "reliability_curve",
    "retrieval_quality",
    "summarise",
    "top_variable_genes",
]
