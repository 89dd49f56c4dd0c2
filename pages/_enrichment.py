"""Pathway enrichment of one LGR prediction (predicted vs observed top genes), as a section any page can render.

The Retrieval explorer calls ``render_enrichment(ex)`` with its current
:class:`~perturb_core.retrieval.QueryExplanation`. The gene sets are the knowledge graph's
(cached once per server process).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from pages import _links as links
from pages import _loaders as load
from pages import _widgets as ui
from perturb_core import explore


@st.cache_resource(show_spinner="Collecting gene sets from the knowledge graph (once per server process)…")
def gene_sets() -> explore.GeneSets:
    """Every gene set of the graph (Reactome, WikiPathways, PID, GO), read-only and shared."""
    return explore.gene_sets(load.graph())


@st.cache_resource(show_spinner=False)
def coding_genes() -> frozenset[str]:
    """The graph's protein-coding genes (for the non-coding rule of the hide toggle)."""
    return frozenset(explore.protein_coding_genes(load.graph()))


def _subset(sets: explore.GeneSets, sources: tuple[str, ...]) -> explore.GeneSets:
    keep = sets.terms["source"].isin(sources).to_numpy()
    return explore.GeneSets(sets.genes, sets.terms[keep].reset_index(drop=True), sets.membership[:, keep])


def _show_list(res: explore.PredictionEnrichment, direction: str) -> None:
    s = res.summary()[direction]
    st.markdown(
        f"**{direction.capitalize()}-regulated top {res.n_top}**: enriched terms (q < {res.alpha:g}) predicted "
        f"**{s['predicted']}**, observed **{s['observed']}**, in both **{s['both']}**; "
        f"genes shared by the two top lists {s['shared_genes']}; terms shared among the 20 smallest p "
        f"{s['shared_best_20']}."
    )
    cols = st.columns(2)
    shared = set(res.shared_best(direction))  # type: ignore[arg-type]
    for col, side in zip(cols, ("predicted", "observed"), strict=True):
        best = res.best(side, direction, 20)  # type: ignore[arg-type]
        table = pd.DataFrame(
            {
                "both": np.where(best["term"].isin(shared), "★", ""),
                "term": best["term"],
                "k/K": [f"{a}/{b}" for a, b in zip(best["k"], best["K"], strict=True)],
                "q": best["q"],
                "p": best["p"],
                "enriched": best["q"] < res.alpha,
                "source": best["source"].map(explore.SOURCE_LABELS),
                "genes": best["overlap"],
                "link": links.term_urls(best["term_id"], best["term"], best["source"]),
            }
        )
        col.caption(
            f"{side.capitalize()}: the 20 smallest p-values (enriched = q < {res.alpha:g}; "
            "★ = also among the other list's 20 smallest p)"
        )
        col.dataframe(
            table,
            hide_index=True,
            width="stretch",
            column_config={
                "p": st.column_config.NumberColumn(format="%.2e"),
                "q": st.column_config.NumberColumn(
                    format="%.3f", help="Benjamini-Hochberg over every tested set"
                ),
                "link": links.link_column("open", "QuickGO, WikiPathways or Reactome (search)"),
            },
        )
    agree = res.agreement(direction)  # type: ignore[arg-type]
    if len(agree):
        st.caption("Terms enriched in both lists:")
        st.dataframe(agree, hide_index=True, width="stretch")


def render_enrichment(ex: object, *, key: str = "enrich") -> explore.PredictionEnrichment | None:
    """Controls and results of the enrichment of ``ex`` (a ``QueryExplanation``); returns the result.

    Never raises: errors are shown with ``st.error``.
    """
    st.subheader("Pathway enrichment: predicted vs observed")
    st.caption(
        "The top up- and down-regulated genes of the prediction and of the observed signature, each tested "
        "against the knowledge graph's Reactome, WikiPathways, PID and GO (direct annotation) gene sets: "
        "hypergeometric P(X ≥ k) for k of the list's n genes in a set of K genes, universe N = the query's "
        "evaluation genes with a finite prediction and observation; Benjamini-Hochberg q over every tested set. "
        "Values ranked are rank scores (inverse-normal of the rank), not log fold changes."
    )
    c1, c2, c3 = st.columns([1, 1.2, 2])
    n_top = c1.number_input("Top genes per list", 5, 500, explore.DEFAULT_N_TOP, step=5, key=f"{key}_n")
    hide = c2.toggle(
        "Hide uninformative genes",
        value=False,
        key=f"{key}_hide",
        help=explore.HIDE_RULE[0].upper() + explore.HIDE_RULE[1:] + ".",
    )
    sources = c3.multiselect(
        "Gene-set sources",
        list(explore.GENE_SET_SOURCES),
        default=list(explore.GENE_SET_SOURCES),
        format_func=explore.SOURCE_LABELS.__getitem__,
        key=f"{key}_sources",
    )
    if not sources:
        st.warning("Choose at least one gene-set source.", icon=":material/filter_alt_off:")
        return None
    res: explore.PredictionEnrichment | None = None
    with ui.guard("testing enrichment", stop=False):
        res = explore.enrich_prediction(
            ex.genes,  # type: ignore[attr-defined]
            ex.prediction,  # type: ignore[attr-defined]
            ex.truth,  # type: ignore[attr-defined]
            _subset(gene_sets(), tuple(sources)),
            n_top=int(n_top),
            hide_uninformative=hide,
            coding=coding_genes() if hide else None,
        )
    if res is None:
        return None
    if res.hidden:
        st.caption(f"Hidden: {res.n_hidden} genes of the universe. {explore.HIDE_RULE}.")
    for direction in ("up", "down"):
        _show_list(res, direction)
    every = pd.concat(
        [t.assign(side=side, direction=d) for (side, d), t in res.tables.items()], ignore_index=True
    )
    ui.csv_download(
        every,
        name="_".join(["enrichment", *(str(getattr(ex, a, "")) for a in ("dataset", "cell_line", "drug"))]),
        label="Every tested set, both lists (CSV)",
        key=f"{key}_csv",
    )
    with st.expander("Top gene lists"):
        st.dataframe(
            pd.DataFrame({f"{s} {d}": g for (s, d), g in res.top.items()}),
            hide_index=True,
            width="stretch",
        )
    return res
