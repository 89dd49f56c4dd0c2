"""Evidence graph (CORE): contrastive knowledge-graph evidence for one (perturbation, gene) pair."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from pages import _figures as figs
from pages import _loaders as load
from pages import _state as state
from pages import _widgets as ui
from perturb_core import evidence

ui.header(
    "Evidence graph",
    "CORE: does gene g respond to perturbation p? Related perturbations whose effect on g is known vote.",
)
ui.require_data()

TASKS = {"de": "DE: does g respond at all?", "dir": "direction: does g go up (among responders)?"}
OUTCOME_WORDS = {"de": ("responded", "no response"), "dir": ("up", "down")}
TRUTH_WORDS = {"de": ("not DE", "DE"), "dir": ("down", "up")}
REASONING_KEY = "core_reasoning_runs"


@st.cache_data(
    max_entries=256, show_spinner="Collecting evidence (the first pair of a dataset fits CORE-Voting)…"
)
def explain(dataset: str, task: str, perturbation: str, gene: str) -> dict:
    """The explanation dict of one pair (cached per input)."""
    return evidence.explain(
        load.labels(dataset, task), load.graph(), perturbation=perturbation, gene=gene
    ).to_dict()


def items_table(ex: dict) -> pd.DataFrame:
    """Every evidence item with its side and readable path."""
    frames = []
    for side in ("positive", "negative", "unmeasured"):
        items = ex.get(side) or []
        if items:
            df = pd.DataFrame(items)
            df.insert(0, "side", side)
            frames.append(df)
    if not frames:
        return pd.DataFrame(columns=["side", "perturbation", "relation", "path", "weight"])
    out = pd.concat(frames, ignore_index=True)
    names = out["path_names"] if "path_names" in out.columns else out.get("path")
    out["path_text"] = [" → ".join(map(str, p)) if isinstance(p, list | tuple) else str(p) for p in names]
    if "path_detail" in out.columns:
        out["path_detail"] = out["path_detail"].fillna("")
    out["node"] = [
        p[-1] if isinstance(p, list | tuple) and p else None for p in out.get("path", [None] * len(out))
    ]
    return out


def ask_core_reasoning(dataset: str, task: str, perturbation: str, gene: str) -> dict:
    """CORE-Reasoning of one pair (explicit button only; answers are cached on disk)."""
    from perturb_core.llm import LLM

    labels, graph = load.labels(dataset, task), load.graph()
    settings = state.settings()
    pairs = pd.DataFrame({"pert": [perturbation], "gene": [gene]})
    budget = evidence.DEFAULT_BUDGET
    row = evidence.core_reasoning(labels, graph, pairs, llm=LLM.from_settings(settings), budget=budget)
    return row.iloc[0].to_dict()  # includes the prompt exactly as sent


# --------------------------------------------------------------------------- inputs
dataset = state.label_dataset()
seed = state.query_seed("evidence")
state.seed_options(seed, {"task": ("core_task", list(TASKS))})
with st.container(border=True):
    c1, c2, c3 = st.columns([1, 1.2, 1.2])
    task = c1.radio(
        "Task", list(TASKS), format_func=TASKS.get, key="core_task", help="Which label to predict."
    )
    with ui.guard(f"loading labels {dataset}"):
        ls = load.labels(dataset, task)
    perts = ls.perturbations
    kind = "knocked-down gene" if ls.perturbation_kind == "knockdown" else "drug"
    pert_key = f"core_pert_{dataset}_{task}"
    state.seed_choice(pert_key, seed.get("perturbation"), perts, ls.resolve_perturbation, "perturbation")
    perturbation = c2.selectbox(
        f"Perturbation p ({kind})",
        perts,
        key=pert_key,
        help=f"{len(perts):,} perturbations in {dataset} ({ls.cell_line}); type to search.",
    )
    opts = load.gene_options(dataset, task, perturbation)
    if opts.empty:
        st.warning(f"No gene has a label under {perturbation} in {dataset}; pick another perturbation.")
        st.stop()
    words = OUTCOME_WORDS[task]
    fmt = {
        r.gene: f"{r.gene}  ({words[0] if r.label else words[1]}, {r.split})"
        for r in opts.itertuples(index=False)
    }
    gene_key = f"core_gene_{dataset}_{task}_{perturbation}"
    state.seed_choice(
        gene_key,
        seed.get("gene"),
        list(opts["gene"]),
        ls.resolve_gene,
        f"gene with a label under {perturbation}",
    )
    gene = c3.selectbox(
        "Gene g",
        list(opts["gene"]),
        format_func=fmt.get,
        key=gene_key,
        help="Genes with a label under this perturbation, test pairs first; the label is shown for reference "
        "only. CORE never uses the pair's own label, nor any test label, as evidence.",
    )

state.share_link(dataset=dataset, task=task, perturbation=perturbation, gene=gene)
with ui.guard("collecting evidence"):
    ex = explain(dataset, task, perturbation, gene)

# --------------------------------------------------------------------------- render
if ex.get("note"):
    st.caption(f"{ex['note'][0].upper()}{ex['note'][1:]}.")
left, right = st.columns([1.7, 1])


@st.fragment
def graph_panel(ex: dict) -> None:
    """The interactive graph and the selected node's path; a click reruns only this fragment."""
    with ui.guard("drawing the evidence graph", stop=False):
        _graph_panel(ex)


