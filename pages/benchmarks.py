"""Benchmarks: run an LGR regime or a CORE task with a progress bar; tables with intervals, plots, downloads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from pages import _figures as figs
from pages import _loaders as load
from pages import _state as state
from pages import _widgets as ui
from perturb_core.evaluate import core as core_eval
from perturb_core.evaluate import lgr as lgr_eval

ui.header(
    "Benchmarks",
    "Measure methods on held-out real data: LGR regimes (regression of deltas) and CORE tasks (gene response).",
)
ui.require_data()

LGR_METRICS = ["pearson", "cosine", "mae", "mse", "sign_accuracy", "r2"]
CORE_METRICS = [
    "auroc",
    "auprc",
    "macro_gene_auroc",
    "brier",
    "predicted_positive_rate",
    "true_positive_rate",
]
LLM_METHODS = frozenset({"llm", "core_reasoning", "isolated_llm"})
REGIMES = ["unseen-drug", "unseen-cell-line", "open-world"]
LGR_KEY, CORE_KEY = "bench_lgr", "bench_core"


def long_summary(summary: pd.DataFrame) -> pd.DataFrame:
    """Summary as long rows ``method, metric, mean, ci_low, ci_high`` (accepts a wide method x metric table too)."""
    s = summary.reset_index() if "method" not in summary.columns else summary.copy()
    if "metric" not in s.columns:  # wide: one column per metric
        s = s.melt(id_vars=["method"], var_name="metric", value_name="mean")
    for c in ("ci_low", "ci_high"):
        if c not in s.columns:
            s[c] = float("nan")
    return s[["method", "metric", "mean", "ci_low", "ci_high"]].reset_index(drop=True)


def interval_table(long: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """method x metric cells like ``0.512 [0.490, 0.533]``."""
    long = long[long["metric"].isin(metrics)]
    cell = long.apply(
        lambda r: (
            figs.fmt(r["mean"])
            + ("" if pd.isna(r["ci_low"]) else f" [{figs.fmt(r['ci_low'])}, {figs.fmt(r['ci_high'])}]")
        ),
        axis=1,
    )
    wide = long.assign(cell=cell).pivot(index="method", columns="metric", values="cell")
    wide = wide.reindex(list(dict.fromkeys(long["method"])))
    return wide.reindex(columns=[m for m in metrics if m in wide.columns]).rename(columns=ui.METRIC_LABELS)


def metric_bars(long: pd.DataFrame, metrics: list[str], key: str) -> None:
    """One bar chart per metric with 95% interval error bars, three per row."""
    present = [m for m in metrics if m in set(long["metric"])]
    colours = figs.method_colours(list(dict.fromkeys(long["method"])))
    cols = st.columns(3)
    for i, m in enumerate(present):
        with cols[i % 3]:
            st.markdown(f"**{ui.METRIC_LABELS.get(m, m)}** ({ui.better(m)})")
            st.plotly_chart(
                figs.metric_bar(long[long["metric"] == m], colours), width="stretch", key=f"{key}_{m}"
            )
            st.caption(ui.metric_definition(m))


def method_choice(specs: dict[str, MethodInfo], default: list[str], key: str) -> list[str]:
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


@dataclass(frozen=True)
class MethodInfo:
    """What the page needs to know about a method."""

    label: str
    definition: str
    needs_llm: bool


def method_specs(methods: object) -> dict[str, MethodInfo]:
    """Label, definition and LLM need of each method from a module's method registry."""
    if isinstance(methods, Mapping):
        return {
            m: MethodInfo(
                str(getattr(v, "label", m)),
                str(getattr(v, "definition", "")),
                bool(getattr(v, "needs_llm", m in LLM_METHODS)),
            )
            for m, v in methods.items()
        }
    return {str(m): MethodInfo(str(m), "", m in LLM_METHODS) for m in methods}  # type: ignore[attr-defined]


def method_table(specs: dict[str, MethodInfo], names: list[str]) -> pd.DataFrame:
    """Method -> label and definition, for an expander."""
    return pd.DataFrame(
        {
            "method": names,
            "label": [specs[m].label for m in names],
            "definition": [specs[m].definition for m in names],
        }
    )


