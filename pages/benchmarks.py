"""Benchmarks: run an LGR regime or a CORE task with a progress bar; tables with intervals, plots, downloads."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import streamlit as st

from pages import _figures as figs
from pages import _loaders as load
from pages import _state as state
from pages import _widgets as ui
from perturb_core.data.registry import TASK_SPECS, TASKS
from perturb_core.evaluate.core import CORE_METHODS, COREResult, evaluate_core
from perturb_core.evaluate.lgr import LGR_METHODS, QUERY_METRICS, LGRResult, evaluate_lgr
from perturb_core.metrics import CLASSIFICATION_METRICS, METRICS
from perturb_core.retrieval import (
    AGGREGATION_LABELS,
    AGGREGATIONS,
    DEFAULT_AGGREGATION,
    DEFAULT_K,
    REGIME_LABELS,
    REGIMES,
)
from perturb_core.spec import MethodSpec

ui.header(
    "Benchmarks",
    "Measure methods on held-out real data: LGR regimes (regression of deltas) and CORE tasks (gene response).",
)
ui.require_data()

#: Scores with a bar chart each; counts (pairs, genes) are plain columns of the table.
CORE_SCORES = [m for m in CLASSIFICATION_METRICS if not METRICS[m].count]
CORE_COUNTS = [m for m in CLASSIFICATION_METRICS if METRICS[m].count]
LGR_KEY, CORE_KEY = "bench_lgr", "bench_core"
#: The aggregation radio's first option: each regime's default (DEFAULT_AGGREGATION).
REGIME_DEFAULT = "regime default"
LGR_FINDINGS = (
    "**What the full runs show** (tahoe, seed 0, all test queries; docs/BENCHMARKS.md): for an **unseen cell "
    "line** the two-way **additive** baseline (drug mean over other lines + the line's pool mean − grand mean) "
    "reaches Pearson r 0.845, above `transcriptome_knn` with the paper's plain mean (0.776) and above the "
    "plain-mean oracle (0.791); **residual aggregation** (additive + the neighbours' mean residual) lifts "
    "`transcriptome_knn` to 0.880 (k and weights chosen by CV on training lines). The fair reference for plain retrieval there is `pool_mean` (0.631), "
    "not `cell_mean` (0.431, the global mean). For an **unseen drug** nothing here beats `cell_mean` by a "
    "meaningful margin: retrieval does not help."
)


def interval_table(summary: pd.DataFrame, metrics: Sequence[str], methods: Sequence[str]) -> pd.DataFrame:
    """method x metric cells like ``0.512 [0.490, 0.533]`` from a result's long ``summary``, labelled columns."""
    long = summary[summary["metric"].isin(metrics)]
    cell = long.apply(
        lambda r: (
            figs.fmt(r["mean"])
            + ("" if pd.isna(r["ci_low"]) else f" [{figs.fmt(r['ci_low'])}, {figs.fmt(r['ci_high'])}]")
        ),
        axis=1,
    )
    wide = long.assign(cell=cell).pivot(index="method", columns="metric", values="cell")
    wide = wide.reindex(index=list(methods), columns=[m for m in metrics if m in wide.columns])
    return wide.rename(columns=ui.metric_label)


def metric_bars(summary: pd.DataFrame, metrics: Sequence[str], key: str) -> None:
    """One bar chart per metric with 95% interval error bars, three per row, with its definition and unit."""
    present = [m for m in metrics if m in set(summary["metric"])]
    colours = figs.method_colours(list(dict.fromkeys(summary["method"])))
    cols = st.columns(3)
    for i, m in enumerate(present):
        spec = METRICS[m]
        with cols[i % 3]:
            direction = "" if spec.higher_is_better is None else f" ({spec.better})"
            st.markdown(f"**{spec.label}**{direction}")
            ui.chart(
                figs.metric_bar(summary[summary["metric"] == m], colours), name=f"{key}_{m}", key=f"{key}_{m}"
            )
            st.caption(f"{spec.definition}  \nUnit: {spec.unit}.")


