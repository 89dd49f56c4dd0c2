"""Gene view: which perturbations move my gene? Drugs x cell lines, knock-downs, CORE, pathways."""

from __future__ import annotations

from urllib.parse import urlencode

import pandas as pd
import streamlit as st

from pages import _gene_views as gv
from pages import _links as links
from pages import _state as state
from pages import _widgets as ui
from perturb_core import explore
from perturb_core.data.build import PERTURBQA_LINES

ui.header(
    "Gene view",
    "Which perturbations move my gene? Its response to every drug in every cell line, the knock-downs it "
    "responds to, CORE's per-gene accuracy and its pathways, on one screen.",
)
ui.require_data()


def evidence_link(row: pd.Series) -> str:
    """Relative link to the Evidence page for (knock-down, gene) in its PerturbQA line."""
    return "evidence?" + urlencode(
        {"dataset": row["dataset"], "task": "de", "perturbation": row["perturbation"], "gene": row["gene"]}
    )


# --------------------------------------------------------------------------- inputs
dataset = state.signature_dataset()
seed = state.query_seed("gene")
if seed.get("gene"):
    st.session_state["gene_query"] = seed["gene"]
st.session_state.setdefault("gene_query", "EGR1")
c1, c2 = st.columns([1, 2])
gene = c1.text_input(
    "Gene (symbol or Ensembl id)",
    key="gene_query",
    help="Any case; e.g. EGR1, egr1 or ENSG00000120738. An unknown name lists the closest known genes.",
).strip()
c2.caption(
    f"Signatures from **{dataset}** (choose another in the sidebar); knock-downs from the PerturbQA lines "
    f"{', '.join(ln.upper() for ln in PERTURBQA_LINES)}."
)
if not gene:
    st.info("Type a gene symbol or Ensembl id, e.g. EGR1.", icon=":material/search:")
    st.stop()
with ui.guard(f"building the view of {gene}"):
    v = gv.view(gene, dataset)
state.share_link(dataset=dataset, gene=v.gene)
st.caption(f"{v.gene}: {links.markdown(links.gene_links(v.gene))}")

# --------------------------------------------------------------------------- render
by_drug = v.by_drug()
kd = v.knockdowns
t1, t2, t3, t4 = st.columns(4)
thr = explore.RESPONSE_THRESHOLD
t1.metric("Signatures measuring it", f"{len(v.response):,}", help=f"(cell line, drug) pairs of {dataset}")
t2.metric(
    f"Signatures with z > {thr:g}",
    f"{int((v.response['score'] > thr).sum()):,}",
    help="gene among the most up",
)
t3.metric(f"Signatures with z < -{thr:g}", f"{int((v.response['score'] < -thr).sum()):,}")
t4.metric(
    "Knock-downs it responds to",
    f"{int((kd['de'] == 1).sum()):,} / {len(kd):,}",
    help="PerturbQA pairs labelled DE, over all labelled pairs of the gene (train and test)",
)

left, right = st.columns([1.35, 1])
with left:
    st.subheader("Drugs x cell lines")
    if v.response.empty:
        st.info(f"{v.gene} is not among the measured genes of {dataset}.", icon=":material/info:")
    else:
        st.caption(
            f"Values: {v.units}. Drugs sorted by their mean over lines; grey = not measured in that line."
        )
        full = st.toggle(
            "All drugs", value=False, key="gene_all_drugs", help="Default: the 25 most up and down."
        )
        matrix = v.matrix()
        ui.chart(gv.response_heatmap(v.gene, dataset, full), name=f"gene_response_{v.gene}_{dataset}")
        ui.csv_download(
            matrix,
            name=f"gene_{v.gene}_{dataset}_drug_x_line",
            label="All drugs x cell lines (CSV)",
            index=True,
        )
with right:
    st.subheader("Per drug (sortable)")
    st.caption(f"Mean, min and max z over lines; lines with z > {thr:g} (up) and z < -{thr:g} (down).")
    st.dataframe(
        by_drug,
        hide_index=True,
        width="stretch",
        height=420,
        column_config={c: st.column_config.NumberColumn(format="%+.2f") for c in ("mean", "min", "max")},
    )
    ui.csv_download(by_drug, name=f"gene_{v.gene}_{dataset}_per_drug", label="Per drug (CSV)")
    st.subheader("CORE per-gene AUROC")
    st.caption(
        "CORE-Voting's AUROC over this gene's TEST knock-downs in each line (DE task; fitted on the training "
        "split). Empty when the test pairs have one class; 0.5 = no better than chance."
    )
    if v.core_auroc.empty:
        st.caption(f"{v.gene} has no test pair in the PerturbQA lines.")
    else:
        st.dataframe(v.core_auroc, hide_index=True, width="stretch")
        ui.csv_download(v.core_auroc, name=f"gene_{v.gene}_core_auroc", label="AUROC (CSV)")

st.subheader("PerturbQA knock-downs under which it responds")
resp = v.responding_knockdowns()
if resp.empty:
    st.caption(f"No labelled knock-down makes {v.gene} respond ({len(kd):,} labelled pairs).")
else:
    st.caption(
        "DE = 1 pairs with their direction (from the direction labels) and split. TRAINING and TEST labels are "
        "shown here as data; CORE never uses a pair's own label or any test label as evidence. "
        "Open a row's CORE evidence with its link."
    )
    resp = resp.assign(gene=v.gene)
    resp["evidence"] = resp.apply(evidence_link, axis=1)
    st.dataframe(
        resp[["line", "perturbation", "direction", "split", "evidence"]],
        hide_index=True,
        width="stretch",
        column_config={"evidence": st.column_config.LinkColumn("CORE evidence", display_text="open")},
    )
    ui.csv_download(resp, name=f"gene_{v.gene}_knockdowns", label="Knock-downs (CSV)")

st.subheader("Pathways and GO terms")
gs = v.gene_sets
if gs.empty:
    st.caption(f"{v.gene} is in no pathway or GO term of the knowledge graph.")
else:
    st.caption(
        "From the knowledge graph: pathway membership and direct GO annotations; size = genes in the set."
    )
    cols = st.columns(2)
    pathways = gs[gs["source"].isin(["reactome", "wikipathways", "pid"])]
    go_terms = gs[gs["source"].str.startswith("go_")]
    for col, title, t in ((cols[0], "Pathways", pathways), (cols[1], "GO terms", go_terms)):
        col.caption(f"{title} ({len(t)})")
        col.dataframe(
            t[["term", "source_label", "size"]].assign(
                link=links.term_urls(t["term_id"], t["term"], t["source"])
            ),
            hide_index=True,
            width="stretch",
            column_config={"link": links.link_column("open", "QuickGO, WikiPathways or Reactome (search)")},
        )
    ui.csv_download(gs, name=f"gene_{v.gene}_gene_sets", label="Pathways and GO terms (CSV)")

ui.cli_hint(f"python -m perturb_core gene {v.gene} --dataset {dataset} --json")
