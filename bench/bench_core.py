"""Benchmark of CORE: speed of CORE-Voting on all PerturbQA DE test sets, explain latency, results tables.

Usage (from the repository root)::

    python bench/bench_core.py                      # everything, prints markdown
    python bench/bench_core.py --markdown out.md    # also write the markdown to a file
    python bench/bench_core.py --tahoe c32          # only C32 among the Tahoe lines

1. Speed: in a fresh subprocess, load the graph and the four PerturbQA DE label sets, then
   for each line build the relation matrices, fit CORE-Voting by cross-validation inside
   train and score every test pair (about 116,000 pairs). Wall time and peak resident memory
   are reported for the whole run and per line. Targets: <= 10 s in total, <= 4 GB.
2. ``explain`` latency after loading: median and maximum over 50 random test pairs of K562.
   Target: <= 100 ms.
3. Results: every non-LLM method on PerturbQA (4 lines x DE and direction) and Tahoe C32
   (DE and direction) with 95% bootstrap intervals; CORE-Voting against gene frequency on
   every Tahoe cell line (DE). LLM methods need an endpoint and are not run here.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

import numpy as np  # noqa: E402
from _machine import machine  # noqa: E402

from perturb_core.data.registry import label_dataset_names, load_labels  # noqa: E402
from perturb_core.evaluate.core import CORE_NON_LLM_METHODS, evaluate_core  # noqa: E402
from perturb_core.evidence import core_index, explain  # noqa: E402
from perturb_core.kg import load_graph  # noqa: E402

LINES = ("k562", "rpe1", "hepg2", "jurkat")
PUBLISHED = {  # macro per-gene AUROC, DE task (K562, RPE1, HepG2, Jurkat)
    "retrieval without LLM": (0.58, 0.59, 0.56, 0.56),
    "SUMMER (LLM)": (0.62, 0.59, 0.62, 0.59),
}
PUBLISHED_CORE_VOTING_MEAN = 0.703
DE_TABLE = (
    "gene_frequency",
    "core_voting",
    "core_voting_strict",
    "core_voting_with_regulates",
    "core_voting_crossline",
    "core_learned",
    "core_learned_crossline",
)
NEW_TABLE = (
    "gene_frequency",
    "core_voting",
    "core_voting_crossline",
    "core_learned",
    "core_learned_crossline",
)

SPEED_SCRIPT = r"""
import json, resource, time
t0 = time.perf_counter()
from perturb_core.data.registry import load_labels
from perturb_core.evidence import core_index
from perturb_core.kg import load_graph
graph = load_graph()
labels = [load_labels(f"perturbqa-{line}", "de") for line in LINES]
t_load = time.perf_counter() - t0
rows = []
for ls in labels:
    t = time.perf_counter()
    index = core_index(ls, graph)
    t_fit = time.perf_counter() - t
    scores = index.test_scores()
    rows.append({"dataset": ls.name, "pairs": len(scores), "fit_s": t_fit, "total_s": time.perf_counter() - t})
