"""Overview: what the tool does, the loaded datasets with counts, links; builds the data if missing."""

from __future__ import annotations

import streamlit as st

from pages import _loaders as load
from pages import _state as state
from pages import _widgets as ui

ui.header(
    "Perturbation reasoning explorer",
    "Predict and explain how cells respond to drugs and gene knock-downs, on real public data.",
)

st.markdown(
    "**LGR (LLM-Guided Retrieval)** predicts a drug's expression change in a cell line as the mean "
    "response of *k* neighbour drugs that a language model, the knowledge graph, chemistry or the "
    "transcriptome picks from the drugs measured there. "
    "**CORE (Contrastive Organization of Relational Evidence)** predicts whether a gene responds to a "
    "perturbation from knowledge-graph relatives whose effect on that same gene is known, weighing "
    "positive against negative evidence. "
    "Every number here is measured against held-out real data, and every view is also available from "
    "Python (`perturb_core`) and the command line (`python -m perturb_core`)."
)


def _build_now() -> None:
    """Fetch and build the processed data with a progress bar."""
    from perturb_core.data.build import ensure_data

    bar, progress = ui.build_progress()
    with ui.guard("building the data"):
        steps = ensure_data(settings=state.settings(), progress=progress)
    bar.progress(1.0, text="Done")
    load.clear_caches()
    st.success(f"Built {sum(s.status == 'built' for s in steps)} artifacts; the other pages are ready.")


if not load.data_built():
    st.warning(
        "The processed data is not built yet. The app can fetch the raw files (from the mirror "
        "folder in `perturb_core.toml` or the public URLs in `data/manifest.tsv`, verifying sha256) and "
        f"build them now (a few minutes), or run `{ui.BUILD_COMMAND}` in the repository.",
        icon=":material/database:",
    )
    if st.button("Build the data now", type="primary", icon=":material/build:"):
        _build_now()
    st.stop()

info = None
with ui.guard("counting the datasets"):
    info = load.data_info()

sig_table, lab_table = load.dataset_tables()

g = info["graph"]
dr = info["drugs"]
c1, c2, c3, c4 = st.columns(4)
c1.metric("Signature datasets", sig_table.num_rows, border=True, help="Drug response signatures (LGR).")
c2.metric(
    "Label datasets",
    lab_table.num_rows,
    border=True,
    help="Gene-response labels (CORE): PerturbQA + Tahoe lines.",
)
c3.metric(
    "Drugs with structures",
    f"{dr['with_fingerprint']} / {dr['drugs']}",
    border=True,
    help="Drugs whose SMILES parse into a Morgan fingerprint (radius 2, 2048 bits).",
)
c4.metric(
    "Knowledge graph",
    f"{sum(g['nodes'].values()) / 1e3:.0f}k nodes",
    f"{sum(g['edges'].values()) / 1e6:.2f}M edges",
    delta_color="off",
    delta_arrow="off",
    border=True,
    help="Hetionet, Reactome/WikiPathways/PID, GO, LINCS and Tahoe drug annotations.",
)

st.subheader("Where to go next")
links = [
    (
        "retrieval",
        "Retrieval explorer",
        ":material/manage_search:",
        "one (cell line, drug) query: neighbours, prediction, metrics",
    ),
    (
        "evidence",
        "Evidence graph",
        ":material/hub:",
        "one (perturbation, gene) pair: contrastive evidence and vote",
    ),
    ("gene", "Gene view", ":material/genetics:", "one gene: which drugs and knock-downs move it"),
    (
        "query",
        "Signature query",
        ":material/query_stats:",
        "your up/down genes against every drug (CMap WTCS)",
    ),
    ("compare", "Compare", ":material/compare_arrows:", "two predictions side by side, differences first"),
    ("benchmarks", "Benchmarks", ":material/leaderboard:", "run an LGR regime or a CORE task with intervals"),
    ("data", "Data", ":material/database:", "datasets, drugs and graph in detail"),
    ("settings", "Settings", ":material/settings:", "LLM endpoint, cache, rebuild"),
]
for row in range(0, len(links), 4):
    cols = st.columns(4)
    for col, (key, label, icon, what) in zip(cols, links[row : row + 4], strict=False):
        with col:
            st.page_link(ui.PAGES[key], label=label, icon=icon)
            st.caption(what)

st.subheader("Try an example")
EXAMPLES = [
    (
        "evidence",
        "INTS1 → LIMD2 (K562 knock-down)",
        {"dataset": "perturbqa-k562", "task": "de", "perturbation": "INTS1", "gene": "LIMD2"},
        "a test pair with positive and negative evidence: how CORE-Voting weighs both sides",
    ),
    (
        "evidence",
        "AARS2 → MT-ND5 (77 + / 11 − evidence)",
        {"dataset": "perturbqa-k562", "task": "de", "perturbation": "AARS2", "gene": "MT-ND5"},
        "a pair with a lot of evidence: the strongest items drawn, every item in the table",
    ),
    (
        "retrieval",
        "Trametinib in NCI-H23 (Tahoe)",
        {"dataset": "tahoe", "cell_line": "NCI-H23", "drug": "Trametinib", "selector": "kg_mechanism"},
        "a MEK inhibitor's neighbours from the knowledge graph, against the baselines",
    ),
]
cols = st.columns(len(EXAMPLES))
for col, (key, label, params, what) in zip(cols, EXAMPLES, strict=True):
    with col:
        st.page_link(ui.PAGES[key], label=label, icon=":material/play_circle:", query_params=params)
        st.caption(what)

st.subheader("Signature datasets")
st.dataframe(
    sig_table,
    hide_index=True,
    width="stretch",
    column_config={
        "measured genes (%)": st.column_config.NumberColumn(
            format="%.1f", help="Share of (signature, gene) cells with a measured delta; the rest are NaN."
        ),
    },
)
st.subheader("Label datasets")
st.dataframe(
    lab_table,
    hide_index=True,
    width="stretch",
    height=260,
    column_config={
        "DE positive rate (train)": st.column_config.NumberColumn(
            format="%.3f",
            help="Fraction of training (perturbation, gene) pairs labelled differentially expressed.",
        ),
    },
)
