"""Pure figure builders: data in, ``plotly.graph_objects.Figure`` out (no Streamlit here).

Every chart of the app is built by one function of this module, so each can be tested
without a running app. The palette lives here too: Okabe-Ito, colour-blind safe.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from numpy.typing import ArrayLike

# Okabe-Ito (colour-blind safe): positive = blue, negative = orange, unmeasured = grey.
POSITIVE = "#0072B2"
NEGATIVE = "#E69F00"
UNMEASURED = "#999999"
QUERY = "#000000"
ACCENT = "#009E73"  # bluish green: the selected method / observed values
VERMILLION = "#D55E00"
SKY = "#56B4E9"
PURPLE = "#CC79A7"
PALETTE = [POSITIVE, NEGATIVE, ACCENT, VERMILLION, SKY, PURPLE, "#555555", "#F0E442"]
PATH_NODE = "#C8CDD3"
CROSSLINE = PURPLE  # cross-line evidence (co_response edges): its own colour and legend entry
CROSSLINE_LEGEND = "cross-line evidence (other lines' training labels)"
RELATION_EDGE = "#B0B7C0"
EDGE_TEXT = "#5A6270"
NODE_OUTLINE = "#1B1F24"
ERROR_BAR = "#333"

#: role -> (legend label, colour, marker symbol, size) of evidence-graph nodes; shapes differ as well as colours.
ROLE_STYLE: dict[str, dict[str, Any]] = {
    "query": {"label": "query perturbation p", "color": QUERY, "symbol": "star", "size": 26},
    "gene": {"label": "gene g", "color": ACCENT, "symbol": "hexagon", "size": 22},
    "positive": {
        "label": "positive: g {pos} under it (training)",
        "color": POSITIVE,
        "symbol": "circle",
        "size": 15,
    },
    "negative": {
        "label": "negative: g {neg} under it (training)",
        "color": NEGATIVE,
        "symbol": "diamond",
        "size": 15,
    },
    "unmeasured": {
        "label": "unmeasured: g not measured under it",
        "color": UNMEASURED,
        "symbol": "circle-open",
        "size": 13,
    },
    "intermediate": {
        "label": "path node (gene, pathway, GO term…)",
        "color": PATH_NODE,
        "symbol": "square",
        "size": 9,
    },
}
#: evidence side -> colour of its dotted edge to the gene and of its marker in text.
SIDE_COLOURS = {"positive": POSITIVE, "negative": NEGATIVE, "unmeasured": UNMEASURED}
TIGHT_MARGIN = {"l": 10, "r": 10, "t": 10, "b": 10}


def fmt(x: object, digits: int = 3) -> str:
    """A number for display in figures, tiles and tables (``–`` for missing)."""
    if x is None:
        return "–"
    try:
        v = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(x)
    if math.isnan(v):
        return "–"
    return f"{v:.{digits}f}"


def plotly_layout(fig: go.Figure, *, height: int = 380, **kwargs: Any) -> go.Figure:
    """Shared plotly look (white template, readable fonts, tight margins); ``kwargs`` override it."""
    layout: dict[str, Any] = {
        "template": "plotly_white",
        "height": height,
        "margin": {"l": 10, "r": 10, "t": 40, "b": 10},
        "font": {"size": 13},
        "colorway": PALETTE,
    }
    layout.update(kwargs)
    fig.update_layout(**layout)
    return fig


def method_colours(methods: Sequence[str]) -> dict[str, str]:
    """One colour-blind-safe colour per method, the same in every chart of a run."""
    return {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(methods)}


# --------------------------------------------------------------------------- Retrieval explorer


def prediction_scatter(
    predicted: ArrayLike, observed: ArrayLike, genes: ArrayLike, *, units: str = "inverse-normal rank score"
) -> go.Figure:
    """Predicted vs observed delta, one point per gene (hover shows it), with the y = x line.

    Args:
        predicted: predicted delta per gene (NaN where unknown).
        observed: observed delta per gene (NaN where unmeasured).
        genes: gene symbols, same order.
        units: what a delta is measured in, for the axis titles.
    """
    pred = np.asarray(predicted, dtype=float)
    truth = np.asarray(observed, dtype=float)
    names = np.asarray(genes)
    ok = np.isfinite(pred) & np.isfinite(truth)
    fig = go.Figure(
        go.Scattergl(
            x=pred[ok],
            y=truth[ok],
            mode="markers",
            text=names[ok],
            marker={"size": 5, "color": POSITIVE, "opacity": 0.55},
            hovertemplate="<b>%{text}</b><br>predicted %{x:.2f}<br>observed %{y:.2f}<extra></extra>",
            name="genes",
        )
    )
    if ok.any():
        lo = float(min(pred[ok].min(), truth[ok].min()))
        hi = float(max(pred[ok].max(), truth[ok].max()))
        fig.add_trace(
            go.Scatter(
                x=[lo, hi],
                y=[lo, hi],
                mode="lines",
                line={"color": UNMEASURED, "dash": "dash"},
                name="y = x",
                hoverinfo="skip",
            )
        )
    return plotly_layout(
        fig,
        height=420,
        margin=TIGHT_MARGIN,
        xaxis_title=f"predicted Δ ({units})",
        yaxis_title=f"observed Δ ({units})",
        showlegend=False,
    )


# --------------------------------------------------------------------------- Evidence graph


def vote_bars(prior: float | None, vote: float | None, score: float | None, *, outcome: str) -> go.Figure:
    """Horizontal bars: the gene-frequency prior, the evidence vote and the final score.

    Args:
        prior: the gene-frequency prior (``None`` draws an empty bar labelled ``–``).
        vote: the evidence vote.
        score: the final score.
        outcome: the positive outcome, for the axis title ``P(g <outcome>)``.
    """
    vals = [prior, vote, score]
    fig = go.Figure(
        go.Bar(
            x=[0 if v is None else v for v in vals],
            y=["gene-frequency prior", "evidence vote", "final score"],
            orientation="h",
            marker_color=[UNMEASURED, POSITIVE, ACCENT],
            text=[fmt(v) for v in vals],
            textposition="outside",
            hovertemplate="%{y}: %{x:.3f}<extra></extra>",
        )
    )
    return plotly_layout(
        fig,
        height=200,
        xaxis={"range": [0, 1.18], "title": f"P(g {outcome})"},
        yaxis={"autorange": "reversed"},
        margin=TIGHT_MARGIN,
    )


# --------------------------------------------------------------------------- Benchmarks


def metric_bar(rows: pd.DataFrame, colours: Mapping[str, str]) -> go.Figure:
    """One metric's mean per method with asymmetric 95% interval error bars.

    Args:
        rows: one row per method with columns ``method``, ``mean``, ``ci_low``, ``ci_high``.
        colours: method -> colour (see :func:`method_colours`).
    """
    fig = go.Figure(
        go.Bar(
            x=rows["method"],
            y=rows["mean"],
            marker_color=[colours[m] for m in rows["method"]],
            error_y={
                "type": "data",
                "symmetric": False,
                "array": (rows["ci_high"] - rows["mean"]).fillna(0),
                "arrayminus": (rows["mean"] - rows["ci_low"]).fillna(0),
                "color": ERROR_BAR,
            },
            hovertemplate="%{x}: %{y:.3f}<extra></extra>",
        )
    )
    return plotly_layout(fig, height=260, showlegend=False, margin=TIGHT_MARGIN)


def calibration_curve(reliability: pd.DataFrame, colours: Mapping[str, str]) -> go.Figure:
    """Reliability curve per method (marker size = pairs in the bin) against the diagonal.

    Args:
        reliability: rows ``method``, ``p_mean`` (mean predicted probability in the bin),
            ``y_rate`` (observed positive rate) and ``count`` (pairs in the bin).
        colours: method -> colour.
    """
    fig = go.Figure(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            line={"dash": "dash", "color": UNMEASURED},
            name="perfectly calibrated",
        )
    )
    for m, grp in reliability.groupby("method", sort=False):
        fig.add_trace(
            go.Scatter(
                x=grp["p_mean"],
                y=grp["y_rate"],
                mode="lines+markers",
                name=str(m),
                marker={
                    "size": 6 + 10 * grp["count"] / max(1, grp["count"].max()),
                    "color": colours[m],
                },
                line={"color": colours[m]},
                customdata=grp["count"],
                hovertemplate="mean predicted %{x:.3f}<br>observed rate %{y:.3f}<br>"
                "%{customdata} pairs<extra></extra>",
            )
        )
    return plotly_layout(
        fig,
        height=380,
        margin=TIGHT_MARGIN,
        xaxis_title="mean predicted probability in bin",
        yaxis_title="observed positive rate in bin",
        legend={"orientation": "h", "y": -0.2},
    )


def gene_auroc_histogram(per_gene: pd.DataFrame, colours: Mapping[str, str]) -> go.Figure:
    """Overlaid histograms of per-gene AUROC per method, with the chance line at 0.5.

    Args:
        per_gene: rows ``method``, ``auroc`` (NaN for genes without both classes: left out).
        colours: method -> colour.
    """
    pg = per_gene.dropna(subset=["auroc"])
    fig = go.Figure(
        [
            go.Histogram(
                x=grp["auroc"],
                name=str(m),
                xbins={"start": 0, "end": 1.0001, "size": 0.05},
                marker_color=colours[m],
                opacity=0.55,
            )
            for m, grp in pg.groupby("method", sort=False)
        ]
    )
    fig.add_vline(x=0.5, line_dash="dash", line_color=UNMEASURED)
    return plotly_layout(
        fig,
        height=380,
        barmode="overlay",
        margin=TIGHT_MARGIN,
        xaxis_title="AUROC over the test perturbations of a gene",
        yaxis_title="genes",
        legend={"orientation": "h", "y": -0.2},
    )


# --------------------------------------------------------------------------- Data


def drugs_per_cell_line(summary: pd.DataFrame) -> go.Figure:
    """Bar chart of the drugs profiled per cell line.

    Args:
        summary: rows ``cell line``, ``drugs``.
    """
    fig = px.bar(summary, x="cell line", y="drugs", labels={"drugs": "drugs profiled"})
    plotly_layout(fig, height=300, title="Drugs profiled per cell line")
    fig.update_traces(marker_color=POSITIVE)
    return fig