print(json.dumps({
    "load_s": t_load, "lines": rows, "total_s": time.perf_counter() - t0,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""


def bench_speed() -> dict[str, Any]:
    """The four DE test sets end to end in a fresh interpreter (graph and labels loaded first)."""
    code = f"LINES = {LINES!r}\n" + SPEED_SCRIPT
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, env=os.environ
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_explain(n: int = 50, seed: int = 0) -> dict[str, float]:
    graph = load_graph()
    labels = load_labels("perturbqa-k562", "de")
    index = core_index(labels, graph)
    test = index.test_scores()
    rng = np.random.default_rng(seed)
    rows = test.iloc[rng.choice(len(test), n, replace=False)]
    explain(labels, graph, perturbation=rows["pert"].iat[0], gene=rows["gene"].iat[0], index=index)
    times = []
    for p, g in zip(rows["pert"], rows["gene"], strict=True):
        start = time.perf_counter()
        explain(labels, graph, perturbation=p, gene=g, index=index)
        times.append(time.perf_counter() - start)
    return {"median_ms": 1000 * float(np.median(times)), "max_ms": 1000 * float(np.max(times)), "n": n}


def fmt_ci(doc: dict[str, Any], method: str, key: str) -> str:
    """``value [low, high]`` of one metric of a ``core evaluate --json`` document (intervals are top-level)."""
    v, (lo, hi) = doc["methods"][method][key], doc["ci"][method][key]
    if v is None:
        return "—"
    if lo is None or hi is None:
        return f"{v:.3f}"
    return f"{v:.3f} [{lo:.3f}, {hi:.3f}]"


def results(datasets: list[str], tasks: tuple[str, ...], n_boot: int) -> dict[str, dict[str, Any]]:
    graph = load_graph()
    out: dict[str, dict[str, Any]] = {}
    for name in datasets:
        for task in tasks:
            methods = [
                m
                for m in CORE_NON_LLM_METHODS
                if name.startswith("perturbqa-") or not m.endswith("_crossline")
            ]
            res = evaluate_core(load_labels(name, task), graph, methods=methods, n_boot=n_boot)
            out[f"{name}/{task}"] = res.to_dict()
            m = res.to_dict()["methods"]
            print(
                f"  {name:<18} {task:<3} core_voting per-gene {m['core_voting']['macro_gene_auroc']:.3f} "
                f"auroc {m['core_voting']['auroc']:.3f} | gene_frequency auroc {m['gene_frequency']['auroc']:.3f}",
                file=sys.stderr,
            )
    return out


def tahoe_lines(which: str) -> list[str]:
    names = [n for n in label_dataset_names() if n.startswith("tahoe-")]
    return names if which == "all" else [n for n in names if n == f"tahoe-{which}"]


def markdown(
    speed: dict[str, Any], expl: dict[str, float], res: dict[str, Any], tahoe: dict[str, Any]
) -> str:
    lines = [
        "## CORE (gene-response prediction) benchmark",
        "",
        f"Machine: {machine()}. Date: {dt.date.today().isoformat()}. "
        "Command: `python bench/bench_core.py`. No LLM endpoint: `core_reasoning` and `isolated_llm` "
        "are not in these tables (they run through the same code path against any OpenAI-compatible endpoint).",
        "",
        "### Speed",
        "",
        f"All four PerturbQA DE test sets ({sum(r['pairs'] for r in speed['lines']):,} pairs) with `core_voting` in a "
        f"fresh process: **{speed['total_s']:.1f} s** in total (loading graph and labels {speed['load_s']:.1f} s; "
        "relation matrices, cross-validated fit and scoring per line below), peak resident memory "
        f"**{speed['peak_rss_mb'] / 1024:.2f} GB** (targets: 10 s, 4 GB).",
        "",
        "| dataset | test pairs | relations + CV fit (s) | fit + score (s) |",
        "|---|---:|---:|---:|",
    ]
    lines += [
        f"| {r['dataset']} | {r['pairs']:,} | {r['fit_s']:.2f} | {r['total_s']:.2f} |" for r in speed["lines"]
    ]
    lines += [
        "",
        f"`explain` after loading: median {expl['median_ms']:.0f} ms, max {expl['max_ms']:.0f} ms over "
        f"{expl['n']} random K562 test pairs (target 100 ms).",
        "",
        "### Macro per-gene AUROC, DE task (published references vs ours)",
        "",
        "| method | K562 | RPE1 | HepG2 | Jurkat | mean |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, vals in PUBLISHED.items():
        lines.append(
            f"| {name} (published) | " + " | ".join(f"{v:.2f}" for v in vals) + f" | {np.mean(vals):.3f} |"
        )
    lines.append(f"| CORE-Voting (published) | | | | | {PUBLISHED_CORE_VOTING_MEAN:.3f} |")
    for m in DE_TABLE:
        vals = [res[f"perturbqa-{line}/de"]["methods"][m]["macro_gene_auroc"] for line in LINES]
        lines.append(
            f"| `{m}` (ours) | " + " | ".join(f"{v:.3f}" for v in vals) + f" | {np.mean(vals):.3f} |"
        )
    lines += [
        "",
        "### Issue 9 methods: per-gene and aggregate AUROC on PerturbQA (test split, looked at once)",
        "",
        "Per-gene = macro per-gene AUROC; aggregate = AUROC over all test pairs (gene frequency's in "
        "parentheses); seconds = wall time of the method on that line (fit by CV inside train + scoring).",
        "",
        "| task | method | K562 | RPE1 | HepG2 | Jurkat | mean per-gene | aggregate AUROC (gene freq.) | seconds |",
        "|---|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for task in ("de", "dir"):
        for m in NEW_TABLE:
            docs = [res[f"perturbqa-{line}/{task}"] for line in LINES]
            pg = [d["methods"][m]["macro_gene_auroc"] for d in docs]
            agg = " / ".join(
                f"{d['methods'][m]['auroc']:.3f} ({d['methods']['gene_frequency']['auroc']:.3f})"
                for d in docs
            )
            secs = " / ".join(f"{d['elapsed_s'][m]:.0f}" for d in docs)
            lines.append(
                f"| {task} | `{m}` | "
                + " | ".join(f"{v:.3f}" for v in pg)
                + f" | {np.mean(pg):.3f} | {agg} | {secs} |"
            )
    learned = [
        (k, v["models"][m])
        for k, v in res.items()
        for m in ("core_learned", "core_learned_crossline")
        if m in v["models"]
    ]
    if learned:
        lines += [
            "",
            "### Fitted CORE-Learned settings (CV inside train: learning rate / iterations / leaves)",
            "",
            "| dataset | task | model | chosen | CV per-gene AUROC per setting |",
            "|---|---|---|---|---|",
        ]
        for key, mdl in learned:
            name, task = key.split("/")
            st = mdl["setting"]
            cv = ", ".join(f"{k}: {v:.3f}" for k, v in mdl["cv_macro_gene_auroc"].items())
            kind = "cross-line" if mdl["crossline"] else "single-line"
            lines.append(
                f"| {name} | {task} | {kind} | {st['learning_rate']:g} / {st['max_iter']} / {st['max_leaf_nodes']} | {cv} |"
            )
    lines += [
        "",
        "### All non-LLM methods (95% bootstrap intervals; per-gene intervals resample genes)",
        "",
        "| dataset | task | method | per-gene AUROC | genes | AUROC | AUPRC | pred. + rate / true rate | Brier |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for key, doc in res.items():
        name, task = key.split("/")
        for m, v in doc["methods"].items():
            lines.append(
                f"| {name} | {task} | `{m}` | {fmt_ci(doc, m, 'macro_gene_auroc')} | {v['n_genes_macro']} | "
                f"{fmt_ci(doc, m, 'auroc')} | {v['auprc']:.3f} | {v['predicted_positive_rate']:.3f} / "
                f"{v['true_positive_rate']:.3f} | {doc['brier'][m]:.3f} |"
            )
    if tahoe:
        per_gene = {k: v["methods"]["core_voting"]["macro_gene_auroc"] for k, v in tahoe.items()}
        above = sum(v > 0.5 for v in per_gene.values())
        agg_ok = sum(
            v["methods"]["core_voting"]["auroc"] >= v["methods"]["gene_frequency"]["auroc"] - 0.01
            for v in tahoe.values()
        )
        lines += [
            "",
            f"### Tahoe drug labels, every cell line (DE, {len(tahoe)} lines)",
            "",
            f"`core_voting` per-gene AUROC above 0.5 on {above} of {len(tahoe)} lines (mean "
            f"{np.mean(list(per_gene.values())):.3f}, min {min(per_gene.values()):.3f}, max "
            f"{max(per_gene.values()):.3f}); aggregate AUROC within 0.01 of gene frequency or better on "
            f"{agg_ok} of {len(tahoe)}.",
            "",
            "| line | per-gene AUROC | genes | AUROC (voting / gene freq.) |",
            "|---|---:|---:|---:|",
        ]
        for k, v in tahoe.items():
            cv, gf = v["methods"]["core_voting"], v["methods"]["gene_frequency"]
            lines.append(
                f"| {k.split('/')[0]} | {fmt_ci(v, 'core_voting', 'macro_gene_auroc')} | {cv['n_genes_macro']} | "
                f"{cv['auroc']:.3f} / {gf['auroc']:.3f} |"
            )
    models = {
        f"{k} ({m})": v["models"].get(m)
        for k, v in res.items()
        for m in ("core_voting", "core_voting_crossline")
        if m in v["models"]
    }
    lines += [
        "",
        "### Fitted CORE-Voting parameters (cross-validation inside train)",
        "",
        "| dataset | task | relation weights | m | u | CV per-gene AUROC (start → fitted) |",
        "|---|---|---|---:|---:|---:|",
    ]
    for key, mdl in models.items():
        if not mdl:
            continue
        name, task = key.split(" ")[0].split("/")
        name = f"{name} {key.split(' ')[1]}"
        w = ", ".join(f"{r} {x:g}" for r, x in mdl["weights"].items() if x > 0)
        lines.append(
            f"| {name} | {task} | {w} | {mdl['shrinkage']:g} | {mdl['unmeasured_weight']:g} | "
            f"{mdl['cv_baseline']:.3f} → {mdl['cv_macro_gene_auroc']:.3f}"
            + (
                f" (co_response top-k {mdl['crossline_top_k']})"
                if mdl.get("crossline_top_k") is not None
                else ""
            )
            + " |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--markdown", default=None, help="also write the markdown report here")
    ap.add_argument("--json", default=None, help="write every result document here")
    ap.add_argument("--n-boot", type=int, default=200)
    ap.add_argument("--tahoe", default="all", help="'all' Tahoe lines or one line id (e.g. c32)")
    args = ap.parse_args(argv)

    print("speed (fresh process)...", file=sys.stderr)
    speed = bench_speed()
    print(f"  {speed['total_s']:.1f} s, {speed['peak_rss_mb']:.0f} MB", file=sys.stderr)
    expl = bench_explain()
    print(f"explain median {expl['median_ms']:.1f} ms", file=sys.stderr)
    print("results...", file=sys.stderr)
    res = results([f"perturbqa-{line}" for line in LINES] + ["tahoe-c32"], ("de", "dir"), args.n_boot)
    tahoe = {}
    graph = load_graph()
    for name in tahoe_lines(args.tahoe):
        tahoe[f"{name}/de"] = evaluate_core(
            load_labels(name, "de"), graph, methods=["gene_frequency", "core_voting"], n_boot=args.n_boot
        ).to_dict()
    md = markdown(speed, expl, res, tahoe)
    print(md)
    if args.markdown:
        Path(args.markdown).write_text(md)
    if args.json:
        Path(args.json).write_text(
            json.dumps({"speed": speed, "explain": expl, "results": res, "tahoe": tahoe})
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