# --------------------------------------------------------------------------- LGR
def lgr_tab() -> None:
    """Run an LGR regime and show its results."""
    dataset = state.signature_dataset()
    lgr_specs = method_specs(lgr_eval.METHODS)
    with st.form("lgr_form", border=True):
        c1, c2, c3, c4, c5 = st.columns([1.2, 1.1, 0.6, 0.6, 0.9])
        regime = c1.selectbox(
            "Regime",
            REGIMES,
            key="bench_lgr_regime",
            help="unseen drug: test drugs held out in every line; unseen cell line: test lines held out; "
            "open world: every pair is a query, its pool is everything else measured in its line.",
        )
        aggregation = c2.radio("Aggregation", ["mean", "rank_weighted"], horizontal=True, key="bench_lgr_agg")
        k = c3.number_input("k", 1, 50, 10, key="bench_lgr_k", help="Neighbours per query.")
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
        default = ["cell_mean", "drug_mean", "chem_knn", "pca_ridge", "kg_mechanism", "random", "oracle"]
        chosen = method_choice(lgr_specs, default, "bench_lgr_methods")
        run = st.form_submit_button(f"Run on {dataset}", type="primary", icon=":material/play_arrow:")
    with st.expander("What each method is"):
        st.dataframe(method_table(lgr_specs, list(lgr_specs)), hide_index=True, width="stretch")
    if run:
        if not chosen:
            st.error("Pick at least one method.")
        else:
            _, progress = ui.progress_bar(f"{regime} on {dataset}")
            with ui.guard(f"loading dataset {dataset}"):
                ds = load.signatures(dataset)
            res = ui.call(
                lgr_eval.evaluate_lgr,
                ds,
                regime=regime,
                methods=chosen,
                k=int(k),
                seed=int(seed),
                aggregation=aggregation,
                progress=progress,
                max_queries=int(max_queries) or None,
                settings=state.settings(),
                action="running the LGR benchmark",
            )
            if res is not None:
                st.session_state[LGR_KEY] = {
                    "params": {
                        "dataset": dataset,
                        "regime": regime,
                        "k": int(k),
                        "seed": int(seed),
                        "aggregation": aggregation,
                        "max_queries": int(max_queries) or None,
                        "methods": list(res.methods),
                    },
                    "long": long_summary(res.summary),
                    "per_query": res.per_query.reset_index(drop=True),
                    "dict": res.to_dict(),
                }
    out = st.session_state.get(LGR_KEY)
    if out:
        p, d = out["params"], out["dict"]
        st.subheader(f"{p['regime']} on {p['dataset']}")
        n_q = {m: v.get("n_queries") for m, v in d.get("methods", {}).items()}
        st.caption(
            f"k = {p['k']}, {p['aggregation']} aggregation, seed {p['seed']}, split `{d.get('split_id', '')}`, "
            f"{max(n_q.values(), default=0)} queries per method. Mean over queries with bootstrap 95% intervals "
            f"({d.get('n_boot', '')} resamples); metrics on the {d.get('n_eval_genes', 2000):,} most variable "
            "training genes."
        )
        table = interval_table(out["long"], LGR_METRICS).reindex(p["methods"])
        table["mean k used"] = [figs.fmt(d["methods"][m].get("mean_k_used"), 1) for m in table.index]
        table["fallbacks"] = [d.get("fallbacks", {}).get(m, 0) for m in table.index]
        table["failed LLM calls"] = [d.get("failed", {}).get(m, 0) for m in table.index]
        st.dataframe(table, width="stretch")
        metric_bars(out["long"], LGR_METRICS, "lgr_bar")
        with st.expander(f"Per-query results ({len(out['per_query']):,} rows)"):
            st.dataframe(out["per_query"], hide_index=True, width="stretch", height=300)
        ui.table_downloads(
            f"lgr_{p['dataset']}_{p['regime']}",
            d,
            {"summary": out["long"], "per_query": out["per_query"]},
        )
        ui.cli_hint(
            f"python -m perturb_core lgr evaluate --dataset {p['dataset']} --regime {p['regime']} "
            f"--methods {','.join(p['methods'])} --k {p['k']} --seed {p['seed']} "
            f"--aggregation {p['aggregation']}"
            + (f" --max-queries {p['max_queries']}" if p.get("max_queries") else "")
            + " --json"
        )
    else:
        st.info("Choose a regime and methods, then press **Run**.", icon=":material/info:")


