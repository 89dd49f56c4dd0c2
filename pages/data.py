"""Data: the chosen signature and label datasets, the drug table and the knowledge graph in detail."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from pages import _figures as figs
from pages import _loaders as load
from pages import _state as state
from pages import _widgets as ui
from perturb_core.data.registry import TASK_SPECS

ui.header("Data", "What is loaded: signatures, labels, drugs with structures, and the knowledge graph.")
ui.require_data()

sig_name, lab_name = state.signature_dataset(), state.label_dataset()
tab_sig, tab_drugs, tab_labels, tab_graph = st.tabs(
    [f"Signatures: {sig_name}", "Drugs", f"Labels: {lab_name}", "Knowledge graph"]
)

with tab_sig, ui.guard(f"summarising dataset {sig_name}", stop=False):
    ds = load.signatures(sig_name)
    summary = load.signature_summary(sig_name)
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Cell lines", len(ds.cell_lines), border=True)
    c2.metric("Drugs", len(ds.drugs()), border=True)
    c3.metric("Signatures", ds.adata.n_obs, border=True, help="One per measured (cell line, drug) pair.")
    c4.metric("Genes", ds.adata.n_vars, border=True, help="Columns of the delta matrix; NaN = not measured.")
    if ds.units == "inverse-normal rank score":
        st.caption(
            "Delta = signed inverse-normal score of each gene's rank in the drug-vs-control DESeq2 list "
            "(most up-regulated = most positive); genes absent from a list are missing, not zero."
        )
    else:  # e.g. `data pseudobulk` datasets: other units, so MAE / MSE do not compare with rank scores
        st.caption(
            f"Delta units: **{ds.units}** (not rank scores); definition: {ds.adata.uns.get('score', '')}"
        )
    st.plotly_chart(figs.drugs_per_cell_line(summary), width="stretch")
    st.dataframe(
        summary,
        hide_index=True,
        width="stretch",
        column_config={
            "median_measured_genes": st.column_config.NumberColumn("median measured genes", format="%d")
        },
    )

with tab_drugs, ui.guard("loading the drug table", stop=False):
    table = load.drug_table(sig_name)
    st.caption(f"{len(table)} drugs of `{sig_name}`; targets are HGNC symbols, mechanisms from Tahoe/LINCS.")
    event = st.dataframe(
        table.drop(columns=["smiles"]),
        hide_index=True,
        width="stretch",
        height=320,
        on_select="rerun",
        selection_mode="single-row",
        key="drug_table",
        column_config={
            "structure": st.column_config.CheckboxColumn(help="SMILES parsed (has a fingerprint)")
        },
    )
    rows = event.selection.rows if event is not None else []
    pick = table.iloc[rows[0]] if rows else table.iloc[0]
    left, right = st.columns([1, 2])
    with left:
        svg = load.structure_svg(pick["smiles"], pick["drug"]) if isinstance(pick["smiles"], str) else None
        if svg:
            st.image(svg, caption=pick["drug"])
        else:
            st.info(f"No structure known for {pick['drug']}.")
    with right:
        st.markdown(f"**{pick['drug']}**  \nmechanism: {pick['mechanism']} ({pick['class']})")
        st.markdown(f"targets: {pick['targets'] or '–'}  \nsource: {pick['source']}")
        if isinstance(pick["smiles"], str):
            st.code(pick["smiles"], language=None)
    st.caption("Click a row to draw its structure.")

with tab_labels, ui.guard(f"summarising labels {lab_name}", stop=False):
    ls = load.labels(lab_name, "de")
    st.caption(
        f"{ls.cell_line}: {'CRISPRi knock-downs (PerturbQA, given split)' if ls.perturbation_kind == 'knockdown' else 'drugs (Tahoe, seeded drug-level split)'}. "
        "DE: did the gene respond? Direction: among responders, did it go up?"
    )
    label_counts = load.label_summary(lab_name)
    st.dataframe(
        label_counts.assign(task=[TASK_SPECS[t].label for t in label_counts["task"]]),
        hide_index=True,
        width="stretch",
        column_config={"positive rate": st.column_config.NumberColumn(format="%.3f")},
    )

with tab_graph, ui.guard("loading the knowledge graph", stop=False):
    counts = load.graph().counts()
    from perturb_core.kg import LEAKY_RELATIONS

    nodes = pd.DataFrame({"kind": list(counts["nodes"]), "nodes": list(counts["nodes"].values())})
    edges = pd.DataFrame({"relation": list(counts["edges"]), "edges": list(counts["edges"].values())})
    edges["used by default"] = ~edges["relation"].isin(LEAKY_RELATIONS)
    left, right = st.columns(2)
    left.dataframe(nodes, hide_index=True, width="stretch")
    right.dataframe(edges, hide_index=True, width="stretch")
    st.caption(
        "`regulates` comes from perturbation outcomes themselves (LINCS signatures), so evidence "
        "retrieval leaves it out by default to avoid leaking labels."
    )

ui.cli_hint("python -m perturb_core data info --json")
