"""Retrieval explorer (LGR): one (cell line, drug) query, its neighbours, prediction, metrics and baselines."""

from __future__ import annotations

from typing import Any

import streamlit as st

from pages import _figures as figs
from pages import _links as links
from pages import _loaders as load
from pages import _retrieval_views as rv
from pages import _state as state
from pages import _widgets as ui
from pages._enrichment import render_enrichment
from perturb_core import retrieval
from perturb_core.metrics import REGRESSION_METRICS, RETRIEVAL_METRICS

ui.header(
    "Retrieval explorer",
    "LGR: predict a drug's response in a cell line as the mean response of k retrieved neighbour drugs.",
)
ui.require_data()

N_TOP_GENES = rv.N_TOP_GENES
LLM_RUNS_KEY = "lgr_llm_runs"
#: A first query with a well-annotated mechanism (the list is alphabetical otherwise).
DEFAULT_DRUGS = ("Trametinib", "Trametinib (DMSO_TF)", "Afatinib", "Palbociclib")


def predict_with_llm(*query: Any) -> retrieval.QueryExplanation:
    """One query (the arguments of :func:`pages._retrieval_views.run_query`) of an LLM selector
    (explicit button only; answers come from the shared disk cache when present)."""
    from perturb_core.llm import LLM

    settings = state.settings()
    return rv.run_query(*query, settings=settings, llm=LLM.from_settings(settings))


# --------------------------------------------------------------------------- inputs
dataset = state.signature_dataset()
with ui.guard(f"loading dataset {dataset}"):
    ds = load.signatures(dataset)
settings = state.settings()
seed = state.query_seed("retrieval")
if seed.get("selector") and (note := retrieval.deprecated_selector_note(seed["selector"])):
    st.caption(f":material/info: Link: {note}.")
    seed["selector"] = retrieval.check_selector(seed["selector"])
state.seed_options(
    seed,
    {
        "selector": ("lgr_selector", list(retrieval.SELECTORS)),
        "regime": ("lgr_regime", list(retrieval.REGIMES)),
        "aggregation": ("lgr_agg", list(retrieval.AGGREGATIONS)),
    },
)
state.seed_int(seed, "k", "lgr_k", 1, 30)
# defaults live in session state (not in the widgets) so links and kept choices never conflict with them
st.session_state.setdefault(
    "lgr_selector", "kg_mechanism" if "kg_mechanism" in retrieval.SELECTORS else "random"
)
st.session_state.setdefault("lgr_k", retrieval.DEFAULT_K)
st.session_state.setdefault("lgr_regime", "open-world")
st.session_state.setdefault("lgr_agg", retrieval.DEFAULT_AGGREGATION["open-world"])