def identical_to(
    per_row: pd.DataFrame, key: Sequence[str], values: Sequence[str], methods: Sequence[str]
) -> dict[str, str]:
    """Method -> the earlier method whose rows are identical to its own (e.g. ``drug_mean`` falling back to
    ``cell_mean`` for every unseen drug); methods without a twin are left out."""
    present = [v for v in values if v in per_row.columns]
    shape: dict[str, tuple] = {}
    for m, rows in per_row.groupby("method", sort=False):
        part = rows.sort_values(list(key))
        shape[str(m)] = (
            tuple(part[list(key)].astype(str).agg("|".join, axis=1)),
            part[present].round(10).to_numpy().tobytes(),
        )
    out: dict[str, str] = {}
    for i, m in enumerate(methods):
        twin = next((o for o in methods[:i] if o in shape and shape.get(m) == shape[o]), None)
        if twin:
            out[m] = twin
    return out


def method_choice(specs: Mapping[str, MethodSpec], default: Sequence[str], key: str) -> list[str]:
    """Multiselect of methods; LLM methods only when an endpoint is set (the caption says why)."""
    configured = state.settings().llm_configured
    options = [m for m, spec in specs.items() if configured or not spec.needs_llm]
    chosen = st.multiselect(
        "Methods",
        options,
        default=[m for m in default if m in options],
        format_func=lambda m: f"{m}: {specs[m].label}",
        key=key,
    )
    llm_methods = [m for m, spec in specs.items() if spec.needs_llm]
    if not configured and llm_methods:
        st.caption(f"LLM methods ({', '.join(llm_methods)}) appear once an endpoint is set on Settings.")
    return chosen


def method_table(specs: Mapping[str, MethodSpec]) -> pd.DataFrame:
    """Method -> label and definition, for an expander."""
    return pd.DataFrame(
        {
            "method": list(specs),
            "label": [s.label for s in specs.values()],
            "definition": [s.definition for s in specs.values()],
        }
    )


# --------------------------------------------------------------------------- LGR
def lgr_tab() -> None:
    """Run an LGR regime and show its results."""
    dataset = state.signature_dataset()
    with st.form("lgr_form", border=True):
        c1, c2, c3, c4, c5 = st.columns([1.2, 1.1, 0.6, 0.6, 0.9])
        regime = c1.selectbox(
            "Regime",
            REGIMES,
            key="bench_lgr_regime",
            help="; ".join(REGIME_LABELS[r] for r in REGIMES) + ".",
        )
        aggregation = c2.selectbox(
            "Aggregation",
            (REGIME_DEFAULT, *AGGREGATIONS),
            key="bench_lgr_agg",
            help="; ".join(f"{a}: {AGGREGATION_LABELS[a]}" for a in AGGREGATIONS)
            + "; regime default: "
            + ", ".join(f"{r} → {a}" for r, a in DEFAULT_AGGREGATION.items())
            + ".",
        )
        k = c3.number_input("k", 1, 50, DEFAULT_K, key="bench_lgr_k", help="Neighbours per query.")
        seed = c4.number_input(
            "Seed",
            0,
            10_000,
            0,
            key="bench_lgr_seed",
            help="Seed of the split, subsample, random and bootstrap.",
        )
        max_queries = c5.number_input(
            "Max queries (0 = all)",
            0,
            100_000,
            60,
            step=20,
            key="bench_lgr_maxq",
            help="A seeded random subset of test pairs keeps a run short; full runs belong in bench/ or the CLI.",
        )
        t1, t2 = st.columns([1, 2])
        power = t1.number_input(
            "Similarity power p",
            0.0,
            16.0,
            0.0,
            step=1.0,
            key="bench_lgr_power",
            help="Weights s^p for selectors with a similarity (transcriptome r, Tanimoto, oracle r); 0 = uniform.",
        )
        tune = t2.checkbox(
            "Choose k and p by 4-fold CV on training lines/drugs",
            key="bench_lgr_tune",
            help="Per non-LLM selector; test pairs are used once, at the end (slower: 4 inner splits).",
        )
        default = [
            "cell_mean",
            "drug_mean",
            "pool_mean",
            "additive",
            "chem_knn",
            "pca_ridge",
            "kg_mechanism",
            "transcriptome_knn",
            "random",
            "oracle",
        ]
        chosen = method_choice(LGR_METHODS, default, "bench_lgr_methods")
        run = st.form_submit_button(f"Run on {dataset}", type="primary", icon=":material/play_arrow:")
    st.info(LGR_FINDINGS, icon=":material/insights:")
    with st.expander("What each method is"):
        st.dataframe(method_table(LGR_METHODS), hide_index=True, width="stretch")
    if run:
        if not chosen:
            st.error("Pick at least one method.")
        else:
            _, progress = ui.progress_bar(f"{regime} on {dataset}")
            with ui.guard(f"loading dataset {dataset}"):
                ds = load.signatures(dataset)
            res = ui.call(
                evaluate_lgr,
                ds,
                regime=regime,
                methods=chosen,
                k=int(k),
                seed=int(seed),
                aggregation=None if aggregation == REGIME_DEFAULT else aggregation,
                similarity_power=float(power),
                tune=bool(tune),
                progress=progress,
                max_queries=int(max_queries) or None,
                settings=state.settings(),
                action="running the LGR benchmark",
            )
            if res is not None:
                st.session_state[LGR_KEY] = res
    res = st.session_state.get(LGR_KEY)
    if isinstance(res, LGRResult):
        lgr_results(res)
    else:
        st.info("Choose a regime and methods, then press **Run**.", icon=":material/info:")


