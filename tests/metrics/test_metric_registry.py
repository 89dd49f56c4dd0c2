"""The metric registry: every reported metric has one spec; the old names are views of it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from perturb_core.errors import UnknownNameError
from perturb_core.metrics import (
    CLASSIFICATION_METRICS,
    METRIC_DEFINITIONS,
    METRICS,
    REGRESSION_METRICS,
    RETRIEVAL_METRICS,
    MetricSpec,
    classification_metrics,
    metric,
    regression_metrics,
    retrieval_quality,
)


def test_every_metric_has_a_definition() -> None:
    for name in (*REGRESSION_METRICS, *CLASSIFICATION_METRICS):
        assert METRIC_DEFINITIONS[name].strip()


def test_registry_covers_every_reported_metric() -> None:
    assert REGRESSION_METRICS == ("pearson", "cosine", "mae", "mse", "sign_accuracy", "r2", "r2_pred")
    assert CLASSIFICATION_METRICS == (
        "auroc",
        "auprc",
        "macro_gene_auroc",
        "n_pairs",
        "n_genes_macro",
        "predicted_positive_rate",
        "true_positive_rate",
        "brier",
    )
    assert RETRIEVAL_METRICS == ("precision_at_k", "mrr")
    assert list(METRICS) == [
        *REGRESSION_METRICS,
        *RETRIEVAL_METRICS,
        *CLASSIFICATION_METRICS,
        "n_queries",
        "mean_k_used",
    ]
    # the functions' outputs are exactly the registered families, in order
    out = regression_metrics(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0]))
    assert tuple(out.columns) == REGRESSION_METRICS
    assert tuple(retrieval_quality(np.array([[0, 1]]), np.array([[1, 2]])).columns) == RETRIEVAL_METRICS
    assert (
        tuple(classification_metrics([0, 1, 1], [0.1, 0.7, 0.4], ["a", "a", "b"])) == CLASSIFICATION_METRICS
    )


def test_specs_are_complete_and_consistent() -> None:
    for name, spec in METRICS.items():
        assert isinstance(spec, MetricSpec) and spec.name == name
        assert spec.label.strip() and spec.definition.strip() and spec.unit.strip()
        assert spec.higher_is_better in (True, False, None)
        assert METRIC_DEFINITIONS[name] == spec.definition
    assert set(METRIC_DEFINITIONS) == set(METRICS)
    assert len({s.label for s in METRICS.values()}) == len(METRICS)  # labels tell metrics apart


@pytest.mark.parametrize(
    ("name", "higher_is_better"),
    [
        ("pearson", True),
        ("r2", True),
        ("sign_accuracy", True),
        ("auroc", True),
        ("macro_gene_auroc", True),
        ("mae", False),
        ("mse", False),
        ("brier", False),
        ("predicted_positive_rate", None),
        ("true_positive_rate", None),
        ("n_pairs", None),
        ("n_genes_macro", None),
        ("n_queries", None),
        ("mean_k_used", None),
    ],
)
def test_direction(name: str, higher_is_better: bool | None) -> None:
    assert METRICS[name].higher_is_better is higher_is_better
    expected = {True: "higher is better", False: "lower is better", None: "neither direction is better"}
    assert METRICS[name].better == expected[higher_is_better]


def test_labels_and_units_say_what_the_number_is() -> None:
    assert "squared" in METRICS["r2"].label and "linear fit" in METRICS["r2"].label
    assert METRICS["true_positive_rate"].label == "Positive share (prevalence)"
    assert "rank scores" in METRICS["mae"].unit and "not log fold changes" in METRICS["mae"].unit
    assert "rank scores" in METRICS["mse"].unit
    assert "[-1, 1]" in METRICS["pearson"].unit
    assert METRICS["sign_accuracy"].unit.startswith("fraction of genes")
    assert METRICS["n_pairs"].unit.startswith("count")
    assert METRICS["auroc"].unit.startswith("probability")


def test_registry_is_read_only() -> None:
    with pytest.raises(TypeError):
        METRICS["new"] = METRICS["mae"]  # type: ignore[index]
    with pytest.raises(TypeError):
        METRIC_DEFINITIONS["mae"] = "x"  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        METRICS["mae"].label = "x"  # type: ignore[misc]


def test_metric_lookup() -> None:
    assert metric("macro_gene_auroc") is METRICS["macro_gene_auroc"]
    assert metric("Macro-Gene AUROC") is METRICS["macro_gene_auroc"]  # insensitive match
    with pytest.raises(UnknownNameError, match=r"unknown metric 'spearman'; valid: pearson, cosine, mae"):
        metric("spearman")
