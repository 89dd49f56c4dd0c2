"""The app's metric and task wording comes from the core's registries (no Streamlit run needed)."""

from __future__ import annotations

import pytest

from pages import _widgets as ui
from perturb_core.data.registry import TASK_SPECS, TASKS
from perturb_core.metrics import CLASSIFICATION_METRICS, METRICS, REGRESSION_METRICS


def test_task_wording_covers_exactly_the_core_tasks() -> None:
    assert tuple(TASK_SPECS) == TASKS
    assert TASK_SPECS["de"].label == "DE: does g respond at all?"
    assert TASK_SPECS["dir"].truth == ("down", "up")  # label 0, label 1


@pytest.mark.parametrize("name", list(METRICS))
def test_metric_help_states_definition_unit_and_direction(name: str) -> None:
    spec = METRICS[name]
    text = ui.metric_help(name)
    assert text.startswith(spec.definition) and f"Unit: {spec.unit}" in text and spec.better in text
    assert ui.metric_label(name) == spec.label
    assert spec.label.startswith(ui.short_label(name)) and " (" not in ui.short_label(name)
    if spec.higher_is_better is None:
        assert "higher is better" not in text and "lower is better" not in text


def test_short_labels_of_tiles_and_counts() -> None:
    assert [ui.short_label(m) for m in REGRESSION_METRICS] == [
        "Pearson r",
        "Cosine",
        "MAE",
        "MSE",
        "Sign accuracy",
        "R²",
        "Predictive R²",
    ]
    assert [m for m in METRICS if METRICS[m].count] == ["n_pairs", "n_genes_macro", "n_queries"]
    assert [m for m in CLASSIFICATION_METRICS if not METRICS[m].count] == [
        "auroc",
        "auprc",
        "macro_gene_auroc",
        "predicted_positive_rate",
        "true_positive_rate",
        "brier",
    ]


def test_definitions_table_has_units_and_directions() -> None:
    table = ui.definitions_table(["mae", "predicted_positive_rate"])
    assert list(table.columns) == ["metric", "definition", "unit", "direction"]
    assert list(table["direction"]) == ["lower is better", "neither direction is better"]
    assert table["unit"].iloc[0] == METRICS["mae"].unit
