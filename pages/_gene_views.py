"""What the Gene view page draws for one gene, built once per server and shared (read-only).

Cached functions live outside the page script: a page script runs again on every rerun, and each
``st.cache_*`` decorator it runs re-reads its function's source to key the cache.
"""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from pages import _enrichment as enr
from pages import _explore_figures as xfig
from pages import _export as export
from pages import _loaders as load
from perturb_core import explore
from perturb_core.data.build import PERTURBQA_LINES

#: Drugs drawn by default in the response heatmap: the most up and the most down.
DEFAULT_DRUGS = 25


@st.cache_resource(max_entries=64, show_spinner="Collecting the gene's data (CORE is fitted once per line)…")
def view(gene: str, dataset: str) -> explore.GeneView:
    """The gene view of one gene (frozen, read-only: shared by every session)."""
    de = [load.labels(f"perturbqa-{ln}", "de") for ln in PERTURBQA_LINES]
    dr = [load.labels(f"perturbqa-{ln}", "dir") for ln in PERTURBQA_LINES]
    ds = load.signatures(dataset)
    graph = load.graph()
    v = explore.gene_view(gene, ds=ds, de_sets=de, dir_sets=dr, sets=enr.gene_sets(), drugs=load.drugs())
    return explore.GeneView(
        v.gene,
        v.dataset,
        v.units,
        v.response,
        v.knockdowns,
        explore.core_gene_auroc(de, graph, v.gene),
        v.gene_sets,
    )


@st.cache_resource(max_entries=64, show_spinner=False)
def response_heatmap(gene: str, dataset: str, all_drugs: bool) -> go.Figure:
    """The drug x cell line heatmap of one gene (:func:`view`'s matrix), frozen once per input."""
    v = view(gene, dataset)
    fig = xfig.response_heatmap(
        v.matrix(), gene=v.gene, units="rank score z", max_drugs=None if all_drugs else DEFAULT_DRUGS
    )
    return export.frozen(fig)
