"""What the Compare page draws for one comparison, built once per server and shared (read-only).

Cached functions live outside the page script: a page script runs again on every rerun, and each
``st.cache_*`` decorator it runs re-reads its function's source to key the cache.
"""

from __future__ import annotations

from typing import NamedTuple

import plotly.graph_objects as go
import streamlit as st

from pages import _export as export
from pages import _figures as figs
from pages import _loaders as load
from perturb_core.compare import Comparison, compare_predictions
from perturb_core.config import get_settings


class CompareQuery(NamedTuple):
    """The inputs of one comparison (hashable: the cache key of :func:`compare` and :func:`scatters`)."""

    dataset: str
    cell_line: str
    drug: str
    selector: str
    cell_line_b: str
    drug_b: str
    selector_b: str
    k: int
    regime: str


@st.cache_resource(max_entries=64, show_spinner="Predicting both sides…")
def compare(query: CompareQuery) -> Comparison:
    """One comparison of rule-based selectors (no LLM), cached per input; frozen and only read."""
    fields = query._asdict()
    return compare_predictions(
        load.signatures(fields.pop("dataset")),
        **fields,
        settings=get_settings(),
        drugs=load.drugs(),
        graph=load.graph(),
    )


@st.cache_resource(max_entries=64, show_spinner=False)
def scatters(query: CompareQuery) -> dict[str, go.Figure]:
    """Both sides' predicted-vs-observed scatters (``left``, ``right``), frozen once per comparison."""
    cmp = compare(query)
    return {
        key: export.frozen(figs.prediction_scatter(ex.prediction, ex.truth, ex.genes))
        for key, ex in (("left", cmp.left), ("right", cmp.right))
    }