def _graph_panel(ex: dict) -> None:
    sel_key = f"core_node_{dataset}_{task}_{perturbation}_{gene}"
    gdict = ex.get("graph") or {"nodes": []}
    roles = {str(n["id"]): str(n.get("role") or "") for n in gdict["nodes"]}
    names = {
        str(n["id"]): f"{n.get('name', n['id'])} ({n.get('role') or n.get('kind', '')})"
        for n in gdict["nodes"]
    }
    if len(names) <= 2:
        st.info(
            f"No related perturbation of {perturbation} reaches {gene} through the knowledge graph, so there is "
            "nothing to draw: the score is the gene's training frequency (the prior)."
        )
        return
    # evidence nodes first in the picker, strongest first as listed by the core
    items = items_table(ex)
    order = [n for n in items["node"].dropna().astype(str) if n in names] if not items.empty else []
    ids = list(dict.fromkeys([*order, *[i for i in names if roles[i] in ("query", "gene")], *names]))
    event = st.plotly_chart(
        figs.evidence_graph(gdict, OUTCOME_WORDS.get(ex.get("task", "de"), OUTCOME_WORDS["de"])),
        width="stretch",
        on_select="rerun",
        selection_mode="points",
        key=f"chart_{sel_key}",
        config={"displaylogo": False, "scrollZoom": True},
    )
    points = (event.selection.points if event is not None else None) or []
    clicked = next((str(p["customdata"]) for p in points if str(p.get("customdata")) in names), None)
    last_key = f"{sel_key}_last_click"
    if clicked and clicked != st.session_state.get(last_key):
        st.session_state[sel_key] = clicked
    st.session_state[last_key] = clicked
    if st.session_state.get(sel_key) not in ids:
        st.session_state[sel_key] = ids[0]
    node = st.selectbox("Inspect a node (or click one in the graph)", ids, format_func=names.get, key=sel_key)
    info = next(n for n in gdict["nodes"] if str(n["id"]) == node)
    hit = items[items["node"].astype(str) == node] if not items.empty else items
    if hit.empty:
        role = info.get("role") or "path node"
        st.caption(f"**{info.get('name', node)}**: {info.get('kind', '')} node, {role}.")
        return
    row = hit.iloc[0]
    side = str(row["side"])
    colour = figs.SIDE_COLOURS.get(side, figs.UNMEASURED)
    outcome = {
        "positive": f"{gene} {words[0]} under it in training",
        "negative": f"{gene}: {words[1]} under it in training",
        "unmeasured": f"{gene} was not measured under it",
    }[side]
    st.markdown(
        f"<span style='color:{colour};font-weight:600'>● {side}</span> **{row['perturbation']}**: {outcome}; "
        f"related by *{row.get('relation_label', row.get('relation', ''))}* (weight {figs.fmt(row.get('weight'), 3)})",
        unsafe_allow_html=True,
    )
    st.code(row["path_text"], language=None, wrap_lines=True)
    if isinstance(row.get("path_detail"), str) and row["path_detail"]:
        st.caption(row["path_detail"])


with left:
    st.markdown(f"**{perturbation} → {gene}** in {ls.cell_line}")
    graph_panel(ex)