def llm_quality(stats: Mapping[str, Mapping[str, object]], subset: str | None) -> None:
    """How each LLM method's calls went (``evaluate --json``'s ``llm_stats``), if any LLM method ran."""
    if not stats:
        return
    rows = []
    for method, s in stats.items():
        formats = s.get("answer_format_used") or {}
        rows.append(
            {
                "method": method,
                "answered": s.get("answered_rate"),
                "parse failures": s.get("parse_failure_rate"),
                "out-of-pool names": s.get("out_of_pool_rate"),
                "mean k_used": s.get("mean_k_used"),
                "json / text / none": " / ".join(str(formats.get(f, 0)) for f in ("json", "text", "none")),
                "cache hits": s.get("cache_hits"),
                "prompt tokens": s.get("prompt_tokens"),
                "completion tokens": s.get("completion_tokens"),
                "wall time (s)": s.get("wall_time_s"),
            }
        )
    st.markdown("**How the LLM calls went**")
    st.caption(
        "Answered = calls that returned an answer / queries asked; parse failures = answers from which nothing "
        "usable was read / answered; out-of-pool names = names outside the candidate pool / all names given; "
        "answers by format (json / text / none = unanswered). Tokens as counted by the server. Unanswered or "
        "unreadable queries are predicted by the labelled fallback, never shown as the LLM's."
        + (f" Queries: {subset}." if subset else "")
    )
    pct = st.column_config.NumberColumn(format="percent")
    st.dataframe(
        pd.DataFrame(rows).set_index("method"),
        width="stretch",
        column_config={"answered": pct, "parse failures": pct, "out-of-pool names": pct},
    )