with st.container(border=True):
    c0, c1, c2 = st.columns([1, 1, 1.4])
    cell_lines = load.cell_lines(dataset)
    cell_key = f"lgr_cell_{dataset}"
    state.seed_choice(cell_key, seed.get("cell_line"), cell_lines, ds.resolve_cell_line, "cell line")
    find_key = f"lgr_find_{dataset}"
    ui.name_search(
        c0,
        "Find a cell line or drug",
        [(cell_key, cell_lines, ds.resolve_cell_line, None)],
        key=find_key,
        placeholder="e.g. c-32 > trametinib",
    )
    cell_line = c1.selectbox(
        "Cell line",
        cell_lines,
        key=f"lgr_cell_{dataset}",
        help=f"{len(cell_lines)} cell lines in {dataset}; type to search.",
    )
    drugs = load.drugs_in(dataset, cell_line)
    drug_key = f"lgr_drug_{dataset}_{cell_line}"
    state.keep_choice(drug_key, drugs, "lgr_last_drug")
    state.seed_choice(drug_key, seed.get("drug"), drugs, ds.resolve_drug, f"drug measured in {cell_line}")
    st.session_state.setdefault(drug_key, next((d for d in drugs if d in DEFAULT_DRUGS), drugs[0]))
    ui.name_search_targets(find_key, [(drug_key, drugs, ds.resolve_drug, "lgr_last_drug")])
    drug = c2.selectbox(
        "Query drug",
        drugs,
        key=drug_key,
        help=f"{len(drugs)} drugs measured in {cell_line}; the query itself is never in its pool.",
    )
    st.session_state["lgr_last_drug"] = drug
    selectors = list(retrieval.SELECTORS)
    # long labels (selector, regime, aggregation) get wide columns, so none is cut at 1400 px
    c3, c4 = st.columns([2.4, 1])
    selector = c3.selectbox(
        "Selector",
        selectors,
        format_func=lambda s: f"{s}: {retrieval.SELECTORS[s].label}",
        key="lgr_selector",
        help="Who picks the k neighbours. Only 'LLM' calls a language model; oracle peeks at the truth (a ceiling).",
    )
    c5, c6 = st.columns(2)
    k = c4.slider("k neighbours", 1, 30, key="lgr_k", help="Neighbours requested (paper: 10).")
    aggregation = c5.selectbox(
        "Aggregation",
        list(retrieval.AGGREGATIONS),
        format_func=retrieval.AGGREGATION_LABELS.__getitem__,
        key="lgr_agg",
        help="; ".join(f"{a}: {retrieval.AGGREGATION_DEFINITIONS[a]}" for a in retrieval.AGGREGATIONS)
        + ". Default: residual where the drug was measured in other lines (unseen cell line, open world); "
        "the paper's plain mean for an unseen drug.",
    )
    regime = c6.selectbox(
        "Regime",
        list(retrieval.REGIMES),
        format_func=retrieval.REGIME_LABELS.__getitem__,
        key="lgr_regime",
        help="Which drugs the pool may hold: the query is always treated as unmeasured.",
    )
    spec = retrieval.SELECTORS[selector]
    st.caption(
        f"**{spec.label}**: {spec.definition}  \n**Aggregation {aggregation}**: "
        f"{retrieval.AGGREGATION_DEFINITIONS[aggregation]}"
    )
    if regime == "unseen-drug":
        st.caption(
            "Unseen drug: in the full benchmark no retrieval method (and no aggregation) beats the cell-line "
            "mean by a meaningful margin; see Benchmarks."
        )

state.share_link(
    dataset=dataset,
    cell_line=cell_line,
    drug=drug,
    selector=selector,
    k=k,
    aggregation=aggregation,
    regime=regime,
)

# --------------------------------------------------------------------------- the one call
query = (dataset, cell_line, drug, selector, k, aggregation, regime)
ex: retrieval.QueryExplanation | None = None
if retrieval.SELECTORS[selector].needs_llm:
    if not settings.llm_configured:
        st.warning(
            "The LLM selector needs an endpoint: set `OPENAI_BASE_URL` / `OPENAI_API_KEY` before starting "
            "the app, or enter one on **Settings**. Every other selector works without an LLM.",
            icon=":material/smart_toy:",
        )
        st.page_link(ui.PAGES["settings"], label="Open Settings", icon=":material/settings:")
        st.stop()
    run_key = (*query, settings.llm_base_url, settings.llm_model)
    runs: dict[tuple, retrieval.QueryExplanation] = st.session_state.setdefault(LLM_RUNS_KEY, {})
    if st.button(f"Ask the LLM ({settings.llm_model})", type="primary", icon=":material/smart_toy:"):
        with st.spinner(f"Asking {settings.llm_model} to pick {k} neighbours of {drug} in {cell_line}…"):
            answered = ui.call(predict_with_llm, *query, action="asking the LLM")
        if answered is not None:
            runs[run_key] = answered
    ex = runs.get(run_key)
    if ex is None:
        st.info(
            "Press **Ask the LLM** to run this query. Answers are cached on disk (shared with the CLI), "
            "so asking again costs nothing."
        )
        st.stop()
else:
    with ui.guard("predicting the query"):
        ex = rv.predict(*query)
assert ex is not None  # guard() stops the page on failure
trace = ex.llm
# an LLM run lives in this session only: its views are built here, not shared
view = (
    rv.build_views(ex, ds.units)
    if retrieval.SELECTORS[selector].needs_llm
    else rv.views((dataset, cell_line, drug, selector, k, aggregation, regime), ex, ds.units)
)

# --------------------------------------------------------------------------- render
if trace is not None and trace.error:
    st.error(
        f"The LLM call failed, so the prediction below is the {ex.predicted_by}, not the LLM's: {trace.error}",
        icon=":material/cloud_off:",
    )
