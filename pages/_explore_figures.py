"""Pure figure builders of the gene view, signature query and enrichment (data in, plotly figure out)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from pages._figures import plotly_layout

#: Diverging, colour-blind safe (blue = down, red = up), centred on 0.
DIVERGING = "RdBu_r"


def response_heatmap(
    matrix: pd.DataFrame, *, gene: str, units: str, max_drugs: int | None = None
) -> go.Figure:
    """Drug x cell line heatmap of one gene's response (NaN = not measured), centred on 0.

    Args:
        matrix: drugs (rows) x cell lines (columns), e.g. :meth:`GeneView.matrix`.
        gene: the gene, for the title.
        units: the value's unit, for the colour bar.
        max_drugs: keep this many rows from each end (most up, most down); ``None``: all.
    """
    m = matrix
    if max_drugs is not None and len(m) > 2 * max_drugs:
        m = pd.concat([m.head(max_drugs), m.tail(max_drugs)])
    z = m.to_numpy(dtype=float)
    lim = float(np.nanmax(np.abs(z))) if np.isfinite(z).any() else 1.0
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[str(c) for c in m.columns],
            y=[str(i) for i in m.index],
            colorscale=DIVERGING,
            zmid=0,
            zmin=-lim,
            zmax=lim,
            colorbar={"title": {"text": "rank score z", "side": "right"}},
            hovertemplate="%{y} in %{x}<br>z = %{z:.2f}<extra></extra>",
            hoverongaps=False,
        )
    )
    height = min(2400, 120 + 14 * len(m))
    plotly_layout(
        fig,
        height=height,
        title={
            "text": f"{gene}: response per drug (rows) and cell line (columns); {units}",
            "font": {"size": 13},
        },
        xaxis={"tickangle": -60, "tickfont": {"size": 10}},
        yaxis={"autorange": "reversed", "tickfont": {"size": 10}},
        margin={"l": 10, "r": 10, "t": 80, "b": 10},
    )
    return fig


def connectivity_bars(by_drug: pd.DataFrame, *, n: int = 15) -> go.Figure:
    """Mean WTCS per drug: the ``n`` most positive (mimic) and most negative (reverse) drugs."""
    t = by_drug.sort_values("mean_score", ascending=False)
    if len(t) > 2 * n:
        t = pd.concat([t.head(n), t.tail(n)])
    colours = np.where(t["mean_score"].to_numpy() >= 0, "#D55E00", "#0072B2")
    fig = go.Figure(
        go.Bar(
            x=t["mean_score"],
            y=t["drug"],
            orientation="h",
            marker_color=colours,
            error_x=None,
            customdata=np.stack([t["min_score"], t["max_score"], t["n_lines"], t["moa"].astype(str)], axis=1),
            hovertemplate="%{y}: mean WTCS %{x:.3f}<br>range %{customdata[0]:.2f} to %{customdata[1]:.2f} "
            "over %{customdata[2]} lines<br>%{customdata[3]}<extra></extra>",
        )
    )
    plotly_layout(
        fig,
        height=min(1200, 120 + 18 * len(t)),
        title={"text": "Mean WTCS per drug over the lines scored (+ mimics the query, - reverses it)"},
        xaxis={"range": [-1, 1], "title": "WTCS (dimensionless, -1..1)"},
        yaxis={"autorange": "reversed", "tickfont": {"size": 10}},
    )
    return fig