def lgr_results(res: LGRResult) -> None:
    """The table with intervals, bars, per-query rows, downloads and the CLI twin of one LGR run."""
    methods = list(res.methods)
    wide = res.table()
    st.subheader(f"{res.regime} on {res.dataset}")
    st.caption(
        f"k = {res.k}, {res.aggregation} aggregation ({AGGREGATION_LABELS[res.aggregation]}), "
        f"similarity power {res.similarity_power:g}, seed {res.seed}, split `{res.split.split_id}`, "
        f"{int(wide['n_queries'].max())} queries per method. Mean over queries with bootstrap 95% intervals "
        f"({res.n_boot} resamples); metrics on the {res.n_eval_genes:,} most variable training genes."
    )
    if res.regime == "unseen-drug":
        st.warning(
            "Unseen drug: in our full runs no retrieval method beats `cell_mean` by a meaningful margin.",
            icon=":material/info:",
        )
    if res.tuning:
        st.markdown("**Hyper-parameters chosen by cross-validation on training data only**")
        st.dataframe(res.tuning_table(), hide_index=True, width="stretch")
    table = interval_table(res.summary, QUERY_METRICS, methods)
    table[ui.metric_label("mean_k_used")] = [figs.fmt(v, 1) for v in wide["mean_k_used"]]
    problems = res.per_query.groupby("method", sort=False)[["fallback", "error"]].count().reindex(methods)
    table["fallbacks"] = problems["fallback"]
    table["failed LLM calls"] = problems["error"]
    twins = identical_to(res.per_query, ("cell_line", "drug"), QUERY_METRICS, methods)
    table["note"] = [
        f"identical to {twins[m]} on every query (a fallback)" if m in twins else "" for m in methods
    ]
    # two tables, so that no column falls off the right edge at 1400 px
    first = [ui.metric_label(m) for m in ("pearson", "cosine", "sign_accuracy", "r2", "r2_pred")]
    st.dataframe(table[[c for c in first if c in table.columns] + ["note"]], width="stretch")
    st.dataframe(table.drop(columns=[c for c in first if c in table.columns]), width="stretch")
    doc = res.to_dict()
    llm_quality(doc.get("llm_stats") or {}, doc.get("subset"))
    metric_bars(res.summary, QUERY_METRICS, "lgr_bar")
    with st.expander(f"Per-query results ({len(res.per_query):,} rows)"):
        st.dataframe(res.per_query, hide_index=True, width="stretch", height=300)
    ui.table_downloads(
        f"lgr_{res.dataset}_{res.regime}",
        doc,
        {"summary": res.summary, "per_query": res.per_query},
    )
    ui.cli_hint(
        f"python -m perturb_core lgr evaluate --dataset {res.dataset} --regime {res.regime} "
        f"--methods {','.join(methods)} --k {res.k} --seed {res.seed} "
        f"--aggregation {res.aggregation}"
        + (f" --similarity-power {res.similarity_power:g}" if res.similarity_power else "")
        + (" --tune" if res.tuning else "")
        + (f" --max-queries {res.max_queries}" if res.max_queries else "")
        + " --json"
    )


# --------------------------------------------------------------------------- CORE
def core_tab() -> None:
    """Run a CORE task and show its results."""
    dataset = state.label_dataset()
    with st.form("core_form", border=True):
        c1, c2, c3 = st.columns([1.2, 1, 0.6])
        task = c1.selectbox("Task", TASKS, format_func=lambda t: TASK_SPECS[t].label, key="bench_core_task")
        max_pairs = c2.number_input(
            "Max test pairs (0 = all)",
            0,
            1_000_000,
            3000,
            step=500,
            key="bench_core_maxp",
            help="A seeded sample of whole genes with at most this many test pairs keeps a run short "
            "(each sampled gene keeps all its test perturbations, so its per-gene AUROC stays defined).",
        )
        seed = c3.number_input(
            "Seed", 0, 10_000, 0, key="bench_core_seed", help="Sample, random and bootstrap seed."
        )
        chosen = method_choice(
            CORE_METHODS, ["gene_frequency", "core_voting", "random"], "bench_core_methods"
        )
        run = st.form_submit_button(f"Run on {dataset}", type="primary", icon=":material/play_arrow:")
    with st.expander("What each method is"):
        st.dataframe(method_table(CORE_METHODS), hide_index=True, width="stretch")
    if run:
        if not chosen:
            st.error("Pick at least one method.")
        else:
            bar, progress = ui.progress_bar(f"{task} on {dataset}")
            with ui.guard(f"loading labels {dataset}"):
                ls = load.labels(dataset, task)
                g = load.graph()
            res = ui.call(
                evaluate_core,
                ls,
                g,
                methods=chosen,
                seed=int(seed),
                progress=progress,
                max_pairs=int(max_pairs) or None,
                settings=state.settings(),
                action="running the CORE benchmark",
            )
            if res is not None:
                bar.progress(1.0, text=f"{task} on {dataset}: done")  # type: ignore[attr-defined]
                st.session_state[CORE_KEY] = res
    res = st.session_state.get(CORE_KEY)
    if isinstance(res, COREResult):
        core_results(res)
    else:
        st.info("Choose a task and methods, then press **Run**.", icon=":material/info:")


