"""What the Retrieval explorer draws for one query, built once per server and shared (read-only).

The cached functions live here, not in the page script: a page script runs again on every rerun,
and each ``st.cache_*`` decorator it runs re-reads its function's source to key the cache.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import pandas as pd
import plotly.graph_objects as go
import pyarrow as pa
import streamlit as st

from pages import _export as export
from pages import _figures as figs
from pages import _links as links
from pages import _loaders as load
from pages import _widgets as ui
from perturb_core import retrieval
from perturb_core.metrics import METRICS, REGRESSION_METRICS

if TYPE_CHECKING:
    from perturb_core.config import Settings
    from perturb_core.llm import LLM

N_TOP_GENES = 10


@st.cache_resource(max_entries=256, show_spinner="Retrieving neighbours and scoring the baselines…")
def predict(
    dataset: str, cell_line: str, drug: str, selector: str, k: int, aggregation: str, regime: str
) -> retrieval.QueryExplanation:
    """One rule-based query (no LLM) with all four baselines, cached per input.

    The explanation is frozen and only read, so one object serves every session
    (``st.cache_resource``: no pickling, no copy).
    """
    return run_query(
        dataset, cell_line, drug, selector, k, aggregation, regime, settings=load.current_settings()
    )


def run_query(
    dataset: str,
    cell_line: str,
    drug: str,
    selector: str,
    k: int,
    aggregation: str,
    regime: str,
    *,
    settings: Settings,
    llm: LLM | None = None,
) -> retrieval.QueryExplanation:
    """One query on a loaded signature dataset (uncached; :func:`predict` caches the rule-based ones)."""
    return retrieval.predict_query(
        load.signatures(dataset),
        cell_line=cell_line,
        drug=drug,
        selector=selector,
        k=k,
        aggregation=aggregation,
        regime=regime,
        settings=settings,
        llm=llm,
    )


def marked(genes: pd.Series, in_both: pd.Series) -> list[str]:
    """Gene symbols with a ✓ on those in both top lists."""
    return [f"{g} ✓" if both else str(g) for g, both in zip(genes, in_both, strict=True)]


class TopGenes(NamedTuple):
    """One tab of the top-genes table: the rows as shown, and how many genes are in both lists."""

    direction: str
    table: pd.DataFrame | pa.Table
    n_both: int
    n: int


class Views(NamedTuple):
    """What the page draws from one explanation, built once per server (read-only).

    The ``*_data`` fields are the tables as ``st.dataframe`` data (:func:`pages._loaders.table_data`).
    """

    scatter: go.Figure
    top_genes: pd.DataFrame
    top_tabs: tuple[TopGenes, ...]
    baselines: pd.DataFrame
    baselines_data: pd.DataFrame | pa.Table
    neighbours: pd.DataFrame
    neighbours_data: pd.DataFrame | pa.Table
    query_links: str
    json_text: str
    smiles: tuple[str, ...]
    legends: tuple[str, ...]
    no_structure: tuple[str, ...]


@st.cache_resource(max_entries=256, show_spinner=False)
def views(key: tuple, _ex: retrieval.QueryExplanation, units: str) -> Views:
    """:func:`build_views` of the rule-based explanation ``_ex`` of the inputs ``key``, once per server.

    Its scatter is frozen (:func:`pages._export.frozen`): every session's rerun sends the same JSON.
    """
    view = build_views(_ex, units)
    export.frozen(view.scatter)
    return view


def build_views(ex: retrieval.QueryExplanation, units: str) -> Views:
    """The figure, tables, JSON and structures the page draws from one explanation."""
    names = [ex.drug, *[n.name for n in ex.neighbours]]
    legends = [f"query: {ex.drug}", *[f"{n.rank}. {n.name}" for n in ex.neighbours]]
    smiles = [load.drug_smiles(n) for n in names]
    top_genes = ex.top_genes(N_TOP_GENES)
    baselines = baseline_table(ex)
    neighbours = neighbour_table(ex.neighbours).assign(
        PubChem=lambda t: links.drug_urls(load.drugs().table, t["name"])
    )
    table = load.drugs().table
    return Views(
        scatter=figs.prediction_scatter(ex.prediction, ex.truth, ex.genes, units=units),
        top_genes=top_genes,
        top_tabs=tuple(top_tab(top_genes, d) for d in ("up", "down")),
        baselines=baselines,
        baselines_data=load.table_data(baselines),
        neighbours=neighbours,
        neighbours_data=load.table_data(neighbours),
        query_links=links.markdown(
            links.drug_links(ex.drug, **links.drug_ids(table, [ex.drug]).get(ex.drug, {}))
        ),
        json_text=ui.to_json(ex.to_dict(n_top_genes=N_TOP_GENES)),
        smiles=tuple(sm for sm in smiles if sm),
        legends=tuple(lg for sm, lg in zip(smiles, legends, strict=True) if sm),
        no_structure=tuple(n for n, sm in zip(names, smiles, strict=True) if not sm),
    )


def baseline_table(ex: retrieval.QueryExplanation) -> pd.DataFrame:
    """This prediction and every baseline on the same query: metrics, where each is best, and notes.

    A row is named by what made it (a fallback is named as one), and rows whose metrics are
    identical to an earlier row's (e.g. ``drug_mean`` falling back to ``cell_mean`` for an unseen
    drug) say so in the table itself.
    """
    rows = {f"{ex.method_name} (this prediction)": ex.metrics, **ex.baselines}
    notes = {f"{ex.method_name} (this prediction)": ex.fallback, **ex.baseline_fallbacks}
    table = pd.DataFrame(rows).T.reindex(columns=list(REGRESSION_METRICS)).astype(float)
    table.index.name = "method"
    best: dict[str, list[str]] = {m: [] for m in table.index}
    for col in REGRESSION_METRICS:
        hib = METRICS[col].higher_is_better
        values = table[col]
        if hib is None or values.isna().all():
            continue
        top = values.max() if hib else values.min()
        for m in values.index[values == top]:
            best[m].append(ui.short_label(col))
    rounded = table.round(12).astype(str).agg("|".join, axis=1)
    out = []
    for i, m in enumerate(table.index):
        twin = next((o for o in table.index[:i] if rounded[o] == rounded[m]), None)
        parts = [f"identical to {twin}" if twin else "", notes.get(m) or ""]
        out.append("; ".join(p for p in parts if p))
    return table.assign(**{"best in": [", ".join(best[m]) for m in table.index], "note": out})


def neighbour_table(neighbours: Sequence[retrieval.Neighbour]) -> pd.DataFrame:
    """The neighbours as table rows, in the order the page shows their columns."""
    return pd.DataFrame(
        {
            "rank": [n.rank for n in neighbours],
            "name": [n.name for n in neighbours],
            "own_pearson": [n.own_pearson for n in neighbours],
            "loo_delta_pearson": [n.loo_delta_pearson for n in neighbours],
            "similarity": [n.similarity for n in neighbours],
            "score": [n.score for n in neighbours],
            "source": [n.source for n in neighbours],
            "mechanism": [", ".join(n.mechanism) for n in neighbours],
            "targets": [", ".join(n.targets) for n in neighbours],
            "programs": [", ".join(n.programs) for n in neighbours],
        }
    )


def top_tab(top_all: pd.DataFrame, direction: str) -> TopGenes:
    """The rows of one top-genes tab (``"up"`` or ``"down"``), as the page shows them."""
    part = top_all[top_all["direction"] == direction]
    top = pd.DataFrame(
        {
            "predicted": marked(part["predicted_gene"], part["predicted_in_both"]),
            "predicted Δ": part["predicted"].to_numpy(float),
            "observed": marked(part["observed_gene"], part["observed_in_both"]),
            "observed Δ": part["observed"].to_numpy(float),
        },
        index=pd.Index(part["rank"].to_numpy(int), name="rank"),
    )
    return TopGenes(direction, load.table_data(top), int(part["predicted_in_both"].sum()), len(part))
