"""Signature query (Connectivity-Map style): which drugs mimic or reverse my gene signature?"""

from __future__ import annotations

from urllib.parse import urlencode

import pandas as pd
import streamlit as st

from pages import _explore_figures as xfig
from pages import _links as links
from pages import _loaders as load
from pages import _state as state
from pages import _widgets as ui
from perturb_core import explore
from perturb_core.errors import PerturbCoreError, ValidationError

ui.header(
    "Signature query",
    "Paste or upload the genes your condition raises and lowers (or a ranked list); every stored drug "
    "signature is scored by CMap's weighted connectivity score: + mimics your signature, - reverses it.",
)
ui.require_data()

RESULT_KEY = "query_result"
MAX_UPLOAD_BYTES = 1_000_000
ALL_LINES = "All cell lines"
#: MAPK pathway activity score genes (Wagle et al. 2018, npj Precision Oncology 2:7): lowered by MEK inhibition.
EXAMPLE_DOWN = "PHLDA1\nSPRY2\nSPRY4\nDUSP4\nDUSP6\nCCND1\nEPHA2\nEPHA4\nETV4\nETV5"


def load_example() -> None:
    """Fill the lists with a MEK-inhibition signature (down: MPAS genes)."""
    st.session_state["query_mode"] = "Up and down lists"
    st.session_state["query_up"] = ""
    st.session_state["query_down"] = EXAMPLE_DOWN