def core_results(res: COREResult) -> None:
    """The table with intervals, bars, calibration, per-gene AUROC, downloads and the CLI twin of one CORE run."""
    methods = list(res.methods)
    wide = res.table()
    st.subheader(f"{TASK_SPECS[res.task].title} on {res.dataset}")
    st.caption(
        f"{int(wide['n_pairs'].max()):,} of {res.n_test_pairs:,} test pairs (seed {res.seed}); bootstrap 95% "
        f"intervals ({res.n_boot} resamples) for AUROC, AUPRC, per-gene AUROC and Brier; predicted positive rate "
        "at a 0.5 threshold. Aggregate AUROC rewards knowing which genes respond often; per-gene (macro) "
        "AUROC asks whether a method ranks perturbations within a gene: 0.5 there means it does not reason "
        "about the perturbation."
    )
    table = interval_table(res.summary, CORE_SCORES, methods)
    for m in CORE_COUNTS:
        table[ui.metric_label(m)] = wide[m].astype(int)
    llm_methods = [m for m in methods if CORE_METHODS[m].needs_llm]
    if llm_methods:
        fell_back = res.per_pair["fallback"].eq(True).groupby(res.per_pair["method"], sort=False).sum()
        table["LLM fallbacks"] = fell_back.reindex(methods).fillna(0).astype(int)
    twins = identical_to(res.per_pair, ("pert", "gene"), ("score",), methods)
    if twins:
        table["note"] = [f"identical scores to {twins[m]}" if m in twins else "" for m in methods]
    st.dataframe(table, width="stretch")
    doc = res.to_dict()
    llm_quality(doc.get("llm_stats") or {}, doc.get("subset"))
    metric_bars(res.summary, CORE_SCORES, "core_bar")
    colours = figs.method_colours(methods)
    c1, c2 = st.columns(2)
    with c1:
        st.markdown("**Calibration** (reliability curve; marker size = pairs in the bin)")
        ui.chart(
            figs.calibration_curve(res.reliability, colours),
            name=f"core_calibration_{res.dataset}_{res.task}",
            key="core_calibration",
        )
    with c2:
        st.markdown("**Per-gene AUROC** (one value per gene with both classes; 0.5 = chance)")
        ui.chart(
            figs.gene_auroc_histogram(res.per_gene, colours),
            name=f"core_gene_auroc_{res.dataset}_{res.task}",
            key="core_gene_hist",
        )
    with st.expander(f"Per-pair scores ({len(res.per_pair):,} rows)"):
        st.dataframe(res.per_pair.head(5000), hide_index=True, width="stretch", height=300)
    ui.table_downloads(
        f"core_{res.dataset}_{res.task}",
        doc,
        {
            "summary": res.summary,
            "per_gene": res.per_gene,
            "reliability": res.reliability,
            "per_pair": res.per_pair,
        },
    )
    ui.cli_hint(
        f"python -m perturb_core core evaluate --dataset {res.dataset} --task {res.task} "
        f"--methods {','.join(methods)} --seed {res.seed}"
        + (f" --max-pairs {res.max_pairs}" if res.max_pairs else "")
        + " --json"
    )


tab_lgr, tab_core = st.tabs(["LGR regime", "CORE task"])
with tab_lgr:
    lgr_tab()
with tab_core:
    core_tab()
