"""Evidence graph (CORE): contrastive knowledge-graph evidence for one (perturbation, gene) pair."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from pages import _shared as sh
from perturb_core import evidence, reasoning

sh.header(
    "Evidence graph",
    "CORE: does gene g respond to perturbation p? Related perturbations whose effect on g is known vote.",
)
sh.require_data()


TASKS = {"de": "DE: does g respond at all?", "dir": "direction: does g go up (among responders)?"}
OUTCOME_WORDS = {"de": ("responded", "no response"), "dir": ("up", "down")}
TRUTH_WORDS = {"de": ("not DE", "DE"), "dir": ("down", "up")}
#: role -> (legend label per task, colour, marker symbol, size); shapes differ as well as colours.
ROLE_STYLE: dict[str, dict] = {
    "query": {"label": "query perturbation p", "color": sh.QUERY, "symbol": "star", "size": 26},
    "gene": {"label": "gene g", "color": sh.ACCENT, "symbol": "hexagon", "size": 22},
    "positive": {
        "label": "positive: g {pos} under it (training)",
        "color": sh.POSITIVE,
        "symbol": "circle",
        "size": 15,
    },
    "negative": {
        "label": "negative: g {neg} under it (training)",
        "color": sh.NEGATIVE,
        "symbol": "diamond",
        "size": 15,
    },
    "unmeasured": {
        "label": "unmeasured: g not measured under it",
        "color": sh.UNMEASURED,
        "symbol": "circle-open",
        "size": 13,
    },
    "intermediate": {
        "label": "path node (gene, pathway, GO term…)",
        "color": "#C8CDD3",
        "symbol": "square",
        "size": 9,
    },
}
OUTCOME_EDGE = {"positive": sh.POSITIVE, "negative": sh.NEGATIVE}
REASONING_KEY = "core_reasoning_runs"
MAX_EDGE_LABELS = 90


@st.cache_data(
    max_entries=256, show_spinner="Collecting evidence (the first pair of a dataset fits CORE-Voting)…"
)
def explain(dataset: str, task: str, perturbation: str, gene: str) -> dict:
    """The explanation dict of one pair (cached per input)."""
    return evidence.explain(
        sh.labels(dataset, task), sh.graph(), perturbation=perturbation, gene=gene
    ).to_dict()


@st.cache_data(show_spinner=False)
def gene_options(dataset: str, task: str, perturbation: str) -> pd.DataFrame:
    """Genes with a label under this perturbation: test pairs first, positives first."""
    t = sh.labels(dataset, task).table
    sub = t[t["pert"] == perturbation][["gene", "label", "split"]].astype({"gene": str, "split": str})
    return sub.sort_values(["split", "label", "gene"], ascending=[True, False, True]).reset_index(drop=True)


def radial_layout(ex: dict) -> dict[str, tuple[float, float]]:
    """Deterministic radial layout: p in the centre, evidence on an outer ring, path nodes between.

    Measured evidence (positive, then negative) sits on the right half, facing g (placed
    outside the ring on the right); unmeasured evidence fills the left half. A path node sits
    on the inner ring at the mean angle of the evidence it leads to.
    """
    gdict = ex.get("graph") or {"nodes": [], "edges": []}
    roles = {str(n["id"]): str(n.get("role") or "intermediate") for n in gdict["nodes"]}
    pos: dict[str, tuple[float, float]] = {}
    query = next((i for i, r in roles.items() if r == "query"), None)
    gene = next((i for i, r in roles.items() if r == "gene"), None)
    if query:
        pos[query] = (0.0, 0.0)
    if gene:
        pos[gene] = (2.9, 0.0)
    measured = [i for r in ("positive", "negative") for i, rr in roles.items() if rr == r]
    unmeasured = [i for i, r in roles.items() if r == "unmeasured"]
    n_m, n_u = len(measured), len(unmeasured)
    span_m = np.pi if n_u else 2 * np.pi * (1 - 1 / max(n_m, 1))
    span_u = (2 * np.pi - span_m) if n_m else 2 * np.pi * (1 - 1 / max(n_u, 1))
    angles: dict[str, float] = {}
    for ids, centre, span in ((measured, 0.0, span_m * 0.9), (unmeasured, np.pi, span_u * 0.9)):
        for k, i in enumerate(ids):
            angles[i] = centre + (span * (k / (len(ids) - 1) - 0.5) if len(ids) > 1 else 0.0)
    for i, a in angles.items():
        pos[i] = (2.0 * float(np.cos(a)), 2.0 * float(np.sin(a)))
    # path nodes: mean angle of the evidence they lead to (through any chain of path nodes)
    nbrs: dict[str, set[str]] = {}
    for e in gdict["edges"]:
        a, b = str(e["source"]), str(e["target"])
        nbrs.setdefault(a, set()).add(b)
        nbrs.setdefault(b, set()).add(a)
    inner = [i for i, r in roles.items() if r == "intermediate"]
    for k, i in enumerate(inner):
        seen, frontier, reach = {i}, [i], []
        while frontier:
            nxt = []
            for x in frontier:
                for y in nbrs.get(x, ()):
                    if y in seen or y in (query, gene):
                        continue
                    seen.add(y)
                    (reach if y in angles else nxt).append(y)
            frontier = [y for y in nxt if roles.get(y) == "intermediate"]
        if reach:
            a = float(np.angle(np.mean([np.exp(1j * angles[y]) for y in reach])))
        else:
            a = 2 * np.pi * k / max(len(inner), 1)
        radius = 1.0 + 0.18 * (k % 3)  # stagger to keep labels apart
        pos[i] = (radius * float(np.cos(a)), radius * float(np.sin(a)))
    return pos


def graph_figure(ex: dict) -> go.Figure:
    """The evidence subgraph as a plotly figure (node ids in customdata, for click selection).

    The figure depends on the explanation only: Streamlit keys a chart's selection state by
    its content, so a figure that changed with the selected node would drop the next click.
    """
    gdict = ex.get("graph") or {"nodes": [], "edges": []}
    nodes = {str(n["id"]): n for n in gdict["nodes"]}
    edges = list(
        dict.fromkeys(
            (str(e["source"]), str(e["target"]), str(e.get("relation", "")))
            for e in gdict["edges"]
            if str(e["source"]) in nodes and str(e["target"]) in nodes
        )
    )
    query = next((i for i, n in nodes.items() if n.get("role") == "query"), next(iter(nodes), ""))
    gene = next((i for i, n in nodes.items() if n.get("role") == "gene"), "")
    pos = radial_layout(ex)
    words = OUTCOME_WORDS.get(ex.get("task", "de"), OUTCOME_WORDS["de"])
    fig = go.Figure()
    # relation edges (grey, labelled) and outcome edges to g (coloured by outcome, unlabelled)
    groups: dict[str, list[tuple[str, str, str]]] = {"relation": [], "positive": [], "negative": []}
    for s, t, rel in edges:
        if t == gene and nodes[s].get("role") in OUTCOME_EDGE:
            groups[str(nodes[s]["role"])].append((s, t, rel))
        else:
            groups["relation"].append((s, t, rel))
    for name, group in groups.items():
        if not group:
            continue
        xs: list[float | None] = []
        ys: list[float | None] = []
        for s, t, _ in group:
            xs += [pos[s][0], pos[t][0], None]
            ys += [pos[s][1], pos[t][1], None]
        colour = OUTCOME_EDGE.get(name, "#B0B7C0")
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines",
                line={
                    "color": colour,
                    "width": 1 if name == "relation" else 1.5,
                    "dash": "solid" if name == "relation" else "dot",
                },
                hoverinfo="skip",
                showlegend=False,
            )
        )
    rel_edges = groups["relation"]
    first_hop = [e for e in rel_edges if query in (e[0], e[1])]
    fig.add_trace(  # every relation edge is hoverable at its midpoint
        go.Scatter(
            x=[(pos[s][0] + pos[t][0]) / 2 for s, t, _ in rel_edges],
            y=[(pos[s][1] + pos[t][1]) / 2 for s, t, _ in rel_edges],
            mode="markers",
            text=[r for _, _, r in rel_edges],
            marker={"size": 4, "color": "#B0B7C0"},
            hovertemplate="%{text}<extra>relation</extra>",
            showlegend=False,
        )
    )
    if len(first_hop) <= MAX_EDGE_LABELS:  # label the edges leaving p (later hops repeat the relation)
        fig.add_trace(
            go.Scatter(
                x=[pos[s][0] * 0.55 + pos[t][0] * 0.45 for s, t, _ in first_hop],
                y=[pos[s][1] * 0.55 + pos[t][1] * 0.45 for s, t, _ in first_hop],
                mode="text",
                text=[r.replace("_", " ") for _, _, r in first_hop],
                textfont={"size": 9, "color": "#5A6270"},
                hoverinfo="skip",
                showlegend=False,
            )
        )
    for role, style in ROLE_STYLE.items():
        ids = [
            i
            for i, n in nodes.items()
            if (n.get("role") if n.get("role") in ROLE_STYLE else "intermediate") == role
        ]
        if not ids:
            continue
        label = style["label"].format(
            pos=words[0], neg=words[1] if words[1] != "no response" else "did not respond"
        )
        show_text = role != "intermediate" or len(nodes) <= 40
        fig.add_trace(
            go.Scatter(
                x=[pos[i][0] for i in ids],
                y=[pos[i][1] for i in ids],
                mode="markers+text" if show_text else "markers",
                text=[str(nodes[i].get("name", i))[:40] for i in ids],
                textposition="top center",
                textfont={"size": 11 if role != "intermediate" else 9},
                customdata=ids,
                marker={
                    "color": style["color"],
                    "symbol": style["symbol"],
                    "size": style["size"],
                    "line": {"width": 1, "color": "#1B1F24"},
                },
                name=label,
                hovertemplate="<b>%{text}</b><br>" + label + "<br>%{customdata}<extra></extra>",
            )
        )
    sh.plotly_layout(
        fig,
        height=580,
        showlegend=True,
        legend={"orientation": "h", "y": -0.02, "x": 0, "font": {"size": 12}},
        xaxis={"visible": False},
        yaxis={"visible": False, "scaleanchor": "x", "scaleratio": 1},
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        clickmode="event+select",
    )
    return fig


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

    labels, graph = sh.labels(dataset, task), sh.graph()
    settings = sh.settings()
    pairs = pd.DataFrame({"pert": [perturbation], "gene": [gene]})
    budget = reasoning.DEFAULT_BUDGET
    row = reasoning.core_reasoning(labels, graph, pairs, llm=LLM.from_settings(settings), budget=budget)
    return row.iloc[0].to_dict()  # includes the prompt exactly as sent


# --------------------------------------------------------------------------- inputs
dataset = sh.label_dataset()
seed = sh.query_seed("evidence")
if seed.get("task") in TASKS:
    st.session_state["core_task"] = seed["task"]
with st.container(border=True):
    c1, c2, c3 = st.columns([1, 1.2, 1.2])
    task = c1.radio(
        "Task", list(TASKS), format_func=TASKS.get, key="core_task", help="Which label to predict."
    )
    with sh.guard(f"loading labels {dataset}"):
        ls = sh.labels(dataset, task)
    perts = ls.perturbations
    kind = "knocked-down gene" if ls.perturbation_kind == "knockdown" else "drug"
    pert_key = f"core_pert_{dataset}_{task}"
    sh.seed_choice(pert_key, seed.get("perturbation"), perts, ls.resolve_perturbation, "perturbation")
    perturbation = c2.selectbox(
        f"Perturbation p ({kind})",
        perts,
        key=pert_key,
        help=f"{len(perts):,} perturbations in {dataset} ({ls.cell_line}); type to search.",
    )
    opts = gene_options(dataset, task, perturbation)
    if opts.empty:
        st.warning(f"No gene has a label under {perturbation} in {dataset}; pick another perturbation.")
        st.stop()
    words = OUTCOME_WORDS[task]
    fmt = {
        r.gene: f"{r.gene}  ({words[0] if r.label else words[1]}, {r.split})"
        for r in opts.itertuples(index=False)
    }
    gene_key = f"core_gene_{dataset}_{task}_{perturbation}"
    sh.seed_choice(
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

sh.share_link(dataset=dataset, task=task, perturbation=perturbation, gene=gene)
with sh.guard("collecting evidence"):
    ex = explain(dataset, task, perturbation, gene)

# --------------------------------------------------------------------------- render
if ex.get("note"):
    st.caption(f"{ex['note'][0].upper()}{ex['note'][1:]}.")
left, right = st.columns([1.7, 1])


@st.fragment
def graph_panel(ex: dict) -> None:
    """The interactive graph and the selected node's path; a click reruns only this fragment."""
    with sh.guard("drawing the evidence graph", stop=False):
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
        graph_figure(ex),
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
    colour = {"positive": sh.POSITIVE, "negative": sh.NEGATIVE}.get(side, sh.UNMEASURED)
    outcome = {
        "positive": f"{gene} {words[0]} under it in training",
        "negative": f"{gene}: {words[1]} under it in training",
        "unmeasured": f"{gene} was not measured under it",
    }[side]
    st.markdown(
        f"<span style='color:{colour};font-weight:600'>● {side}</span> **{row['perturbation']}**: {outcome}; "
        f"related by *{row.get('relation_label', row.get('relation', ''))}* (weight {sh.fmt(row.get('weight'), 3)})",
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
    vals = [ex.get("prior"), ex.get("vote"), ex.get("score")]
    fig = go.Figure(
        go.Bar(
            x=[0 if v is None else v for v in vals],
            y=["gene-frequency prior", "evidence vote", "final score"],
            orientation="h",
            marker_color=[sh.UNMEASURED, sh.POSITIVE, sh.ACCENT],
            text=[sh.fmt(v) for v in vals],
            textposition="outside",
            hovertemplate="%{y}: %{x:.3f}<extra></extra>",
        )
    )
    sh.plotly_layout(
        fig,
        height=200,
        xaxis={"range": [0, 1.18], "title": f"P(g {words[0]})"},
        yaxis={"autorange": "reversed"},
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
    )
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
        sh.fmt(ex.get("score")),
        border=True,
        help="CORE-Voting probability that g " + words[0] + " under p.",
    )
    c4.metric(
        "Gene AUROC",
        sh.fmt(ex.get("gene_auroc")),
        f"{ex.get('gene_auroc_n', 0)} test perts",
        delta_color="off",
        delta_arrow="off",
        border=True,
        help="AUROC of CORE-Voting over this gene's test perturbations (0.5 = chance; the gene-frequency "
        "prior is 0.5 by construction). – when the gene lacks one of the classes in test.",
    )

    settings = sh.settings()
    st.markdown("**CORE-Reasoning (LLM)**")
    if not settings.llm_configured:
        st.caption("Needs an LLM endpoint (set one on **Settings**); CORE-Voting above needs none.")
    else:
        runs: dict = st.session_state.setdefault(REASONING_KEY, {})
        rkey = (dataset, task, perturbation, gene, settings.llm_base_url, settings.llm_model)
        if st.button(f"Ask {settings.llm_model} to weigh this evidence", icon=":material/smart_toy:"):
            with st.spinner(f"Asking {settings.llm_model}…"):
                out = sh.call(ask_core_reasoning, dataset, task, perturbation, gene, action="asking the LLM")
            if out is not None:
                runs[rkey] = out
        ans = runs.get(rkey)
        if ans:
            if ans.get("fallback"):
                st.error(
                    f"No usable answer ({ans.get('error') or 'unknown error'}); the score falls back to "
                    f"CORE-Voting ({sh.fmt(ans.get('fallback_score'))}). Check the endpoint on **Settings**.",
                    icon=":material/cloud_off:",
                )
            else:
                st.metric(
                    "LLM probability",
                    sh.fmt(ans.get("probability")),
                    "cache hit" if ans.get("cache_hit") else "cache miss",
                    delta_color="off",
                    delta_arrow="off",
                    border=True,
                    help=f"The model's probability that g {words[0]} under p, given the evidence above.",
                )
            if ans.get("rationale"):
                st.caption(f"Rationale: {ans['rationale']}")
            with st.expander(f"Prompt (hash {ans.get('prompt_hash', '')}) and raw answer"):
                for m in ans.get("prompt") or []:
                    st.caption(str(m.get("role", "")).upper())
                    st.code(str(m.get("content", "")), language=None, wrap_lines=True)
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
st.download_button(
    "Download this explanation (JSON)",
    sh.to_json(ex),
    file_name=f"core_{dataset}_{task}_{perturbation}_{gene}.json".replace(" ", "_").replace("/", "-"),
    mime="application/json",
    icon=":material/download:",
)
sh.cli_hint(
    f'python -m perturb_core core explain --dataset {dataset} --perturbation "{perturbation}" --gene {gene} '
    f"--task {task} --json"
)