if ex.fallback:
    st.info(f"Fallback: {ex.fallback}.", icon=":material/alt_route:")
elif ex.k_used < k:
    st.warning(
        f"Only {ex.k_used} of {k} requested neighbours are valid: the pool holds "
        f"{ex.pool_size} drugs or the selector named drugs outside it. The prediction averages "
        "the valid ones only.",
        icon=":material/warning:",
    )

query = ex.query
st.subheader(f"{drug} in {cell_line}")
st.caption(
    f"Mechanism: {query.moa or 'unknown'}; targets: {', '.join(query.targets) or 'none known'}; "
    f"programs: {', '.join(query.programs) or 'none'}. Pool: {ex.pool_size} drugs "
    f"({ex.regime}, split `{ex.split_id}`); {ex.n_neighbours} neighbours used, "
    f"{ex.k_used} from the selector. " + view.query_links
)
st.markdown(
    f"**Metrics of the {ex.predicted_by} prediction** over the {ex.n_eval_genes:,} "
    "evaluation genes (top-2000 most variable in training; genes not measured in this signature are skipped). "
    "Hover a tile for its formula."
)
ui.metric_tiles(ex.metrics, REGRESSION_METRICS, columns=4)
st.markdown(
    "**Retrieval quality against the oracle's neighbours** (the k pool drugs closest to the true response; "
    "hover for the definition)"
)
ui.metric_tiles(ex.metrics, RETRIEVAL_METRICS)

st.markdown("**The same query, baselines side by side**")
table = view.baselines
st.dataframe(
    view.baselines_data,
    width="stretch",
    column_config={
        "_index": st.column_config.TextColumn("method", width="medium"),
        **ui.metric_columns(REGRESSION_METRICS, fmt_spec="%.3f", short=True),
        "best in": st.column_config.TextColumn(
            "best in", width="medium", help="The metrics where this row is the best."
        ),
        "note": st.column_config.TextColumn(
            "note", width="medium", help="Fallbacks, and rows whose prediction is identical to another's."
        ),
    },
)
# the last columns can sit past the table's right edge at common widths: say them in full below it
winners = table["best in"][table["best in"] != ""]
flagged = table["note"][table["note"] != ""]
below = [
    f"{title}: " + "; ".join(f"**{m}**: {v}" for m, v in rows.items()) + "."
    for title, rows in (("Best per metric", winners), ("Note", flagged))
    if len(rows)
]
if below:
    st.markdown("  \n".join(below))
st.caption("; ".join(f"**{b}**: {spec.definition}" for b, spec in retrieval.BASELINES.items()) + ".")
ui.csv_download(
    table.rename_axis("method"),
    name=f"lgr_baselines_{dataset}_{cell_line}_{drug}",
    label="Baselines (CSV)",
    index=True,
)

left, right = st.columns([1.15, 1])
with left:
    st.markdown(
        f"**Predicted vs observed**, one point per gene (r = {figs.fmt(ex.metrics['pearson'])}; "
        "hover for the gene)"
    )
    ui.chart(view.scatter, name=f"lgr_scatter_{dataset}_{cell_line}_{drug}", key="lgr_scatter")
with right:
    st.markdown("**Top genes, predicted vs observed**")
    tabs = st.tabs(["Most up-regulated", "Most down-regulated"])
    for tab, top in zip(tabs, view.top_tabs, strict=True):
        with tab:
            st.dataframe(
                top.table,
                width="stretch",
                column_config={
                    "rank": st.column_config.NumberColumn(width=40),
                    "predicted Δ": st.column_config.NumberColumn(width=80, format="%+.2f"),
                    "observed Δ": st.column_config.NumberColumn(width=80, format="%+.2f"),
                },
            )
            st.caption(
                f"{top.n_both} of the top {top.n} {top.direction}-regulated genes are in both lists (✓)."
            )


st.markdown("**Neighbours**")
if not ex.neighbours:
    st.warning("No valid neighbour: the prediction could not be formed from this pool.")
