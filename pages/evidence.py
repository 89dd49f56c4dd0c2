"""Evidence graph (CORE): contrastive knowledge-graph evidence for one (perturbation, gene) pair."""

from __future__ import annotations

from typing import Any, NamedTuple

import pandas as pd
import streamlit as st

from pages import _evidence_figures as egf
from pages import _evidence_views as ev
from pages import _figures as figs
from pages import _links as links
from pages import _loaders as load
from pages import _state as state
from pages import _widgets as ui
from perturb_core import evidence
from perturb_core.data.registry import TASK_SPECS, TASKS

ui.header(
    "Evidence graph",
    "CORE: does gene g respond to perturbation p? Related perturbations whose effect on g is known vote.",
)
ui.require_data()

REASONING_KEY = "core_reasoning_runs"
#: The pair a dataset opens on: a TEST pair with both positive and negative evidence (reads well in a demo).
DEFAULT_PAIRS = {"perturbqa-k562": ("INTS1", "LIMD2")}
#: The cached views of a pair (module-level functions there, so a rerun does not decorate them again).
explain = ev.explain


def ask_core_reasoning(dataset: str, task: str, perturbation: str, gene: str) -> NamedTuple:
    """CORE-Reasoning of one pair (explicit button only; answers are cached on disk).

    Returns the pair's row of :func:`perturb_core.evidence.core_reasoning` (columns
    :data:`~perturb_core.evidence.REASONING_COLUMNS` as attributes), prompt exactly as sent.
    """
    from perturb_core.llm import LLM

    labels, graph = load.labels(dataset, task), load.graph()
    settings = state.settings()
    pairs = pd.DataFrame({"pert": [perturbation], "gene": [gene]})
    budget = evidence.DEFAULT_BUDGET
    frame = evidence.core_reasoning(labels, graph, pairs, llm=LLM.from_settings(settings), budget=budget)
    return next(frame.itertuples(index=False))


# --------------------------------------------------------------------------- inputs
dataset = state.label_dataset()
seed = state.query_seed("evidence")
state.seed_options(seed, {"task": ("core_task", list(TASKS))})
with st.container(border=True):
    c1, c2, c3 = st.columns([1, 1.2, 1.2])
    task = c1.radio(
        "Task",
        list(TASKS),
        format_func=lambda t: TASK_SPECS[t].label,
        key="core_task",
        help="Which label to predict. Switching keeps the perturbation and gene when they have this label too.",
    )
    wording = TASK_SPECS[task]
    with ui.guard(f"loading labels {dataset}"):
        ls = load.labels(dataset, task)
    perts = load.perturbations(dataset, task)
    kind = "knocked-down gene" if ls.perturbation_kind == "knockdown" else "drug"
    # keys per dataset and task (their options differ); the last choice carries over where valid
    pert_key = f"core_pert_{dataset}_{task}"
    state.keep_choice(pert_key, perts, "core_last_pert")
    state.seed_choice(pert_key, seed.get("perturbation"), perts, ls.resolve_perturbation, "perturbation")
    default = DEFAULT_PAIRS.get(dataset)
    if default and default[0] in perts:
        st.session_state.setdefault(pert_key, default[0])
    find_key = f"core_find_{dataset}_{task}"
    ui.name_search(
        c1,
        "Find p, or p > g (any spelling)",
        [(pert_key, perts, ls.resolve_perturbation, "core_last_pert")],
        key=find_key,
        placeholder="e.g. ints-1 > limd2",
    )
    perturbation = c2.selectbox(
        f"Perturbation p ({kind})",
        perts,
        key=pert_key,
        help=f"{len(perts):,} perturbations in {dataset} ({ls.cell_line}); type to search, or use the "
        "search box for any spelling.",
    )
    st.session_state["core_last_pert"] = perturbation
    words = wording.outcome
    gene_list, gene_labels = load.gene_picker(dataset, task, perturbation, words)
    if not gene_list:
        st.warning(f"No gene has a label under {perturbation} in {dataset}; pick another perturbation.")
        st.stop()
    gene_key = f"core_gene_{dataset}_{task}_{perturbation}"
    state.keep_choice(gene_key, gene_list, "core_last_gene")
    state.seed_choice(
        gene_key,
        seed.get("gene"),
        gene_list,
        ls.resolve_gene,
        f"gene with a label under {perturbation}",
    )
    if default and perturbation == default[0] and default[1] in gene_list:
        st.session_state.setdefault(gene_key, default[1])
    ui.name_search_targets(find_key, [(gene_key, gene_list, ls.resolve_gene, "core_last_gene")])
    gene = c3.selectbox(
        "Gene g",
        gene_list,
        format_func=gene_labels.__getitem__,
        key=gene_key,
        help="Genes with a label under this perturbation, test pairs first; the label is shown for reference "
        "only. CORE never uses the pair's own label, nor any test label, as evidence.",
    )
    st.session_state["core_last_gene"] = gene