# --------------------------------------------------------------------------- CORE
def core_tab() -> None:
    """Run a CORE task and show its results."""
    dataset = state.label_dataset()
    core_specs = method_specs(core_eval.CORE_METHODS)
    with st.form("core_form", border=True):
        c1, c2, c3 = st.columns([1.2, 1, 0.6])
        task = c1.selectbox(
            "Task",
            ["de", "dir"],
            format_func={"de": "DE: does g respond?", "dir": "direction: up or down?"}.get,
            key="bench_core_task",
        )
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
        chosen = method_choice(core_specs, ["gene_frequency", "core_voting", "random"], "bench_core_methods")
        run = st.form_submit_button(f"Run on {dataset}", type="primary", icon=":material/play_arrow:")
    with st.expander("What each method is"):
        st.dataframe(method_table(core_specs, list(core_specs)), hide_index=True, width="stretch")
    if run:
        if not chosen:
            st.error("Pick at least one method.")
        else:
            bar, progress = ui.progress_bar(f"{task} on {dataset}")
            with ui.guard(f"loading labels {dataset}"):
                ls = load.labels(dataset, task)
                g = load.graph()
            res = ui.call(
                core_eval.evaluate_core,
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
                st.session_state[CORE_KEY] = {
                    "params": {
                        "dataset": dataset,
                        "task": task,
                        "seed": int(seed),
                        "max_pairs": int(max_pairs) or None,
                        "methods": list(res.methods),
                    },
                    "long": long_summary(res.summary),
                    "per_pair": res.per_pair.reset_index(drop=True),
                    "per_gene": res.per_gene.reset_index(drop=True),
                    "reliability": res.reliability.reset_index(drop=True),
                    "dict": res.to_dict(),
                }
    out = st.session_state.get(CORE_KEY)
    if out:
        p, d = out["params"], out["dict"]
        st.subheader(f"{'DE' if p['task'] == 'de' else 'Direction'} on {p['dataset']}")
        n_pairs = max((v.get("n_pairs") or 0 for v in d.get("methods", {}).values()), default=0)
        st.caption(
            f"{n_pairs:,} of {d.get('n_test_pairs', 0):,} test pairs (seed {p['seed']}); bootstrap 95% intervals "
            f"({d.get('n_boot', '')} resamples) for AUROC, AUPRC, per-gene AUROC and Brier; predicted positive rate "
            "at a 0.5 threshold. Aggregate AUROC rewards knowing which genes respond often; per-gene (macro) "
            "AUROC asks whether a method ranks perturbations within a gene: 0.5 there means it does not reason "
            "about the perturbation."
        )
        table = interval_table(out["long"], CORE_METRICS).reindex(p["methods"])
        table["pairs"] = [d["methods"][m].get("n_pairs") for m in table.index]
        table["genes in macro"] = [d["methods"][m].get("n_genes_macro") for m in table.index]
        if d.get("llm_calls"):
            table["LLM fallbacks"] = [d["llm_calls"].get(m, {}).get("n_fallback", 0) for m in table.index]
        st.dataframe(table, width="stretch")
        metric_bars(out["long"], CORE_METRICS, "core_bar")
        colours = figs.method_colours(p["methods"])
        c1, c2 = st.columns(2)
        with c1:
            st.markdown("**Calibration** (reliability curve; marker size = pairs in the bin)")
            st.plotly_chart(
                figs.calibration_curve(out["reliability"], colours), width="stretch", key="core_calibration"
            )
        with c2:
            st.markdown("**Per-gene AUROC** (one value per gene with both classes; 0.5 = chance)")
            st.plotly_chart(
                figs.gene_auroc_histogram(out["per_gene"], colours), width="stretch", key="core_gene_hist"
            )
        with st.expander(f"Per-pair scores ({len(out['per_pair']):,} rows)"):
            st.dataframe(out["per_pair"].head(5000), hide_index=True, width="stretch", height=300)
        ui.table_downloads(
            f"core_{p['dataset']}_{p['task']}",
            out["dict"],
            {
                "summary": out["long"],
                "per_gene": out["per_gene"],
                "reliability": out["reliability"],
                "per_pair": out["per_pair"],
            },
        )
        ui.cli_hint(
            f"python -m perturb_core core evaluate --dataset {p['dataset']} --task {p['task']} "
            f"--methods {','.join(p['methods'])} --seed {p['seed']}"
            + (f" --max-pairs {p['max_pairs']}" if p.get("max_pairs") else "")
            + " --json"
        )
    else:
        st.info("Choose a task and methods, then press **Run**.", icon=":material/info:")


tab_lgr, tab_core = st.tabs(["LGR regime", "CORE task"])
with tab_lgr:
    lgr_tab()
with tab_core:
    core_tab()