else:
    st.dataframe(
        view.neighbours_data,
        hide_index=True,
        width="stretch",
        column_config={
            "rank": st.column_config.NumberColumn("rank", width="small"),
            "name": st.column_config.TextColumn("drug"),
            "mechanism": st.column_config.TextColumn(
                "mechanism", width="medium", help="Mechanism tags of the neighbour."
            ),
            "programs": st.column_config.TextColumn(
                "programs", help="Transcriptional programs its mechanism acts on."
            ),
            "targets": st.column_config.TextColumn(
                "targets", width="medium", help="HGNC symbols of its targets (ADME genes removed)."
            ),
            "similarity": st.column_config.NumberColumn(
                "Tanimoto",
                format="%.2f",
                help="Tanimoto similarity of Morgan fingerprints (r=2) to the query.",
            ),
            "score": st.column_config.NumberColumn(
                "selector score", format="%.2f", help="The selector's own score (its ranking criterion)."
            ),
            "own_pearson": st.column_config.NumberColumn(
                "own r",
                format="%.3f",
                help="Pearson r of this neighbour's own delta in the cell line with the observed query delta.",
            ),
            "loo_delta_pearson": st.column_config.NumberColumn(
                "LOO Δr",
                format="%+.3f",
                help="r(prediction) − r(prediction without this neighbour): > 0 means it helped.",
            ),
            "source": st.column_config.TextColumn(
                "source", help="selector, hybrid_chem (chemistry padding) or pool_mean (fallback)."
            ),
            "PubChem": links.link_column("PubChem", "PubChem page (by CID) or a name search"),
        },
    )
    ui.csv_download(
        view.neighbours, name=f"lgr_neighbours_{dataset}_{cell_line}_{drug}", label="Neighbours (CSV)"
    )
    st.markdown(
        "**Why each neighbour** (mechanism, targets and programs, then the selector's own justification, "
        "in full)"
    )
    st.markdown(
        "\n".join(
            f"{n.rank}. **{n.name}** ({', '.join(n.mechanism) or 'no mechanism tag'}; targets "
            f"{', '.join(n.targets) or 'none known'}; {', '.join(n.programs) or 'no program'}): {n.justification}"
            for n in ex.neighbours
        ),
    )
    if ex.filtered:
        st.caption("Dropped by validation (not in the pool): " + ", ".join(ex.filtered))

    with st.expander("Structures of the query and its neighbours (RDKit)", expanded=True):
        if view.smiles:
            st.image(load.structures_image(view.smiles, view.legends))
        if view.no_structure:
            st.caption("No structure known for: " + ", ".join(view.no_structure))

if trace is not None:
    st.markdown("**Language model**")
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Model", trace.model, border=True)
    c2.metric("k used", f"{ex.k_used} / {k}", border=True, help="Valid in-pool names kept from the answer.")
    c3.metric(
        "Cache",
        "hit" if trace.cache_hit else "miss",
        border=True,
        help="A hit is answered from the disk cache without an HTTP request.",
    )
    c4.metric("Prompt hash", trace.prompt_hash, border=True)
    if trace.raw_answer and not trace.error and not trace.block_found:
        st.warning("The answer had no <Final Answer> block; names were read from its numbered lines.")
    with st.expander("Prompt sent"):
        ui.prompt_messages(trace.prompt)
    with st.expander("Raw answer", expanded=True):
        st.code(trace.raw_answer or "(no answer)", language=None, wrap_lines=True)
    filtered = [*ex.filtered, *trace.duplicates]
    with st.expander(f"Filtered items ({len(filtered)})"):
        st.write(
            ", ".join(filtered) if filtered else "None: every named drug was in the pool, no duplicates."
        )

if st.toggle(
    "Pathway enrichment of the predicted and observed top genes",
    key="lgr_enrichment",
    help="Do the predicted and the observed top genes hit the same pathways? (hypergeometric test, BH q)",
):
    render_enrichment(ex)

with st.expander("Metric definitions"):
    st.dataframe(ui.definitions_data(REGRESSION_METRICS), hide_index=True, width="stretch")

ui.json_download(view.json_text, f"lgr_{dataset}_{cell_line}_{drug}_{selector}.json")
ui.cli_hint(
    f'python -m perturb_core lgr predict --dataset {dataset} --cell-line "{cell_line}" --drug "{drug}" '
    f"--selector {selector} --k {k} --aggregation {aggregation} --regime {regime} --json"
)