crossline = False
if dataset.startswith("perturbqa-"):
    state.seed_flag(seed, "crossline", "core_crossline")
    crossline = st.toggle(
        "Cross-line evidence (core_voting_crossline)",
        key="core_crossline",
        help="Add two kinds of evidence from the other PerturbQA lines' TRAINING labels: knock-downs whose "
        "responses there agree with p's (co_response), and p itself measured there (same_knockdown: "
        "did g respond to p in that line?). Drawn in purple; never a test label of any line.",
    )
elif seed.get("crossline"):
    state.link_warning(f"crossline: cross-line evidence is for the PerturbQA lines only, not {dataset}")
state.share_link(
    dataset=dataset, task=task, perturbation=perturbation, gene=gene, crossline="1" if crossline else None
)
with ui.guard("collecting evidence"):
    ex = explain(dataset, task, perturbation, gene, crossline)

# --------------------------------------------------------------------------- render
if ex.note:
    st.caption(f"{ex.note[0].upper()}{ex.note[1:]}.")
left, right = st.columns([1.7, 1])


@st.fragment
def graph_panel(ex: evidence.EvidenceExplanation) -> None:
    """The interactive graph and the selected node's path; a click reruns only this fragment."""
    with ui.guard("drawing the evidence graph", stop=False):
        _graph_panel(ex)


def _graph_panel(ex: evidence.EvidenceExplanation) -> None:
    sel_key = f"core_node_{dataset}_{task}_{perturbation}_{gene}"
    graph = ex.graph
    names = {n.id: f"{n.name} ({n.role})" for n in graph.nodes}
    if len(names) <= 2:
        st.info(
            f"No related perturbation of {perturbation} reaches {gene} through the knowledge graph, so there is "
            "nothing to draw: the score is the gene's training frequency (the prior)."
        )
        return
    sides = {"positive": ex.positive, "negative": ex.negative, "unmeasured": ex.unmeasured}
    largest = max(len(v) for v in sides.values())
    per_side = egf.DEFAULT_PER_SIDE
    if largest > egf.DEFAULT_PER_SIDE:
        per_side = st.slider(
            "Strongest items drawn per side",
            3,
            min(30, largest),
            egf.DEFAULT_PER_SIDE,
            key="core_per_side",
            help="By vote weight. Every item is in the table below the graph.",
        )
    kept, _ = egf.focus(sides, per_side)
    counts = {"positive": ex.n_positive, "negative": ex.n_negative, "unmeasured": ex.n_unmeasured}
    st.caption(
        "Drawn: "
        + "; ".join(f"{len(kept[s])} of {counts[s]:,} {s}" for s in egf.SIDES)
        + ". Node size and the width of the edge to g grow with the item's vote weight."
    )
    ids = [it.node for s in egf.SIDES for it in kept[s]]
    ends = [n.id for n in graph.nodes if n.role in ("query", "gene")]
    ids = [i for i in dict.fromkeys([*ids, *ends]) if i in names]
    event = ui.chart(
        ev.graph_figure(dataset, task, perturbation, gene, crossline, per_side),
        name=f"evidence_graph_{dataset}_{perturbation}_{gene}",
        on_select="rerun",
        selection_mode="points",
        key=f"chart_{sel_key}_{per_side}",
        config={"scrollZoom": False},
    )
    points: list[Any] = (event.selection.points if event is not None else None) or []
    clicked = next((str(p["customdata"]) for p in points if str(p.get("customdata")) in names), None)
    last_key = f"{sel_key}_last_click"
    if clicked and clicked != st.session_state.get(last_key):
        if clicked not in ids:
            ids.append(clicked)
        st.session_state[sel_key] = clicked
    st.session_state[last_key] = clicked
    if st.session_state.get(sel_key) not in ids:
        st.session_state[sel_key] = ids[0]
    node_id = st.selectbox(
        "Inspect a node (or click one in the graph)", ids, format_func=names.__getitem__, key=sel_key
    )
    node = graph.node(node_id)
    items = ev.cached_items(dataset, task, perturbation, gene, crossline)
    hit = items[items["node"] == node_id]
    if hit.empty:
        st.caption(f"**{node.name}**: {node.kind} node, {node.role or 'path node'}.")
        return
    row = hit.iloc[0]
    side = str(row["side"])
    outcome = {
        "positive": f"{gene} {words[0]} under it in training",
        "negative": f"{gene}: {words[1]} under it in training",
        "unmeasured": f"{gene} was not measured under it",
    }[side]
    cross = (
        f" <span style='color:{figs.CROSSLINE}'>(cross-line evidence: other lines' training labels)</span>"
        if row["kind"] == "cross-line"
        else ""
    )
    st.markdown(
        f"<span style='color:{figs.SIDE_COLOURS[side]};font-weight:600'>● {side}</span> **{node.name}**: "
        f"{outcome}; related by *{row['relation_label']}* (weight {figs.fmt(row['weight'], 3)}){cross}",
        unsafe_allow_html=True,
    )
    st.code(row["path_text"], language=None, wrap_lines=True)
    if row["path_detail"]:
        st.caption(row["path_detail"])


