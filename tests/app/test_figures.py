"""Every figure builder of ``pages/_figures.py`` on tiny inputs, without Streamlit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from pages import _figures as figs

ROOT = Path(__file__).resolve().parents[2]


def test_figures_module_does_not_import_streamlit() -> None:
    code = "import sys, pages._figures; print('streamlit' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("value", "digits", "shown"),
    [(None, 3, "–"), (float("nan"), 3, "–"), (0.12345, 3, "0.123"), (2, 1, "2.0"), ("abc", 3, "abc")],
)
def test_fmt(value: object, digits: int, shown: str) -> None:
    assert figs.fmt(value, digits) == shown


def test_plotly_layout_defaults_and_overrides() -> None:
    fig = figs.plotly_layout(go.Figure(), height=123, margin=figs.TIGHT_MARGIN)
    assert fig.layout.height == 123
    assert fig.layout.margin.t == 10
    assert list(fig.layout.colorway) == figs.PALETTE
    assert fig.layout.font.size == 13


def test_method_colours_cycle_the_palette() -> None:
    methods = [f"m{i}" for i in range(len(figs.PALETTE) + 1)]
    colours = figs.method_colours(methods)
    assert colours["m0"] == figs.POSITIVE and colours["m1"] == figs.NEGATIVE
    assert colours[methods[-1]] == figs.PALETTE[0]


def test_prediction_scatter_skips_missing_genes_and_draws_the_diagonal() -> None:
    fig = figs.prediction_scatter([1.0, np.nan, -2.0], [0.5, 1.0, -1.0], ["A", "B", "C"])
    assert len(fig.data) == 2
    points, diagonal = fig.data
    assert list(points.text) == ["A", "C"]
    assert points.marker.color == figs.POSITIVE
    assert list(diagonal.x) == [-2.0, 1.0] and diagonal.line.color == figs.UNMEASURED
    assert fig.layout.xaxis.title.text == "predicted Δ (inverse-normal rank score)"
    assert fig.layout.yaxis.title.text == "observed Δ (inverse-normal rank score)"
    assert fig.layout.showlegend is False


def test_prediction_scatter_without_measured_genes_has_no_diagonal() -> None:
    fig = figs.prediction_scatter([np.nan], [1.0], ["A"])
    assert len(fig.data) == 1 and len(fig.data[0].x) == 0


def test_vote_bars() -> None:
    fig = figs.vote_bars(0.2, None, 0.4, outcome="responded")
    (bar,) = fig.data
    assert list(bar.x) == [0.2, 0, 0.4]
    assert list(bar.text) == ["0.200", "–", "0.400"]
    assert list(bar.marker.color) == [figs.UNMEASURED, figs.POSITIVE, figs.ACCENT]
    assert fig.layout.xaxis.title.text == "P(g responded)"


def test_metric_bar_has_interval_error_bars() -> None:
    rows = pd.DataFrame(
        {"method": ["a", "b"], "mean": [0.5, 0.7], "ci_low": [0.4, np.nan], "ci_high": [0.55, np.nan]}
    )
    fig = figs.metric_bar(rows, figs.method_colours(["a", "b"]))
    (bar,) = fig.data
    assert list(bar.marker.color) == [figs.POSITIVE, figs.NEGATIVE]
    assert list(bar.error_y.array) == pytest.approx([0.05, 0.0])
    assert list(bar.error_y.arrayminus) == pytest.approx([0.1, 0.0])
    assert fig.layout.height == 260 and fig.layout.showlegend is False


def test_calibration_curve_one_trace_per_method_plus_diagonal() -> None:
    rel = pd.DataFrame(
        {
            "method": ["a", "a", "b"],
            "p_mean": [0.1, 0.8, 0.5],
            "y_rate": [0.2, 0.7, 0.5],
            "count": [10, 30, 5],
        }
    )
    colours = figs.method_colours(["a", "b"])
    fig = figs.calibration_curve(rel, colours)
    assert [t.name for t in fig.data] == ["perfectly calibrated", "a", "b"]
    assert fig.data[0].line.color == figs.UNMEASURED
    assert fig.data[2].line.color == figs.NEGATIVE
    assert list(fig.data[1].marker.size) == pytest.approx([6 + 10 / 3, 16])
    assert fig.layout.xaxis.title.text == "mean predicted probability in bin"
    assert fig.layout.yaxis.title.text == "observed positive rate in bin"


def test_gene_auroc_histogram_drops_undefined_genes_and_marks_chance() -> None:
    per_gene = pd.DataFrame({"method": ["a", "a", "b"], "auroc": [0.5, np.nan, 0.9]})
    fig = figs.gene_auroc_histogram(per_gene, figs.method_colours(["a", "b"]))
    assert [t.name for t in fig.data] == ["a", "b"]
    assert list(fig.data[0].x) == [0.5]
    assert fig.data[1].marker.color == figs.NEGATIVE
    assert fig.layout.barmode == "overlay"
    assert fig.layout.shapes[0].x0 == 0.5
    assert fig.layout.xaxis.title.text == "AUROC over the test perturbations of a gene"
    assert fig.layout.yaxis.title.text == "genes"


def test_drugs_per_cell_line() -> None:
    summary = pd.DataFrame({"cell line": ["A549", "C32"], "drugs": [3, 5]})
    fig = figs.drugs_per_cell_line(summary)
    (bar,) = fig.data
    assert list(bar.y) == [3, 5] and bar.marker.color == figs.POSITIVE
    assert fig.layout.title.text == "Drugs profiled per cell line"
    assert fig.layout.yaxis.title.text == "drugs profiled"