def uploaded_text(file: object, what: str) -> str:
    """Text of an uploaded file (UTF-8, at most ``MAX_UPLOAD_BYTES``)."""
    if file is None:
        return ""
    data = file.getvalue()  # type: ignore[attr-defined]
    if len(data) > MAX_UPLOAD_BYTES:
        raise ValidationError(
            f"the {what} file {file.name!r} has {len(data):,} bytes; the limit is {MAX_UPLOAD_BYTES:,} "  # type: ignore[attr-defined]
            "(a gene list is a few kB): upload a plain list of genes"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError(
            f"the {what} file {file.name!r} is not UTF-8 text ({exc.reason}); upload a plain text list of genes"  # type: ignore[attr-defined]
        ) from None


def retrieval_link(dataset: str, cell_line: str, drug: str) -> str:
    """Relative link that opens (cell line, drug) in the Retrieval explorer."""
    return "retrieval?" + urlencode({"dataset": dataset, "cell_line": cell_line, "drug": drug})


def with_links(table: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """The result table with a Retrieval-explorer link per row."""
    links = [retrieval_link(dataset, c, d) for c, d in zip(table["cell_line"], table["drug"], strict=True)]
    return table.assign(open=links)


# --------------------------------------------------------------------------- inputs
dataset = state.signature_dataset()
with ui.guard(f"loading dataset {dataset}"):
    ds = load.signatures(dataset)
st.session_state.setdefault("query_mode", "Up and down lists")
with st.container(border=True):
    top = st.columns([1.4, 1.2, 1])
    mode = top[0].radio("Input", ["Up and down lists", "Ranked list"], key="query_mode", horizontal=True)
    line = top[1].selectbox(
        "Cell line", [ALL_LINES, *ds.cell_lines], key=f"query_line_{dataset}", help=f"Lines of {dataset}."
    )
    top[2].button(
        "Example: MEK inhibition", on_click=load_example, help="Down: the MAPK pathway activity score genes."
    )
    st.caption(
        f"Genes: HGNC symbols or Ensembl ids, any case, separated by new lines, spaces or commas; `#` starts a "
        f"comment. Uploads: plain text, at most {MAX_UPLOAD_BYTES // 1_000_000} MB. Genes not measured in "
        f"{dataset} are listed, never silently dropped."
    )
    with st.form("query_form", border=False):
        if mode == "Up and down lists":
            c1, c2 = st.columns(2)
            up_text = c1.text_area("Up genes (your condition raises them)", key="query_up", height=150)
            up_file = c1.file_uploader(
                "…or upload the up list", type=["txt", "tsv", "csv"], key="query_up_file", max_upload_size=1
            )
            down_text = c2.text_area("Down genes (your condition lowers them)", key="query_down", height=150)
            down_file = c2.file_uploader(
                "…or upload the down list",
                type=["txt", "tsv", "csv"],
                key="query_down_file",
                max_upload_size=1,
            )
            n_ranked = explore.DEFAULT_RANKED_N
        else:
            ranked_text = st.text_area(
                "Ranked list (one gene per line, optionally `GENE score`; first = most up)",
                key="query_ranked",
                height=150,
            )
            ranked_file = st.file_uploader(
                "…or upload it", type=["txt", "tsv", "csv", "rnk"], key="query_ranked_file", max_upload_size=1
            )
            n_ranked = st.number_input(
                "Genes from each end", 5, 1000, explore.DEFAULT_RANKED_N, key="query_n",
                help="The first n genes become the up list and the last n the down list (each at most half the list).",
            )  # fmt: skip
        submitted = st.form_submit_button(
            "Score every signature", type="primary", icon=":material/play_arrow:"
        )

if submitted:
    st.session_state.pop(RESULT_KEY, None)  # a failed query leaves nothing behind
    try:
        if mode == "Up and down lists":
            up = explore.parse_gene_list(up_text + "\n" + uploaded_text(up_file, "up"))
            down = explore.parse_gene_list(down_text + "\n" + uploaded_text(down_file, "down"))
        else:
            text = ranked_text + "\n" + uploaded_text(ranked_file, "ranked")
            up, down = explore.parse_ranked_list(text, int(n_ranked))
            if not (up or down):
                raise ValidationError(
                    "the ranked list needs at least 2 genes (one for each end); paste or upload one"
                )
        with st.spinner("Scoring every signature…"):
            res = explore.connectivity(
                ds, up, down, cell_line=None if line == ALL_LINES else line, drugs=load.drugs()
            )
        st.session_state[RESULT_KEY] = res
    except PerturbCoreError as exc:
        st.error(str(exc), icon=":material/error:")
    except Exception as exc:  # the UI boundary
        ui.unexpected(exc, "scoring the signature")

res: explore.ConnectivityResult | None = st.session_state.get(RESULT_KEY)
if res is None or res.dataset != dataset:
    if not submitted:
        st.info(
            "Enter an up list, a down list or both (or a ranked list) and press **Score every signature**."
        )
    st.stop()

# --------------------------------------------------------------------------- render
where = res.cell_line or "all cell lines"
st.success(
    f"Scored {len(res.table):,} signatures of {res.dataset} ({where}) with {len(res.query.up)} up and "
    f"{len(res.query.down)} down genes.",
    icon=":material/check:",
)
if res.query.unknown:
    st.warning(
        f"Not measured in {res.dataset}, so not used ({len(res.query.unknown)}): {', '.join(res.query.unknown)}",
        icon=":material/help:",
    )
st.caption(
    f"**Score**: {explore.CONNECTIVITY_REFERENCE}. Signature values are rank scores (inverse-normal of the rank), "
    "so weights are |z|. n_up / n_down = query genes present in that signature's list: scores from 1-2 genes are noisy."
)
if res.cell_line is None:
    ui.chart(xfig.connectivity_bars(res.by_drug()), name=f"connectivity_{res.dataset}")
table = with_links(res.table, res.dataset).assign(
    PubChem=lambda t: links.drug_urls(load.drugs().table, t["drug"])
)
st.dataframe(
    table,
    hide_index=True,
    width="stretch",
    height=480,
    column_config={
        "score": st.column_config.NumberColumn("WTCS", format="%+.3f", help="-1..1; + mimics, - reverses"),
        "es_up": st.column_config.NumberColumn(format="%+.3f"),
        "es_down": st.column_config.NumberColumn(format="%+.3f"),
        "open": st.column_config.LinkColumn("Retrieval explorer", display_text="open"),
        "PubChem": links.link_column("PubChem", "PubChem page (by CID) or a name search"),
    },
)
st.download_button(
    "Scores (CSV)", res.table.to_csv(index=False), file_name=f"connectivity_{res.dataset}.csv", mime="text/csv",
    icon=":material/download:",
)  # fmt: skip
line_opt = f" --cell-line '{res.cell_line}'" if res.cell_line else ""
ui.cli_hint(
    f"python -m perturb_core connectivity --up up.txt --down down.txt --dataset {res.dataset}{line_opt} --json"
)