with left:
    p_links = (
        links.gene_links(perturbation)
        if ls.perturbation_kind == "knockdown"
        else links.drug_links(
            perturbation, **links.drug_ids(load.drugs().table, [perturbation]).get(perturbation, {})
        )
    )
    st.markdown(f"**{perturbation} → {gene}** in {ls.cell_line}")
    st.caption(
        f"{perturbation}: {links.markdown(p_links)} · {gene}: {links.markdown(links.gene_links(gene))}"
    )
    graph_panel(ex)

with right:
    st.markdown("**Vote against the prior**")
    vote_fig, mass_fig = ev.vote_figures(dataset, task, perturbation, gene, crossline)
    ui.chart(
        vote_fig,
        name=f"core_vote_{dataset}_{perturbation}_{gene}",
        key="core_vote",
        config={"displayModeBar": False},
    )
    mass = ex.mass
    u = float(mass.get("unmeasured_weight", 0.0))
    st.markdown("**Evidence mass behind the vote** (relation weight summed per side)")
    ui.chart(
        mass_fig,
        name=f"core_mass_{dataset}_{perturbation}_{gene}",
        key="core_mass",
        config={"displayModeBar": False},
    )
    gf = ex.gene_frequency
    p_m, n_m, u_m = mass["positive"], mass["negative"], mass["unmeasured"]
    st.caption(
        f"Vote = P / (P + N + u·U) = {figs.fmt(p_m)} / ({figs.fmt(p_m)} + {figs.fmt(n_m)} + {u:g} × "
        f"{figs.fmt(u_m)}) = {figs.fmt(ex.vote)}: an unmeasured relative counts as {u:g} of a negative vote, "
        "so even one positive and no negative gives less than 1. "
        f"Prior: {gene} {words[0]} under {gf.n_responded} of {gf.n_measured} training perturbations (shrunk "
        f"toward the global rate). Score: the vote moves the prior on the log-odds scale, shrunk toward it "
        f"with weight m = {figs.fmt(mass.get('shrinkage'), 2)} when the mass P + N + u·U is small."
    )
    c1, c2 = st.columns(2)
    c1.metric(
        "Evidence (+ / −)",
        f"{ex.n_positive:,} / {ex.n_negative:,}",
        f"{ex.n_unmeasured:,} unmeasured",
        delta_color="off",
        delta_arrow="off",
        border=True,
        help="Related TRAINING perturbations whose outcome on g is positive (+), negative (−), or unknown "
        "(unmeasured).",
    )
    c2.metric(
        "True label",
        "–" if ex.label is None else wording.truth[ex.label],
        f"{ex.split or 'unlabelled'} pair",
        delta_color="off",
        delta_arrow="off",
        border=True,
        help="The pair's own label and split, for reference: it is never used as evidence.",
    )
    c3, c4 = st.columns(2)
    c3.metric(
        "Final score",
        figs.fmt(ex.score),
        border=True,
        help="CORE-Voting probability that g " + words[0] + " under p.",
    )
    c4.metric(
        "Gene AUROC",
        figs.fmt(ex.gene_auroc),
        f"{ex.gene_auroc_n} test perts",
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
        runs: dict[tuple, Any] = st.session_state.setdefault(REASONING_KEY, {})
        rkey = (dataset, task, perturbation, gene, settings.llm_base_url, settings.llm_model)
        if st.button(f"Ask {settings.llm_model} to weigh this evidence", icon=":material/smart_toy:"):
            with st.spinner(f"Asking {settings.llm_model}…"):
                out = ui.call(ask_core_reasoning, dataset, task, perturbation, gene, action="asking the LLM")
            if out is not None:
                runs[rkey] = out
        ans = runs.get(rkey)
        if ans is not None:
            if ans.fallback:
                st.error(
                    f"No usable answer ({ans.error or 'unknown error'}); the score falls back to "
                    f"CORE-Voting ({figs.fmt(ans.fallback_score)}). Check the endpoint on **Settings**.",
                    icon=":material/cloud_off:",
                )
            else:
                st.metric(
                    "LLM probability",
                    figs.fmt(ans.probability),
                    "cache hit" if ans.cache_hit else "cache miss",
                    delta_color="off",
                    delta_arrow="off",
                    border=True,
                    help=f"The model's probability that g {words[0]} under p, given the evidence above.",
                )
            if ans.rationale:
                st.caption(f"Rationale: {ans.rationale}")
            with st.expander(f"Prompt (hash {ans.prompt_hash}) and raw answer"):
                ui.prompt_messages(ans.prompt)
                st.caption("ANSWER")
                st.code(str(ans.raw or "(no answer)"), language=None, wrap_lines=True)

st.markdown(
    f"**Evidence items**: all {ex.n_positive:,} positive and {ex.n_negative:,} negative, and the strongest "
    f"{len(ex.unmeasured)} of {ex.n_unmeasured:,} unmeasured, strongest first within a side"
)
shown, shown_data = ev.shown_items(dataset, task, perturbation, gene, crossline, ls.perturbation_kind)
site = ev.link_site(ls.perturbation_kind)
st.dataframe(
    shown_data,
    hide_index=True,
    width="stretch",
    height=min(400, 38 + 35 * max(1, len(shown))),
    column_config={
        "side": st.column_config.TextColumn(
            "side", help="positive: g responded under it; negative: it did not; unmeasured: g not measured"
        ),
        "kind": st.column_config.TextColumn("kind", width="small"),
        "relation_label": st.column_config.TextColumn(
            "relation", help="The strongest relation linking it to p."
        ),
        "weight": st.column_config.NumberColumn(
            "relation weight",
            format="%.3f",
            help="Its relation mass (summed over the relations linking it to p).",
        ),
        "vote_weight": st.column_config.NumberColumn(
            "vote weight",
            format="%.4f",
            help="What it adds to the vote: its relation weight, times u for an unmeasured relative.",
        ),
        "path_text": st.column_config.TextColumn("path in the knowledge graph", width="large"),
        "path_detail": st.column_config.TextColumn("detail"),
        site: links.link_column(site, f"The related perturbation on {site}"),
    },
)
ui.csv_download(
    shown.drop(columns=site),
    name=f"core_evidence_{dataset}_{task}_{perturbation}_{gene}",
    label="Evidence items (CSV)",
)
if ls.perturbation_kind == "drug":
    drug_names = [perturbation, *shown["perturbation"].head(60)]
    annotations = load.drug_annotations(tuple(dict.fromkeys(drug_names)))
    with st.expander(f"Where each drug annotation comes from ({len(annotations)} drugs)", expanded=False):
        st.caption(
            "Targets and mechanisms relate drugs in the graph (shared target, shared mechanism). Each row says "
            "which table the drug's annotation comes from, so you can judge it: Tahoe's drug metadata table, "
            "the LINCS compound annotations, or none matched."
        )
        st.dataframe(annotations, hide_index=True, width="stretch")
ui.json_download(
    ev.explanation_json(dataset, task, perturbation, gene, crossline),
    f"core_{dataset}_{task}_{perturbation}_{gene}.json",
)
ui.cli_hint(
    f'python -m perturb_core core explain --dataset {dataset} --perturbation "{perturbation}" --gene {gene} '
    f"--task {task} --json"
)
