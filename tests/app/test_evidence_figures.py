"""The evidence graph at scale and the vote's mass bar (``pages/_evidence_figures.py``), without Streamlit."""

from __future__ import annotations

import itertools

import pytest

from pages import _evidence_figures as egf
from pages import _figures as figs
from perturb_core.evidence import EvidenceGraph, EvidenceItem, GraphEdge, GraphNode


def _item(name: str, label: int | None, w: float, via: str | None = None) -> EvidenceItem:
    path = ("gene:P", via, f"gene:{name}") if via else ("gene:P", f"gene:{name}")
    names = tuple(p.split(":", 1)[1] for p in path)
    vw = w * (0.01 if label is None else 1.0)
    return EvidenceItem(
        name, "interacts_with", "interaction", ("interacts_with",), path, names, None, label, w, vw
    )


def _case(n_pos: int = 30, n_neg: int = 5, n_unm: int = 40):
    pos = [_item(f"A{i}", 1, 1.0 / (i + 1), "pathway:X" if i % 2 else None) for i in range(n_pos)]
    neg = [_item(f"B{i}", 0, 0.5 / (i + 1), "pathway:Y") for i in range(n_neg)]
    unm = [_item(f"C{i}", None, 0.3 / (i + 1)) for i in range(n_unm)]
    items = [*pos, *neg, *unm]
    nodes = [GraphNode("gene:P", "P", "gene", "query"), GraphNode("gene:G", "G", "gene", "gene")]
    nodes += [
        GraphNode("pathway:X", "X", "pathway", "intermediate"),
        GraphNode("pathway:Y", "Y", "pathway", "intermediate"),
    ]
    side = {1: "positive", 0: "negative", None: "unmeasured"}
    nodes += [GraphNode(it.node, it.perturbation, "gene", side[it.label]) for it in items]  # type: ignore[arg-type]
    edges = [GraphEdge(a, b, "interacts_with") for it in items for a, b in itertools.pairwise(it.path)]
    edges += [GraphEdge(it.node, "gene:G", "responded_in_training") for it in pos]
    graph = EvidenceGraph(tuple(nodes), tuple(edges))
    return graph, {"positive": pos, "negative": neg, "unmeasured": unm}


def test_focus_keeps_the_strongest_per_side_and_counts_the_rest() -> None:
    _, sides = _case()
    kept, hidden = egf.focus(sides, 8)
    assert [it.perturbation for it in kept["positive"]] == [f"A{i}" for i in range(8)]
    assert hidden == {"positive": 22, "negative": 0, "unmeasured": 32}


def test_one_row_per_node_so_labels_of_a_column_never_share_a_row() -> None:
    _, sides = _case()
    kept, hidden = egf.focus(sides, 8)
    pos, more = egf.column_layout(kept, hidden, "gene:P", "gene:G")
    for x in (egf.COLUMN_X["evidence"], egf.COLUMN_X["intermediate"]):
        ys = sorted(
            [y for (xx, y) in pos.values() if xx == x]
            + (list(more.values()) if x == egf.COLUMN_X["evidence"] else [])
        )
        assert all(b - a >= 1.0 - 1e-9 for a, b in itertools.pairwise(ys)), ys


def test_evidence_graph_draws_more_rows_weights_and_legend() -> None:
    graph, sides = _case()
    fig = egf.evidence_graph(graph, ("responded", "no response"), sides, per_side=8)
    nodes = {t.name: t for t in fig.data if t.customdata is not None}
    assert len(nodes["positive: g responded under it (training)"].x) == 8
    sizes = list(nodes["positive: g responded under it (training)"].marker.size)
    assert sizes == sorted(sizes, reverse=True) and sizes[0] > sizes[-1]  # size encodes weight
    more = next(t for t in fig.data if t.mode == "text")
    assert list(more.text) == ["+ 22 more positive (table below)", "+ 32 more unmeasured (table below)"]
    widths = [t.line.width for t in fig.data if t.mode == "lines" and t.line.color == figs.POSITIVE]
    assert widths[0] > widths[-1]  # edge width encodes weight
    assert nodes["negative: g did not respond under it (training)"].marker.symbol == "diamond"
    assert fig.layout.height >= egf.ROW_PX * 27


def test_crossline_edges_have_their_own_colour_and_legend() -> None:
    item = EvidenceItem(
        "A0",
        "co_response",
        "cross-line",
        ("co_response",),
        ("gene:P", "gene:A0"),
        ("P", "A0"),
        None,
        1,
        1.0,
        1.0,
    )
    graph = EvidenceGraph(
        (
            GraphNode("gene:P", "P", "gene", "query"),
            GraphNode("gene:G", "G", "gene", "gene"),
            GraphNode("gene:A0", "A0", "gene", "positive"),
        ),
        (GraphEdge("gene:P", "gene:A0", "co_response"),),
    )
    fig = egf.evidence_graph(graph, ("up", "down"), {"positive": [item]})
    xl = next(t for t in fig.data if t.mode == "lines" and t.line.color == figs.CROSSLINE)
    assert xl.showlegend is True and xl.name == figs.CROSSLINE_LEGEND
    assert "positive: g up under it (training)" in {t.name for t in fig.data}


def test_vote_mass_bar_stacks_the_three_terms_of_the_denominator() -> None:
    fig = egf.vote_mass_bar({"positive": 0.5, "negative": 0.1, "unmeasured": 2.0}, 0.01)
    assert [t.x[0] for t in fig.data] == pytest.approx([0.5, 0.1, 0.02])
    assert fig.data[2].name.startswith("unmeasured u·U = 0.01 × 2.000")
    assert fig.layout.barmode == "stack"


def test_focus_counts_items_the_explanation_did_not_list() -> None:
    _, sides = _case(n_unm=20)  # an explanation lists the strongest 20 unmeasured relatives
    _, hidden = egf.focus(sides, 8, {"positive": 30, "negative": 5, "unmeasured": 569})
    assert hidden["unmeasured"] == 561
