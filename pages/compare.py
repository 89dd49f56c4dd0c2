"""Compare: two LGR predictions side by side (two selectors, two drugs in one line, one drug in two lines)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from pages import _compare_views as cv
from pages import _figures as figs
from pages import _links as links
from pages import _loaders as load
from pages import _state as state
from pages import _widgets as ui
from perturb_core import retrieval
from perturb_core.compare import COMPARE_MODE_LABELS, COMPARE_MODES, NOTABLE, Comparison
from perturb_core.metrics import METRICS, REGRESSION_METRICS, RETRIEVAL_METRICS

ui.header(
    "Compare",
    "Two LGR predictions side by side: two selectors on one query, two drugs in one cell line, or one drug "
    "in two cell lines. What differs is listed first and highlighted.",
)
ui.require_data()

#: First views that make biological sense on Tahoe (MEK inhibitors; a melanoma and a lung line).
DEFAULTS = {
    "cell_line": ("C32",),
    "drug": ("Trametinib",),
    "drug_b": ("Binimetinib",),
    "cell_line_b": ("NCI-H23",),
}
SHOWN_METRICS = ("pearson", "sign_accuracy", "mse", "r2")
SHARED_BG = "#D6EAF8"


def pick_default(options: list[str], preferred: tuple[str, ...], avoid: str | None = None) -> str:
    """The first preferred option present, else the first option that is not ``avoid``."""
    return next(
        (o for o in preferred if o in options and o != avoid),
        next((o for o in options if o != avoid), options[0]),
    )


dataset = state.signature_dataset()
with ui.guard(f"loading dataset {dataset}"):
    ds = load.signatures(dataset)
seed = state.query_seed("compare")
selectors = [s for s, spec in retrieval.SELECTORS.items() if not spec.needs_llm]
state.seed_options(
    seed,
    {
        "mode": ("cmp_mode", list(COMPARE_MODES)),
        "selector": ("cmp_selector", selectors),
        "selector_b": ("cmp_selector_b", selectors),
        "regime": ("cmp_regime", list(retrieval.REGIMES)),
    },
)
st.session_state.setdefault("cmp_mode", "drugs")
st.session_state.setdefault("cmp_selector", "kg_mechanism" if "kg_mechanism" in selectors else selectors[0])
st.session_state.setdefault(
    "cmp_selector_b", "transcriptome_knn" if "transcriptome_knn" in selectors else selectors[-1]
)
st.session_state.setdefault("cmp_k", retrieval.DEFAULT_K)
st.session_state.setdefault("cmp_regime", "open-world")

with st.container(border=True):
    mode = st.radio(
        "What to compare",
        list(COMPARE_MODES),
        format_func=lambda m: COMPARE_MODE_LABELS[m].capitalize(),
        key="cmp_mode",
        horizontal=True,
    )
    c1, c2, c3 = st.columns(3)
    cells = ds.cell_lines
    ckey = f"cmp_cell_{dataset}"
    state.seed_choice(ckey, seed.get("cell_line"), cells, ds.resolve_cell_line, "cell line")
    st.session_state.setdefault(ckey, pick_default(cells, DEFAULTS["cell_line"]))
    cell_line = c1.selectbox("Cell line" + (" (left)" if mode == "cell_lines" else ""), cells, key=ckey)
    drugs = ds.drugs(cell_line)
    dkey = f"cmp_drug_{dataset}_{cell_line}"
    state.seed_choice(dkey, seed.get("drug"), drugs, ds.resolve_drug, f"drug measured in {cell_line}")
    st.session_state.setdefault(dkey, pick_default(drugs, DEFAULTS["drug"]))
    drug = c2.selectbox("Drug" + (" (left)" if mode == "drugs" else ""), drugs, key=dkey)
    label = lambda s: retrieval.SELECTORS[s].label  # noqa: E731
    selector = c3.selectbox(
        "Selector" + (" (left)" if mode == "selectors" else ""),
        selectors,
        format_func=label,
        key="cmp_selector",
    )
    cell_line_b, drug_b, selector_b = cell_line, drug, selector
    d1, d2, d3 = st.columns(3)
    if mode == "cell_lines":
        lines_b = [c for c in cells if c != cell_line and drug in ds.drugs(c)]
        if not lines_b:
            st.warning(f"{drug} is measured in no other cell line of {dataset}; choose another drug or mode.")
            st.stop()
        bkey = f"cmp_cell_b_{dataset}_{drug}"
        state.seed_choice(
            bkey, seed.get("cell_line_b"), lines_b, ds.resolve_cell_line, f"cell line measuring {drug}"
        )
        st.session_state.setdefault(bkey, pick_default(lines_b, DEFAULTS["cell_line_b"]))
        cell_line_b = d1.selectbox(
            "Cell line (right)", lines_b, key=bkey, help=f"Lines where {drug} was profiled."
        )
    elif mode == "drugs":
        drugs_b = [d for d in drugs if d != drug]
        bkey = f"cmp_drug_b_{dataset}_{cell_line}_{drug}"
        state.seed_choice(bkey, seed.get("drug_b"), drugs_b, ds.resolve_drug, f"drug measured in {cell_line}")
        st.session_state.setdefault(bkey, pick_default(drugs_b, DEFAULTS["drug_b"]))
        drug_b = d2.selectbox("Drug (right)", drugs_b, key=bkey)
    else:
        if st.session_state["cmp_selector_b"] == selector:
            st.session_state["cmp_selector_b"] = next(s for s in selectors if s != selector)
        selector_b = d3.selectbox(
            "Selector (right)",
            [s for s in selectors if s != selector],
            format_func=label,
            key="cmp_selector_b",
        )
    e1, e2, _ = st.columns(3)
    k = e1.slider("k neighbours", 1, 30, key="cmp_k")
    regime = e2.selectbox(
        "Regime", list(retrieval.REGIMES), format_func=retrieval.REGIME_LABELS.__getitem__, key="cmp_regime"
    )
    st.caption(
        "Rule-based selectors only here (the LLM selector is compared from the command line: "
        "`lgr compare --selector llm`). Both sides share k, regime and the regime's default aggregation."
    )

state.share_link(
    dataset=dataset, mode=mode, cell_line=cell_line, drug=drug, selector=selector,
    cell_line_b=cell_line_b if mode == "cell_lines" else None, drug_b=drug_b if mode == "drugs" else None,
    selector_b=selector_b if mode == "selectors" else None, regime=regime,
)  # fmt: skip

with ui.guard("comparing the two predictions"):
    query = cv.CompareQuery(dataset, cell_line, drug, selector, cell_line_b, drug_b, selector_b, k, regime)
    cmp = cv.compare(query)
    scatters = cv.scatters(query)
left, right = cmp.left, cmp.right
nb = cmp.neighbours()
shared = {s["name"] for s in nb["shared"]}
metrics = cmp.metrics()

# --------------------------------------------------------------------------- what differs
notes = cmp.differences()
st.subheader(f"{Comparison.side_label(left)}  vs  {Comparison.side_label(right)}")
with st.container(border=True):
    st.markdown(f"**What differs** ({cmp.label})")
    if notes:
        st.markdown("\n".join(f"- {n}" for n in notes))
    else:
        st.markdown("Nothing notable: same neighbours, metrics within 0.05 of each other.")
    sim = cmp.similarity()
    st.caption(
        f"Metrics flagged when they differ by at least {NOTABLE} in their own unit. Pearson r over the "
        f"{sim['n_genes']:,} evaluation genes both sides share: predictions {figs.fmt(sim['prediction_pearson'])}, "
        f"observed responses {figs.fmt(sim['observed_pearson'])} (dimensionless; deltas are the dataset's units, "
        "inverse-normal rank scores for Tahoe, not log fold changes)."
    )

smiles = {
    n: load.drug_smiles(n) for n in {*(x.name for x in left.neighbours), *(x.name for x in right.neighbours)}
}
collapse = st.toggle(
    "Collapse salt forms in the neighbour lists",
    key="cmp_collapse",
    help="Salt forms of one parent structure (e.g. Almonertinib hydrochloride / mesylate) shown as one row at "
    "the better rank (RDKit FragmentParent + Uncharger, compared by InChIKey).",
)
ids = links.drug_ids(load.drugs().table, smiles)


def neighbour_frame(ex: retrieval.QueryExplanation) -> pd.DataFrame:
    rows = [
        {
            "rank": n.rank,
            "drug": n.name,
            "in both": n.name in shared,
            "own r": n.own_pearson,
            "Tanimoto": n.similarity,
            "PubChem": links.first_url(links.drug_links(n.name, **ids.get(n.name, {}))),
            "targets": ", ".join(n.targets),
        }
        for n in ex.neighbours
    ]
    df = pd.DataFrame(rows, columns=["rank", "drug", "in both", "own r", "Tanimoto", "PubChem", "targets"])
    if collapse and len(df):
        merged = dict(links.collapsed_names(list(df["drug"]), smiles))
        df = df[df["drug"].isin(merged)].copy()
        df["drug"] = [f"{d} (+ {', '.join(merged[d])})" if merged[d] else d for d in df["drug"]]
    return df


def side(col, ex: retrieval.QueryExplanation, other_side: str, key: str) -> None:
    with col:
        st.markdown(f"#### {Comparison.side_label(ex)}")
        q = ex.query
        st.caption(
            f"Mechanism: {q.moa or 'unknown'}; targets: {', '.join(q.targets) or 'none known'}. "
            f"Pool {ex.pool_size} drugs; {ex.n_neighbours} neighbours, {ex.k_used} from the selector"
            + (f"; fallback: {ex.fallback}" if ex.fallback else "")
            + ".  \n"
            + links.markdown(
                links.drug_links(ex.drug, **links.drug_ids(load.drugs().table, [ex.drug]).get(ex.drug, {}))
            )
        )
        grid = [c for _ in range(len(SHOWN_METRICS) // 2) for c in st.columns(2)]
        for c, m in zip(grid, SHOWN_METRICS, strict=True):
            row = metrics[m]
            better, worse = row["better"] == key, row["better"] == other_side
            c.metric(
                ui.short_label(m),
                figs.fmt(row[key]),
                delta=None
                if row["difference"] is None
                else ("better" if better else "worse" if worse else "tie"),
                delta_color="normal" if better else ("inverse" if worse else "off"),
                delta_arrow="off",
                help=f"**{ui.metric_label(m)}**: {ui.metric_help(m)}",
                border=True,
            )
        ui.chart(
            scatters[key],
            name=f"compare_scatter_{key}",
            key=f"cmp_scatter_{key}",
        )
        df = neighbour_frame(ex)
        st.dataframe(
            df.style.apply(
                lambda r: [f"background-color: {SHARED_BG}" if r["in both"] else "" for _ in r], axis=1
            ).format({"own r": "{:.3f}", "Tanimoto": "{:.2f}"}, na_rep="–"),
            hide_index=True,
            width="stretch",
            key=f"cmp_neigh_{key}",
            column_config={
                "PubChem": links.link_column("PubChem"),
                "in both": st.column_config.CheckboxColumn(
                    help="Also a neighbour on the other side (shaded)."
                ),
                "own r": st.column_config.NumberColumn(
                    help="Pearson r of this neighbour's own delta in the line with the observed query delta."
                ),
                "Tanimoto": st.column_config.NumberColumn(
                    help="Morgan fingerprint (r=2) similarity to the query."
                ),
            },
        )
        ui.csv_download(
            df, name=f"compare_neighbours_{key}_{Comparison.side_label(ex)}", label="Neighbours (CSV)"
        )


lcol, rcol = st.columns(2)
side(lcol, left, "right", "left")
side(rcol, right, "left", "right")

# --------------------------------------------------------------------------- tables
st.markdown("**All metrics side by side** (better side shaded; hover a column for its definition)")
names = [m for m in (*REGRESSION_METRICS, *RETRIEVAL_METRICS) if m in metrics]
table = pd.DataFrame(
    {
        "metric": [METRICS[m].label for m in names],
        "left": [metrics[m]["left"] for m in names],
        "right": [metrics[m]["right"] for m in names],
        "right − left": [metrics[m]["difference"] for m in names],
        "better": [metrics[m]["better"] or "—" for m in names],
        "unit": [METRICS[m].unit for m in names],
    }
)


def shade(row: pd.Series) -> list[str]:
    bg = f"background-color: {SHARED_BG}"
    return [bg if (c == row["better"]) else "" for c in row.index]


st.dataframe(
    table.style.apply(shade, axis=1).format(
        {"left": "{:.3f}", "right": "{:.3f}", "right − left": "{:+.3f}"}, na_rep="–"
    ),
    hide_index=True,
    width="stretch",
    key="cmp_metrics",
)
ui.csv_download(table, name=f"compare_metrics_{dataset}_{mode}_{cell_line}_{drug}", label="Metrics (CSV)")
tops = cmp.top_gene_overlap()
st.caption(
    "Top-10 genes in common, predicted / observed: up "
    + f"{', '.join(tops['up']['predicted']) or '—'} / {', '.join(tops['up']['observed']) or '—'}; down "
    + f"{', '.join(tops['down']['predicted']) or '—'} / {', '.join(tops['down']['observed']) or '—'}."
)
ui.json_download(cmp.to_dict(), f"compare_{dataset}_{mode}_{cell_line}_{drug}.json")
flag = {
    "cell_lines": f"--cell-line-b '{cell_line_b}'",
    "drugs": f"--drug-b '{drug_b}'",
    "selectors": f"--selector-b {selector_b}",
}[mode]
ui.cli_hint(
    f"python -m perturb_core lgr compare --dataset {dataset} --cell-line '{cell_line}' --drug '{drug}' "
    f"--selector {selector} {flag} --k {k} --regime {regime} --json"
)
