"""Data: the chosen signature and label datasets, the drug table and the knowledge graph in detail."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import streamlit as st

from pages import _shared as sh

sh.header("Data", "What is loaded: signatures, labels, drugs with structures, and the knowledge graph.")
sh.require_data()


@st.cache_data(show_spinner=False)
def signature_summary(name: str) -> pd.DataFrame:
    """Per cell line: drugs profiled and median measured genes."""
    ds = sh.signatures(name)
    obs = ds.adata.obs
    measured = np.isfinite(np.asarray(ds.adata.X)).sum(axis=1)
    df = pd.DataFrame({"cell line": obs["cell_line"].astype(str).to_numpy(), "measured": measured})
    out = df.groupby("cell line").agg(
        drugs=("measured", "size"), median_measured_genes=("measured", "median")
    )
    return out.reset_index().sort_values("cell line", key=lambda s: s.str.lower())


@st.cache_data(show_spinner=False)
def label_summary(name: str) -> pd.DataFrame:
    """Pairs, perturbations, genes and positive rate per task and split."""
    rows = []
    for task in ("de", "dir"):
        t = sh.labels(name, task).table
        for split, part in t.groupby("split", observed=True):
            rows.append(
                {
                    "task": {"de": "DE (responds?)", "dir": "direction (up?)"}[task],
                    "split": split,
                    "pairs": len(part),
                    "perturbations": part["pert"].nunique(),
                    "genes": part["gene"].nunique(),
                    "positive rate": float(part["label"].mean()),
                }
            )
    return pd.DataFrame(rows)


@st.cache_data(show_spinner=False)
def drug_table(dataset: str) -> pd.DataFrame:
    """The drug table restricted to one signature dataset, for display."""
    t = sh.drugs().table
    known = set(sh.signatures(dataset).drugs())
    t = t[t["name"].isin(known)] if known else t
    return pd.DataFrame(
        {
            "drug": t["name"],
            "targets": t["targets"].map(", ".join),
            "mechanism": t["moa_fine"],
            "class": t["moa_broad"],
            "structure": t["has_fingerprint"],
            "source": t["source"],
            "DrugBank": t["hetionet_id"],
            "smiles": t["smiles"],
        }
    ).sort_values("drug", key=lambda s: s.str.lower())


sig_name, lab_name = sh.signature_dataset(), sh.label_dataset()
tab_sig, tab_drugs, tab_labels, tab_graph = st.tabs(
    [f"Signatures: {sig_name}", "Drugs", f"Labels: {lab_name}", "Knowledge graph"]
)

with tab_sig, sh.guard(f"summarising dataset {sig_name}", stop=False):
    ds = sh.signatures(sig_name)
    summary = signature_summary(sig_name)
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Cell lines", len(ds.cell_lines), border=True)
    c2.metric("Drugs", len(ds.drugs()), border=True)
    c3.metric("Signatures", ds.adata.n_obs, border=True, help="One per measured (cell line, drug) pair.")
    c4.metric("Genes", ds.adata.n_vars, border=True, help="Columns of the delta matrix; NaN = not measured.")
    st.caption(
        "Delta = signed inverse-normal score of each gene's rank in the drug-vs-control DESeq2 list "
        "(most up-regulated = most positive); genes absent from a list are missing, not zero."
    )
    fig = px.bar(summary, x="cell line", y="drugs", labels={"drugs": "drugs profiled"})
    sh.plotly_layout(fig, height=300, title="Drugs profiled per cell line")
    fig.update_traces(marker_color=sh.POSITIVE)
    st.plotly_chart(fig, width="stretch")
    st.dataframe(
        summary,
        hide_index=True,
        width="stretch",
        column_config={
            "median_measured_genes": st.column_config.NumberColumn("median measured genes", format="%d")
        },
    )

with tab_drugs, sh.guard("loading the drug table", stop=False):
    table = drug_table(sig_name)
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
        svg = sh.structure_svg(pick["smiles"], pick["drug"]) if isinstance(pick["smiles"], str) else None
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

with tab_labels, sh.guard(f"summarising labels {lab_name}", stop=False):
    ls = sh.labels(lab_name, "de")
    st.caption(
        f"{ls.cell_line}: {'CRISPRi knock-downs (PerturbQA, given split)' if ls.perturbation_kind == 'knockdown' else 'drugs (Tahoe, seeded drug-level split)'}. "
        "DE: did the gene respond? Direction: among responders, did it go up?"
    )
    st.dataframe(
        label_summary(lab_name),
        hide_index=True,
        width="stretch",
        column_config={"positive rate": st.column_config.NumberColumn(format="%.3f")},
    )

with tab_graph, sh.guard("loading the knowledge graph", stop=False):
    counts = sh.graph().counts()
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

sh.cli_hint("python -m perturb_core data info --json")