with right:
    truth, split = ex.get("label"), ex.get("split") or "unlabelled"
    st.markdown("**Vote against the prior**")
    fig = figs.vote_bars(ex.get("prior"), ex.get("vote"), ex.get("score"), outcome=words[0])
    st.plotly_chart(fig, width="stretch", key="core_vote", config={"displayModeBar": False})
    gf = ex.get("gene_frequency") or {}
    st.caption(
        f"Prior: {gene} {words[0]} under {gf.get('n_responded', '?')} of {gf.get('n_measured', '?')} training "
        "perturbations (shrunk toward the global rate). Vote: weighted positive fraction of the evidence. "
        "Score: the vote moved the prior on the log-odds scale, shrunk when evidence is thin."
    )
    c1, c2 = st.columns(2)
    c1.metric(
        "Evidence",
        f"{ex.get('n_positive', 0)} + / {ex.get('n_negative', 0)} −",
        f"{ex.get('n_unmeasured', 0)} unmeasured",
        delta_color="off",
        delta_arrow="off",
        border=True,
        help="Related TRAINING perturbations whose outcome on g is positive (+), negative (−), or unknown.",
    )
    c2.metric(
        "True label",
        "–" if truth is None else TRUTH_WORDS[task][int(truth)],
        f"{split} pair",
        delta_color="off",
        delta_arrow="off",
        border=True,
        help="The pair's own label and split, for reference: it is never used as evidence.",
    )
    c3, c4 = st.columns(2)
    c3.metric(
        "Final score",
        figs.fmt(ex.get("score")),
        border=True,
        help="CORE-Voting probability that g " + words[0] + " under p.",
    )
    c4.metric(
        "Gene AUROC",
        figs.fmt(ex.get("gene_auroc")),
        f"{ex.get('gene_auroc_n', 0)} test perts",
        delta_color="off",
        delta_arrow="off",
        border=True,
        help="AUROC of CORE-Voting over this gene's test perturbations (0.5 = chance; the gene-frequency "
        "prior is 0.5 by construction). – when the gene lacks one of the classes in test.",
    )

    settings = state.settings()
    st.markdown("**CORE-Reasoning (LLM)**")
    if not settings.llm_configured:
        st.caption("Needs an LLM endpoint (set one on **Settings**); CORE-Voting above needs none.")
    else:
        runs: dict = st.session_state.setdefault(REASONING_KEY, {})
        rkey = (dataset, task, perturbation, gene, settings.llm_base_url, settings.llm_model)
        if st.button(f"Ask {settings.llm_model} to weigh this evidence", icon=":material/smart_toy:"):
            with st.spinner(f"Asking {settings.llm_model}…"):
                out = ui.call(ask_core_reasoning, dataset, task, perturbation, gene, action="asking the LLM")
            if out is not None:
                runs[rkey] = out
        ans = runs.get(rkey)
        if ans:
            if ans.get("fallback"):
                st.error(
                    f"No usable answer ({ans.get('error') or 'unknown error'}); the score falls back to "
                    f"CORE-Voting ({figs.fmt(ans.get('fallback_score'))}). Check the endpoint on **Settings**.",
                    icon=":material/cloud_off:",
                )
            else:
                st.metric(
                    "LLM probability",
                    figs.fmt(ans.get("probability")),
                    "cache hit" if ans.get("cache_hit") else "cache miss",
                    delta_color="off",
                    delta_arrow="off",
                    border=True,
                    help=f"The model's probability that g {words[0]} under p, given the evidence above.",
                )
            if ans.get("rationale"):
                st.caption(f"Rationale: {ans['rationale']}")
            with st.expander(f"Prompt (hash {ans.get('prompt_hash', '')}) and raw answer"):
                ui.prompt_messages(ans.get("prompt") or [])
                st.caption("ANSWER")
                st.code(str(ans.get("raw") or "(no answer)"), language=None, wrap_lines=True)

st.markdown("**Evidence items**")
items = items_table(ex)
show = [
    c
    for c in ["side", "perturbation", "relation_label", "weight", "path_text", "path_detail"]
    if c in items.columns
]
st.dataframe(
    items[show],
    hide_index=True,
    width="stretch",
    height=min(400, 38 + 35 * max(1, len(items))),
    column_config={
        "side": st.column_config.TextColumn(
            "side", help="positive: g responded under it; negative: it did not; unmeasured: g not measured"
        ),
        "relation_label": st.column_config.TextColumn(
            "relation", help="The strongest relation linking it to p."
        ),
        "weight": st.column_config.NumberColumn(
            "weight", format="%.3f", help="Its vote weight (relation mass)."
        ),
        "path_text": st.column_config.TextColumn("path in the knowledge graph", width="large"),
        "path_detail": st.column_config.TextColumn("detail"),
    },
)
if ex.get("n_unmeasured", 0) > len(ex.get("unmeasured") or []):
    st.caption(
        f"Showing {len(ex.get('unmeasured') or [])} of {ex['n_unmeasured']} unmeasured related perturbations "
        "(the strongest)."
    )
ui.json_download(ex, f"core_{dataset}_{task}_{perturbation}_{gene}.json")
ui.cli_hint(
    f'python -m perturb_core core explain --dataset {dataset} --perturbation "{perturbation}" --gene {gene} '
    f"--task {task} --json"
)
