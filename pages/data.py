"""Data: the chosen signature and label datasets, the drug table and the knowledge graph in detail."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from pages import _figures as figs
from pages import _links as links
from pages import _loaders as load
from pages import _state as state
from pages import _widgets as ui
from perturb_core.data.registry import TASK_SPECS
from perturb_core.data.upload import UPLOAD_TYPES, UploadResult, import_upload

ui.header("Data", "What is loaded: signatures, labels, drugs with structures, and the knowledge graph.")
ui.require_data()

UPLOADED_KEY = "upload_result"


def use_dataset(name: str) -> None:
    """Choose an uploaded dataset in the sidebar (a callback: runs before the sidebar is drawn)."""
    st.session_state[state.SIG_KEY] = name


limit_mb = state.settings().upload_max_mb
done: UploadResult | None = st.session_state.pop(UPLOADED_KEY, None)
if done is not None:
    passed = f" Passed over: {', '.join(done.skipped)}." if done.skipped else ""
    st.success(
        f"Imported **{done.name}** from `{done.source}` ({done.n_bytes / 2**20:,.1f} MB). It is listed in the "
        f"sidebar's Signatures list and usable on every page.{passed}",
        icon=":material/check_circle:",
    )
    st.button(f"Use {done.name} now", on_click=use_dataset, args=(done.name,), icon=":material/swap_horiz:")
with st.expander(
    f"Upload your own data: an .h5ad or a .zip of .rda signature files, at most {limit_mb} MB",
    expanded=done is None and st.session_state.get("upload_file") is not None,
    icon=":material/upload:",
):
    st.caption(
        "An **.h5ad** needs `obs` columns for the cell line (`cell_line`, `cell_name`, ...) and the drug "
        "(`drug`, `perturbation`, `compound`, ...) and deltas in `X` (one row per cell line and drug, finite "
        "values; units are yours and stay as given). A **.zip** holds Tahoe-format `.rda` signature files, "
        "one per cell line named `PREFIX.LINE.rda`; other files are passed over and listed. The checks and "
        f"messages are those of `data import`; nothing is stored unless the whole file passes. Larger than "
        f"{limit_mb} MB: use the command line below."
    )
    upload = st.file_uploader(
        f"File (.h5ad or .zip, at most {limit_mb} MB)",
        type=list(UPLOAD_TYPES),
        key="upload_file",
        max_upload_size=limit_mb,
    )
    c1, c2 = st.columns([2, 1])
    ds_name = c1.text_input(
        "Dataset name", key="upload_name", placeholder="my-screen", help="Letters, digits, '-' or '_'."
    )
    replace = c2.checkbox(
        "Replace a dataset of this name",
        key="upload_overwrite",
        disabled=not state.is_operator(),
        help="Operator only (see Settings): replacing changes what other sessions see.",
    )
    if st.button("Import", icon=":material/upload:", disabled=upload is None, key="upload_go"):
        bar, progress = ui.progress_bar("Importing")
        result = ui.call(
            import_upload,
            upload,
            filename=upload.name if upload is not None else "",
            name=(ds_name or "").strip(),
            size=upload.size if upload is not None else None,
            overwrite=bool(replace) and state.is_operator(),
            settings=state.settings(),
            progress=progress,
            action="importing the upload",
        )
        bar.empty()
        if result is not None:
            # the new dataset must show at once everywhere: listings, and any old copy of a replaced name
            load.datasets_changed()
            if replace:
                load.clear_caches()
            st.session_state[UPLOADED_KEY] = result
            st.rerun()
    ui.cli_hint("python -m perturb_core data import my_screen.h5ad --name my-screen")

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
    ui.chart(figs.drugs_per_cell_line(summary), name=f"drugs_per_cell_line_{sig_name}")
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
    if table.empty:
        st.info(
            f"None of the drugs of `{sig_name}` is in the drug table (names are matched to the Tahoe/LINCS "
            "metadata), so there are no structures, targets or links to show."
        )
    else:
        st.caption(
            f"{len(table)} drugs of `{sig_name}`; targets are HGNC symbols, mechanisms from Tahoe/LINCS."
        )
        ids = links.drug_ids(load.drugs().table, table["drug"])
        shown = table.drop(columns=["smiles"]).assign(
            PubChem=[links.first_url(links.drug_links(n, **ids.get(n, {}))) for n in table["drug"]],
            parent=links.parent_labels(table["drug"], table["smiles"]),
        )
        event = st.dataframe(
            shown,
            hide_index=True,
            width="stretch",
            height=320,
            on_select="rerun",
            selection_mode="single-row",
            key="drug_table",
            column_config={
                "structure": st.column_config.CheckboxColumn(help="SMILES parsed (has a fingerprint)"),
                "PubChem": links.link_column("PubChem", "PubChem page (by CID) or a name search"),
                "parent": st.column_config.TextColumn(
                    "salt forms",
                    help="Other forms of the same parent structure in this table (RDKit FragmentParent + "
                    "Uncharger, compared by InChIKey).",
                ),
            },
        )
        rows = event.selection.rows if event is not None else []
        pick = table.iloc[rows[0]] if rows else table.iloc[0]
        left, right = st.columns([1, 2])
        with left:
            svg = (
                load.structure_svg(pick["smiles"], pick["drug"]) if isinstance(pick["smiles"], str) else None
            )
            if svg:
                st.image(svg, caption=f"{pick['drug']} (parent structure, no counter-ions)")
            else:
                st.info(f"No structure known for {pick['drug']}.")
        with right:
            st.markdown(f"**{pick['drug']}**  \nmechanism: {pick['mechanism']} ({pick['class']})")
            st.markdown(f"targets: {pick['targets'] or '–'}  \nsource: {pick['source']}")
            st.markdown(links.markdown(links.drug_links(pick["drug"], **ids.get(pick["drug"], {}))))
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
