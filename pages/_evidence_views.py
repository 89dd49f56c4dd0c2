"""What the Evidence graph page draws for one pair, built once per server and shared (read-only).

These cached functions live outside the page script on purpose: a page script runs again on every
rerun, and each ``st.cache_*`` decorator it runs re-reads its function's source to key the cache
(about a millisecond each); defined here they are decorated once per server process.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import pyarrow as pa
import streamlit as st

from pages import _evidence_figures as egf
from pages import _export as export
from pages import _figures as figs
from pages import _links as links
from pages import _loaders as load
from pages import _state as state
from perturb_core import evidence
from perturb_core.data.registry import TASK_SPECS
from perturb_core.serialize import dumps

ITEM_COLUMNS = [
    "side",
    "kind",
    "perturbation",
    "relation_label",
    "weight",
    "vote_weight",
    "path_text",
    "path_detail",
    "node",
]


@st.cache_resource(
    max_entries=256, show_spinner="Collecting evidence (the first pair of a dataset fits CORE-Voting)…"
)
def explain(
    dataset: str, task: str, perturbation: str, gene: str, crossline: bool = False
) -> evidence.EvidenceExplanation:
    """The explanation of one pair, cached per input (frozen and only read: one object for every session).

    ``crossline``: CORE-Voting with the cross-line relation (the other PerturbQA lines' TRAINING labels).
    """
    labels = load.labels(dataset, task)
    others = evidence.crossline_labels(labels, state.settings()) if crossline else None
    return evidence.explain(labels, load.graph(), perturbation=perturbation, gene=gene, crossline=others)


@st.cache_resource(max_entries=256, show_spinner=False)
def vote_figures(
    dataset: str, task: str, perturbation: str, gene: str, crossline: bool
) -> tuple[go.Figure, go.Figure]:
    """The vote-vs-prior bars and the evidence mass bar of one pair, built once per server (read-only)."""
    ex = explain(dataset, task, perturbation, gene, crossline)
    outcome = TASK_SPECS[task].outcome[0]
    mass = ex.mass
    return (
        export.frozen(figs.vote_bars(ex.prior, ex.vote, ex.score, outcome=outcome)),
        export.frozen(egf.vote_mass_bar(mass, float(mass.get("unmeasured_weight", 0.0)))),
    )


@st.cache_resource(max_entries=256, show_spinner=False)
def graph_figure(
    dataset: str, task: str, perturbation: str, gene: str, crossline: bool, per_side: int
) -> go.Figure:
    """The evidence graph of one pair, built once per server and view (read-only: plotly only reads it)."""
    ex = explain(dataset, task, perturbation, gene, crossline)
    sides = {"positive": ex.positive, "negative": ex.negative, "unmeasured": ex.unmeasured}
    totals = {"positive": ex.n_positive, "negative": ex.n_negative, "unmeasured": ex.n_unmeasured}
    return export.frozen(
        egf.evidence_graph(ex.graph, TASK_SPECS[task].outcome, sides, per_side=per_side, totals=totals)
    )


@st.cache_resource(max_entries=256, show_spinner=False)
def cached_items(dataset: str, task: str, perturbation: str, gene: str, crossline: bool) -> pd.DataFrame:
    """:func:`items_table` of the explanation of these inputs, once per server (read-only, not per rerun)."""
    return items_table(explain(dataset, task, perturbation, gene, crossline))


def link_site(kind: str) -> str:
    """Where a related perturbation links to: NCBI Gene for a knock-down, PubChem for a drug."""
    return "NCBI Gene" if kind == "knockdown" else "PubChem"


@st.cache_resource(max_entries=256, show_spinner=False)
def shown_items(
    dataset: str, task: str, perturbation: str, gene: str, crossline: bool, kind: str
) -> tuple[pd.DataFrame, pa.Table | pd.DataFrame]:
    """The items table as shown (no node ids, a link per item), and the same as ``st.dataframe`` data.

    Built once per server (read-only, not per rerun).
    """
    items = cached_items(dataset, task, perturbation, gene, crossline)
    urls = (
        links.gene_urls(items["perturbation"])
        if kind == "knockdown"
        else links.drug_urls(load.drugs().table, items["perturbation"])
    )
    shown = items.drop(columns="node").assign(**{link_site(kind): urls})
    return shown, load.table_data(shown)


@st.cache_resource(max_entries=64, show_spinner=False)
def explanation_json(dataset: str, task: str, perturbation: str, gene: str, crossline: bool) -> str:
    """``core explain --json`` of one pair as text, serialised once per server."""
    return dumps(explain(dataset, task, perturbation, gene, crossline).to_dict())


def items_table(ex: evidence.EvidenceExplanation) -> pd.DataFrame:
    """Every listed evidence item with its side and readable path, strongest first within a side."""
    rows = [
        {
            "side": side,
            "kind": "cross-line"
            if {evidence.CROSSLINE_RELATION, evidence.CROSSLINE_SAME} & set(it.relations)
            else "graph",
            "perturbation": it.perturbation,
            "relation_label": it.relation_label,
            "weight": it.weight,
            "vote_weight": it.vote_weight,
            "path_text": it.path_text,
            "path_detail": it.path_detail or "",
            "node": it.node,
        }
        for side, it in ex.all_items()
    ]
    return pd.DataFrame(rows, columns=ITEM_COLUMNS)
