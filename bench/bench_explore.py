"""Benchmark of the explore features on the real data: signature query, enrichment, gene view.

Usage (from the repository root)::

    python bench/bench_explore.py                   # prints markdown
    python bench/bench_explore.py --repeats 5

1. Signature query (CMap WTCS) over every (cell line, drug) signature of ``tahoe`` (4,120), for
   up/down lists of 10, 50 and 150 random measured genes each (seeded): median and max wall
   time over ``--repeats`` runs after a warm-up, and the first (cold) call.
2. Recovery: the MAPK pathway activity score genes (Wagle et al. 2018) as a down list; rank of
   the MEK inhibitors among drugs by mean WTCS over lines.
3. Enrichment: building the graph's gene sets, and testing the four top-50 lists of one
   prediction (Trametinib in A498, kg_mechanism) against them.
4. Gene view: ``gene_report("EGR1")`` with CORE's per-gene AUROC (cold: fits CORE per line) and warm.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

import numpy as np  # noqa: E402
from _machine import machine  # noqa: E402

from perturb_core.data.registry import load_drugs, load_signatures  # noqa: E402
from perturb_core.explore import connectivity, enrich_prediction, gene_report, gene_sets  # noqa: E402
from perturb_core.kg import load_graph  # noqa: E402

MPAS = ["PHLDA1", "SPRY2", "SPRY4", "DUSP4", "DUSP6", "CCND1", "EPHA2", "EPHA4", "ETV4", "ETV5"]


def _time(fn, repeats: int) -> tuple[float, float]:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), max(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    out = [
        f"Machine: {machine()}; load average {os.getloadavg()[0]:.1f} at start; "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC.",
        "",
    ]
    ds = load_signatures("tahoe")
    drugs = load_drugs()
    rng = np.random.default_rng(0)
    genes = np.asarray(ds.genes)
    t = time.perf_counter()
    connectivity(ds, list(genes[:10]), list(genes[10:20]), drugs=drugs)
    cold = time.perf_counter() - t
    out += [
        "| query (up + down genes) | signatures | median s | max s |",
        "|---|---|---|---|",
    ]
    for n in (10, 50, 150):
        pick = rng.choice(len(genes), 2 * n, replace=False)
        up, down = list(genes[pick[:n]]), list(genes[pick[n:]])
        med, mx = _time(lambda up=up, down=down: connectivity(ds, up, down, drugs=drugs), args.repeats)
        out.append(f"| {n} + {n} | {ds.adata.n_obs:,} | {med:.3f} | {mx:.3f} |")
    out += ["", f"First call (cold; 10 + 10 genes): {cold:.2f} s.", ""]
    res = connectivity(ds, [], MPAS, drugs=drugs).by_drug()
    mek = res.index[res["moa"] == "MEK inhibitor"].tolist()
    out += [
        f"MPAS down list: MEK inhibitors at ranks {', '.join(str(i + 1) for i in mek)} of {len(res)} drugs "
        f"(mean WTCS over lines; {', '.join(res.loc[mek, 'drug'])}).",
        "",
    ]
    graph = load_graph()
    med, mx = _time(lambda: gene_sets(graph), args.repeats)
    sets = gene_sets(graph)
    out.append(
        f"Gene sets from the graph ({sets.n_sets:,} sets, {len(sets.genes):,} genes): median {med:.3f} s."
    )
    from perturb_core.retrieval import predict_query

    ex = predict_query(
        ds, cell_line="A498", drug="Trametinib", selector="kg_mechanism", drugs=drugs, graph=graph
    )
    med, mx = _time(lambda: enrich_prediction(ex.genes, ex.prediction, ex.truth, sets), args.repeats)
    out.append(f"Enrichment of the 4 top-50 lists of one prediction: median {med:.3f} s, max {mx:.3f} s.")
    t = time.perf_counter()
    gene_report("EGR1")
    cold = time.perf_counter() - t
    med, _ = _time(lambda: gene_report("EGR1"), args.repeats)
    out.append(
        f"Gene view of EGR1 with CORE per-gene AUROC: first call {cold:.1f} s, then median {med:.2f} s."
    )
    print("\n".join(out))


if __name__ == "__main__":
    main()
