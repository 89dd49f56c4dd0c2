"""Benchmark of LGR: speed of all non-LLM methods in all regimes, LLM batch throughput, results table.

Usage (from the repository root)::

    python bench/bench_lgr.py                       # everything, prints markdown
    python bench/bench_lgr.py --markdown out.md     # also write the markdown to a file
    python bench/bench_lgr.py --skip-llm --n-boot 200

1. Speed: ``evaluate_lgr`` for the three regimes x every non-LLM method on the full test sets
   of the dataset (``tahoe``: 40 cell lines), timed end to end (split, evaluation genes,
   selectors, baselines, metrics, bootstrap). Target: <= 60 s in total.
2. LLM batch: the ``llm`` method on the fake OpenAI-compatible server of the tests
   (perturb_core/testing/fake_openai.py) answering after 200 ms, with the response cache off, sequentially
   (concurrency 1) and with a bounded pool (default 16). Target: >= 8x the sequential throughput.
   The fake server is not a model: these runs measure plumbing, not prediction quality.
3. Results: regime x method x metric (mean and 95% bootstrap interval) with each regime's default
   aggregation (residual where the drug was measured in other lines, the plain mean for unseen
   drugs), k = 10, no similarity weights; the same with the paper's plain mean (Pearson and
   sign accuracy); and with k and the similarity power of every selector chosen by 4-fold
   cross-validation on TRAINING lines/drugs (``tune=True``; the test pairs are used once), with
   the choices. Plus the mean Pearson r of the retrieval selectors on queries whose drug
   belongs to one of the five programs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]


from _machine import machine  # noqa: E402

from perturb_core.config import get_settings  # noqa: E402
from perturb_core.data.registry import load_signatures  # noqa: E402
from perturb_core.evaluate.lgr import (  # noqa: E402
    METHODS,
    NON_LLM_METHODS,
    QUERY_METRICS,
    LGRResult,
    evaluate_lgr,
)
from perturb_core.llm import LLM  # noqa: E402
from perturb_core.metrics import METRICS  # noqa: E402
from perturb_core.retrieval import REGIMES, lgr_index  # noqa: E402

ARROW = {m: {True: "↑", False: "↓", None: ""}[METRICS[m].higher_is_better] for m in QUERY_METRICS}
TABLE_METRICS = ("pearson", "sign_accuracy", "mse", "r2", "r2_pred", "precision_at_k", "mrr")


def bench_speed(
    dataset: str, seed: int, n_boot: int, *, aggregation: str | None = None, tune: bool = False
) -> tuple[dict[str, LGRResult], dict[str, float]]:
    settings = get_settings()
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    ds = load_signatures(dataset, settings)
    times["load dataset"] = time.perf_counter() - t0
    t = time.perf_counter()
    lgr_index(ds, settings=settings).kg  # noqa: B018  (builds the dataset index and graph evidence once)
    times["index + graph evidence"] = time.perf_counter() - t
    results = {}
    for regime in REGIMES:
        t = time.perf_counter()
        results[regime] = evaluate_lgr(
            ds,
            regime=regime,
            methods=NON_LLM_METHODS,
            seed=seed,
            n_boot=n_boot,
            settings=settings,
            aggregation=aggregation,  # type: ignore[arg-type]
            tune=tune,
        )
        times[regime] = time.perf_counter() - t
    times["total"] = time.perf_counter() - t0
    return results, times


def _answer(request: dict[str, Any]) -> str:
    from perturb_core.testing.fake_openai import lgr_candidates, lgr_final_answer

    names, k, _ = lgr_candidates(request)
    return lgr_final_answer(names[:k], "placeholder.")


def bench_llm(dataset: str, n_queries: int, concurrency: int, latency: float) -> dict[str, float]:
    from perturb_core.testing.fake_openai import FAKE_MODEL, FakeOpenAI

    settings = get_settings()
    out: dict[str, float] = {}
    with FakeOpenAI(_answer, delay_s=latency) as server, tempfile.TemporaryDirectory() as tmp:
        llm_settings = settings.with_(
            llm_base_url=server.base_url,
            llm_api_key="sk-bench",
            llm_model=FAKE_MODEL,
            cache_dir=Path(tmp),
            llm_timeout=30.0,
        )
        llm = LLM.from_settings(llm_settings, use_cache=False)
        for label, conc in (("sequential", 1), (f"concurrency {concurrency}", concurrency)):
            server.reset()
            t = time.perf_counter()
            res = evaluate_lgr(
                dataset,
                regime="open-world",
                methods=["llm"],
                max_queries=n_queries,
                n_boot=10,
                settings=settings,
                llm=llm,
                concurrency=conc,
            )
            elapsed = time.perf_counter() - t
            assert server.n_requests == n_queries, server.n_requests
            assert res.per_query["error"].isna().all()
            out[label] = elapsed
            out[f"{label} queries/s"] = n_queries / elapsed
    out["speedup"] = out["sequential"] / out[f"concurrency {concurrency}"]
    return out


def _cell(v: float | None, lo: float | None, hi: float | None) -> str:
    if v is None:
        return "—"
    return f"{v:.3f}" + ("" if lo is None else f" [{lo:.3f}, {hi:.3f}]")


def results_markdown(results: dict[str, LGRResult], metrics: tuple[str, ...] = TABLE_METRICS) -> str:
    lines = [
        "| regime | aggregation | method | "
        + " | ".join(f"{m} {ARROW[m]}" for m in metrics)
        + " | n | k | p | k_used |",
        "|---|---|---|" + "---|" * len(metrics) + "---|---|---|---|",
    ]
    for regime, res in results.items():
        doc = res.to_dict()
        for m, v in doc["methods"].items():
            cells = [_cell(v[metric], *doc["ci"][m][metric]) for metric in metrics]
            rows = res.per_query[res.per_query["method"] == m]
            ks = "/".join(str(x) for x in sorted(rows["k"].unique()))
            ps = "/".join(f"{x:g}" for x in sorted(rows["similarity_power"].unique()))
            k_used = "—" if v["mean_k_used"] is None else f"{v['mean_k_used']:.1f}"
            lines.append(
                f"| {regime} | {res.aggregation} | {m} | "
                + " | ".join(cells)
                + f" | {v['n_queries']} | {ks} | {ps} | {k_used} |"
            )
    return "\n".join(lines)


def tuning_markdown(results: dict[str, LGRResult]) -> str:
    lines = [
        "| regime | method | applies to | k | p | CV Pearson r | CV queries |",
        "|---|---|---|---|---|---|---|",
    ]
    for regime, res in results.items():
        for c in res.tuning:
            lines.append(
                f"| {regime} | {c.method} | {c.applies_to} | {c.k} | {c.similarity_power:g} | "
                f"{c.cv_pearson:.3f} | {c.n_cv_queries} |"
            )
    return "\n".join(lines)


def program_subgroup(results: dict[str, LGRResult], dataset: str) -> str:  # regime defaults
    index = lgr_index(load_signatures(dataset))
    in_program = {n for n, p in zip(index.drugs, index.mechanism["programs"], strict=True) if p}
    methods = ["kg_mechanism", "chem_knn_retrieval", "transcriptome_knn", "random", "cell_mean"]
    lines = ["| regime | queries | " + " | ".join(methods) + " |", "|---|---|" + "---|" * len(methods)]
    for regime, res in results.items():
        pq = res.per_query[res.per_query["drug"].isin(in_program)]
        means = pq.groupby("method")["pearson"].mean()
        n = int((pq["method"] == methods[0]).sum())
        lines.append(f"| {regime} | {n} | " + " | ".join(f"{means[m]:.3f}" for m in methods) + " |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="tahoe")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--skip-llm", action="store_true")
    ap.add_argument("--llm-queries", type=int, default=48)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--markdown", type=Path, default=None, help="also write the report here")
    args = ap.parse_args()

    results, times = bench_speed(args.dataset, args.seed, args.n_boot)
    plain, _ = bench_speed(args.dataset, args.seed, args.n_boot, aggregation="mean")
    t = time.perf_counter()
    tuned, _ = bench_speed(args.dataset, args.seed, args.n_boot, tune=True)
    tune_s = time.perf_counter() - t
    n_q = {r: len(res.per_query) // len(res.methods) for r, res in results.items()}
    report = [
        f"Machine: {machine()}; date {dt.date.today().isoformat()}.",
        "",
        f"### Speed: 3 regimes x {len(NON_LLM_METHODS)} non-LLM methods on `{args.dataset}` (n_boot={args.n_boot})",
        "",
        "| step | seconds | queries |",
        "|---|---|---|",
        *(f"| {k} | {v:.1f} | {n_q.get(k, '')} |" for k, v in times.items()),
    ]
    if not args.skip_llm:
        llm = bench_llm(args.dataset, args.llm_queries, args.concurrency, args.latency)
        report += [
            "",
            f"### LLM batch: {args.llm_queries} prompts, fake server with {args.latency * 1000:.0f} ms latency, cache off",
            "",
            "| run | seconds | queries/s |",
            "|---|---|---|",
            f"| sequential (concurrency 1) | {llm['sequential']:.2f} | {llm['sequential queries/s']:.1f} |",
            f"| concurrency {args.concurrency} | {llm[f'concurrency {args.concurrency}']:.2f} | "
            f"{llm[f'concurrency {args.concurrency} queries/s']:.1f} |",
            f"| speedup | {llm['speedup']:.1f}x | |",
        ]
    report += [
        "",
        f"### Results, regime defaults (seed {args.seed}, k=10, p=0, 2,000 most variable training genes, "
        "95% bootstrap CI)",
        "",
        results_markdown(results),
        "",
        f"### Results with the paper's plain mean (seed {args.seed}, k=10)",
        "",
        results_markdown(plain, ("pearson", "sign_accuracy", "r2_pred", "precision_at_k")),
        "",
        f"### Results with k and p chosen by 4-fold CV on training data (seed {args.seed}; {tune_s:.0f} s for "
        "the three regimes, CV included)",
        "",
        results_markdown(tuned),
        "",
        "Choices (grid k in 5/10/20/30, p in 0/1/2/4/8 for selectors with a similarity; the open world is "
        "nested: each fold of lines uses choices tuned on the other lines):",
        "",
        tuning_markdown(tuned),
        "",
        "Mean Pearson r on queries whose drug is in one of the five programs:",
        "",
        program_subgroup(results, args.dataset),
        "",
        "Labels: " + "; ".join(f"`{m}` = {METHODS[m].label}" for m in NON_LLM_METHODS) + ".",
    ]
    text = "\n".join(report)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
