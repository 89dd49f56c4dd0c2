"""What the Compare page draws for one comparison, built once per server and shared (read-only).

Cached functions live outside the page script: a page script runs again on every rerun, and each
``st.cache_*`` decorator it runs re-reads its function's source to key the cache.
"""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from pages import _export as export
from pages import _figures as figs
from pages import _loaders as load
from perturb_core.compare import Comparison, compare_predictions
from perturb_core.config import get_settings


@st.cache_resource(max_entries=64, show_spinner="Predicting both sides…")
def compare(
    dataset: str,
    cell_line: str,
    drug: str,
    selector: str,
    cell_line_b: str,
    drug_b: str,
    selector_b: str,
    k: int,
    regime: str,
) -> Comparison:
    """One comparison of rule-based selectors (no LLM), cached per input; frozen and only read."""
    return compare_predictions(
        load.signatures(dataset),
        cell_line=cell_line,
        drug=drug,
        selector=selector,
        cell_line_b=cell_line_b,
        drug_b=drug_b,
        selector_b=selector_b,
        k=k,
        regime=regime,
        settings=get_settings(),
        drugs=load.drugs(),
        graph=load.graph(),
    )


@st.cache_resource(max_entries=64, show_spinner=False)
def scatters(
    dataset: str,
    cell_line: str,
    drug: str,
    selector: str,
    cell_line_b: str,
    drug_b: str,
    selector_b: str,
    k: int,
    regime: str,
) -> dict[str, go.Figure]:
    """Both sides' predicted-vs-observed scatters (``left``, ``right``), frozen once per comparison."""
    cmp = compare(dataset, cell_line, drug, selector, cell_line_b, drug_b, selector_b, k, regime)
    return {
        key: export.frozen(figs.prediction_scatter(ex.prediction, ex.truth, ex.genes))
        for key, ex in (("left", cmp.left), ("right", cmp.right))
    }
