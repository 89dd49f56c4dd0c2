"""Pure figure builders of the Evidence graph page: the evidence graph at any scale and the vote's masses.

The graph shows the strongest items of each side (the full list is the page's table): p on
the left, the path nodes (pathways, GO terms, interactors) in the next column, the evidence
perturbations in one column (positive, then negative, then unmeasured, strongest first) and g
on the right. One row per node and a fixed row height keep every label apart; node size and
the width of the edge to g encode each item's vote weight.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import plotly.graph_objects as go

from pages._figures import (
    CROSSLINE,
    CROSSLINE_LEGEND,
    EDGE_TEXT,
    NEGATIVE,
    NODE_OUTLINE,
    POSITIVE,
    RELATION_EDGE,
    ROLE_STYLE,
    SIDE_COLOURS,
    UNMEASURED,
    fmt,
    plotly_layout,
)
from perturb_core.evidence import CROSSLINE_RELATION, CROSSLINE_SAME

if TYPE_CHECKING:
    from perturb_core.evidence import EvidenceGraph, EvidenceItem

SIDES = ("positive", "negative", "unmeasured")
#: Items drawn per side by default (the rest are counted as "+ N more" and listed in the table).
DEFAULT_PER_SIDE = 8
#: Pixels per row of the graph: more than twice the label font, so labels of one column never touch.
ROW_PX = 24
#: x of each column: p, path nodes, evidence, g.
COLUMN_X = {"query": 0.0, "intermediate": 2.0, "evidence": 3.4, "gene": 5.9}
MAX_LABEL = {"intermediate": 26, "evidence": 18}


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def focus(
    items: Mapping[str, Sequence[EvidenceItem]], per_side: int, totals: Mapping[str, int] | None = None
) -> tuple[dict[str, list[EvidenceItem]], dict[str, int]]:
    """The strongest ``per_side`` items of each side (by vote weight) and how many are left out.

    Args:
        items: side (``positive``, ``negative``, ``unmeasured``) -> its items.
        per_side: items kept per side (at least 1).
        totals: side -> how many items it has in all, when ``items`` lists only the strongest
            (an explanation lists 20 of its unmeasured relatives); default: the listed ones.
    """
    kept: dict[str, list[EvidenceItem]] = {}
    hidden: dict[str, int] = {}
    for side in SIDES:
        ranked = sorted(items.get(side, ()), key=lambda it: (-it.vote_weight, it.perturbation))
        kept[side] = ranked[: max(1, per_side)]
        hidden[side] = max(len(ranked), (totals or {}).get(side, 0)) - len(kept[side])
    return kept, hidden


def column_layout(
    kept: Mapping[str, Sequence[EvidenceItem]], hidden: Mapping[str, int], query: str, gene: str
) -> tuple[dict[str, tuple[float, float]], dict[str, float]]:
    """Positions of p, g, path nodes and evidence nodes, and the y of each side's "+ N more" row.

    Evidence rows are one unit apart, top to bottom; a path node sits at the mean row of the
    evidence it leads to, pushed down to keep one unit from the path node above it.
    """
    pos: dict[str, tuple[float, float]] = {}
    more: dict[str, float] = {}
    row = 0.0
    for side in SIDES:
        for it in kept[side]:
            if it.node not in pos:
                pos[it.node] = (COLUMN_X["evidence"], -row)
                row += 1
        if hidden.get(side):
            more[side] = -row
            row += 1
    reach: dict[str, list[float]] = {}
    for side in SIDES:
        for it in kept[side]:
            for nid in it.path[1:-1]:
                if nid not in pos and nid not in (query, gene):
                    reach.setdefault(nid, []).append(pos[it.node][1])
    y_prev = math.inf
    for nid, ys in sorted(reach.items(), key=lambda kv: -sum(kv[1]) / len(kv[1])):
        y = min(sum(ys) / len(ys), y_prev - 1.0)
        pos[nid] = (COLUMN_X["intermediate"], y)
        y_prev = y
    measured = [pos[it.node][1] for side in ("positive", "negative") for it in kept[side]]
    every = [y for _, y in pos.values()] or [0.0]
    pos[query] = (COLUMN_X["query"], (max(every) + min(every)) / 2)
    pos[gene] = (COLUMN_X["gene"], sum(measured) / len(measured) if measured else pos[query][1])
    return pos, more


def evidence_graph(
    graph: EvidenceGraph,
    outcome_words: tuple[str, str],
    items: Mapping[str, Sequence[EvidenceItem]],
    *,
    per_side: int = DEFAULT_PER_SIDE,
    totals: Mapping[str, int] | None = None,
) -> go.Figure:
    """The strongest evidence of one pair as a layered graph (node ids in customdata, for click selection).

    Args:
        graph: the evidence graph of :func:`perturb_core.evidence.explain` (names, kinds, edges).
        outcome_words: what a positive and a negative outcome are, e.g. ``("responded", "no response")``.
        items: side -> its evidence items (``ex.positive``, ``ex.negative``, ``ex.unmeasured``).
        per_side: evidence items drawn per side; the others are counted in a "+ N more" row.
        totals: side -> its number of items in all (see :func:`focus`).
    """
    nodes = {n.id: n for n in graph.nodes}
    query = next((i for i, n in nodes.items() if n.role == "query"), "")
    gene = next((i for i, n in nodes.items() if n.role == "gene"), "")
    kept, hidden = focus(items, per_side, totals)
    pos, more = column_layout(kept, hidden, query, gene)
    weight = {it.node: it.vote_weight for side in SIDES for it in kept[side]}
    w_max = max(weight.values(), default=0.0) or 1.0
    fig = go.Figure()
    # relation edges along the kept paths (grey; cross-line purple)
    groups: dict[str, list[tuple[str, str, str]]] = {"relation": [], "crossline": []}
    seen: set[tuple[str, str]] = set()
    relation_of = {(e.source, e.target): e.relation for e in graph.edges}
    for side in SIDES:
        for it in kept[side]:
            for a, b in zip(it.path[:-1], it.path[1:], strict=True):
                if (a, b) in seen or a not in pos or b not in pos:
                    continue
                seen.add((a, b))
                rel = relation_of.get((a, b)) or relation_of.get((b, a)) or it.relation
                groups["crossline" if rel in (CROSSLINE_RELATION, CROSSLINE_SAME) else "relation"].append(
                    (a, b, rel)
                )
    for name, group in groups.items():
        if not group:
            continue
        xs: list[float | None] = []
        ys: list[float | None] = []
        for a, b, _ in group:
            xs += [pos[a][0], pos[b][0], None]
            ys += [pos[a][1], pos[b][1], None]
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines",
                line={"color": CROSSLINE if name == "crossline" else RELATION_EDGE, "width": 1},
                hoverinfo="skip",
                name=CROSSLINE_LEGEND,
                showlegend=name == "crossline",
            )
        )
    edges = groups["relation"] + groups["crossline"]
    if edges:  # every relation edge is hoverable at its midpoint
        fig.add_trace(
            go.Scatter(
                x=[(pos[a][0] + pos[b][0]) / 2 for a, b, _ in edges],
                y=[(pos[a][1] + pos[b][1]) / 2 for a, b, _ in edges],
                mode="markers",
                text=[r.replace("_", " ") for _, _, r in edges],
                marker={"size": 4, "color": RELATION_EDGE},
                hovertemplate="%{text}<extra>relation</extra>",
                showlegend=False,
            )
        )
    # outcome edges to g: width = vote weight
    for side in ("positive", "negative"):
        for it in kept[side]:
            fig.add_trace(
                go.Scatter(
                    x=[pos[it.node][0], pos[gene][0]],
                    y=[pos[it.node][1], pos[gene][1]],
                    mode="lines",
                    line={"color": SIDE_COLOURS[side], "width": 0.6 + 5.0 * it.vote_weight / w_max},
                    opacity=0.45,
                    hoverinfo="skip",
                    showlegend=False,
                )
            )
    neg_word = outcome_words[1] if outcome_words[1] != "no response" else "did not respond"
    for role in ("query", "gene", *SIDES, "intermediate"):
        style = ROLE_STYLE[role]
        if role in SIDES:
            ids = [it.node for it in kept[role]]
        elif role == "intermediate":
            ids = [i for i, (x, _) in pos.items() if x == COLUMN_X["intermediate"]]
        else:
            ids = [q for q in (query if role == "query" else gene,) if q in pos]
        if not ids:
            continue
        label = style["label"].format(pos=outcome_words[0], neg=neg_word)
        names = [nodes[i].name if i in nodes else i.split(":", 1)[-1] for i in ids]
        if role in SIDES:
            sizes = [8 + 18 * math.sqrt(weight[i] / w_max) for i in ids]
            text = [_short(n, MAX_LABEL["evidence"]) for n in names]
            textpos = "middle left"  # the right side is where the edges to g leave
        elif role == "intermediate":
            sizes = [style["size"]] * len(ids)
            text = [_short(n, MAX_LABEL["intermediate"]) for n in names]
            textpos = "middle left"
        else:
            sizes = [style["size"]] * len(ids)
            text = names
            textpos = "top center"
        hover = [
            f"<b>{n}</b><br>{label}" + (f"<br>vote weight {fmt(weight[i], 3)}" if i in weight else "")
            for i, n in zip(ids, names, strict=True)
        ]
        fig.add_trace(
            go.Scatter(
                x=[pos[i][0] for i in ids],
                y=[pos[i][1] for i in ids],
                mode="markers+text",
                text=text,
                hovertext=hover,
                textposition=textpos,
                textfont={"size": 11 if role != "intermediate" else 10},
                customdata=ids,
                marker={
                    "color": style["color"],
                    "symbol": style["symbol"],
                    "size": sizes,
                    "line": {"width": 1, "color": NODE_OUTLINE},
                },
                name=label,
                hovertemplate="%{hovertext}<extra></extra>",
            )
        )
    if more:
        fig.add_trace(
            go.Scatter(
                x=[COLUMN_X["evidence"]] * len(more),
                y=list(more.values()),
                mode="text",
                text=[f"+ {hidden[s]:,} more {s} (table below)" for s in more],
                textposition="middle right",
                textfont={"size": 11, "color": EDGE_TEXT},
                hoverinfo="skip",
                showlegend=False,
            )
        )
    ys = [y for _, y in pos.values()] + list(more.values())
    lo, hi = min(ys, default=0.0), max(ys, default=0.0)
    n_rows = hi - lo + 1
    return plotly_layout(
        fig,
        height=int(ROW_PX * (n_rows + 1.6) + 110),
        showlegend=True,
        legend={"orientation": "h", "yanchor": "top", "y": -0.01, "x": 0, "font": {"size": 12}},
        xaxis={"visible": False, "range": [-0.9, COLUMN_X["gene"] + 0.9], "fixedrange": True},
        yaxis={"visible": False, "range": [lo - 0.8, hi + 0.8], "fixedrange": True},
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        clickmode="event+select",
        dragmode=False,
    )


def vote_mass_bar(mass: Mapping[str, float], unmeasured_weight: float) -> go.Figure:
    """The vote's denominator as one stacked bar: positive mass P, negative mass N, unmeasured u·U.

    ``vote = P / (P + N + u·U)``: the blue share of the bar. The legend names each segment with its
    value, so nothing is written inside a segment too thin to hold it.

    Args:
        mass: ``positive``, ``negative`` and ``unmeasured`` relation masses (``ex.mass``).
        unmeasured_weight: u, the weight of an unmeasured relative as a negative vote.
    """
    p, n, u_mass = (float(mass.get(k, 0.0)) for k in SIDES)
    parts = (
        (f"positive P = {fmt(p)}", p, POSITIVE),
        (f"negative N = {fmt(n)}", n, NEGATIVE),
        (
            f"unmeasured u·U = {unmeasured_weight:g} × {fmt(u_mass)} = {fmt(unmeasured_weight * u_mass)}",
            unmeasured_weight * u_mass,
            UNMEASURED,
        ),
    )
    fig = go.Figure(
        [
            go.Bar(
                x=[v],
                y=["mass"],
                orientation="h",
                name=name,
                marker_color=colour,
                hovertemplate=f"{name}<extra></extra>",
            )
            for name, v, colour in parts
        ]
    )
    return plotly_layout(
        fig,
        height=190,
        barmode="stack",
        showlegend=True,
        legend={"orientation": "h", "yanchor": "top", "y": -0.05, "x": 0, "font": {"size": 11}},
        xaxis={"visible": False, "rangemode": "tozero"},
        yaxis={"visible": False},
        margin={"l": 10, "r": 10, "t": 5, "b": 5},
    )
