"""Nested check on TRAINING data only: is a change to a CORE method better on held-out perturbations?

Usage (from the repository root)::

    python bench/nested_core.py                                  # 4 PerturbQA lines, DE, outer folds 0-2
    python bench/nested_core.py --lines k562,hepg2 --task dir --outer 0,1

The query line's TEST rows are dropped before anything else. Its training perturbations are split
into ``--n-outer`` seeded folds; for each outer fold named by ``--outer`` that fold's training
perturbations become a pseudo-test split and everything (relations, the CV fit of weights,
shrinkage, ``top_k``) is refitted on the rest. The pseudo-test pairs are then scored by each
variant and the macro per-gene AUROC compared. No test label of any line is read: the other lines
give only their TRAINING rows, as they do in the methods themselves.

Compared here (the check behind docs/core.md, "What was looked at, in order", step 4):
``core_voting_crossline`` with the ``same_knockdown`` source and without it (``co_response`` only).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from _machine import machine  # noqa: E402
from tqdm import tqdm  # noqa: E402

from perturb_core.data.registry import LabelSet, load_labels  # noqa: E402
from perturb_core.evidence import core_index, crossline_labels  # noqa: E402
from perturb_core.evidence._fit import _folds  # noqa: E402
from perturb_core.kg import KnowledgeGraph, load_graph  # noqa: E402
from perturb_core.metrics import macro_gene_auroc  # noqa: E402

OUTER_SEED = 123  # not the fit's own fold seed (0), so outer and inner folds differ


def pseudo_split(labels: LabelSet, outer: int, n_outer: int) -> LabelSet:
    """The label set with its test rows dropped and one outer fold of training perturbations as test."""
    t = labels.table
    t = t[(t["split"] == "train").to_numpy()].reset_index(drop=True)
    codes = t["pert"].cat.codes.to_numpy()
    fold = _folds(np.unique(codes), n_outer, OUTER_SEED)
    held = np.array([fold[c] == outer for c in codes])
    split = pd.Categorical(np.where(held, "test", "train"), categories=t["split"].cat.categories)
    return dataclasses.replace(labels, table=t.assign(split=split))


def held_out_auroc(
    labels: LabelSet, graph: KnowledgeGraph, others: tuple[LabelSet, ...], same: bool
) -> float:
    """Macro per-gene AUROC of ``core_voting_crossline`` (with or without ``same_knockdown``) on the pseudo-test split."""
    ts = core_index(labels, graph, crossline=others, crossline_same=same).test_scores()
    y, s, g = ts["label"].to_numpy(), ts["score"].to_numpy(), ts["gene"].astype(str).to_numpy()
    return macro_gene_auroc(y, s, g).mean


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", default="k562,rpe1,hepg2,jurkat", help="PerturbQA lines, comma-separated")
    ap.add_argument("--task", default="de", choices=("de", "dir"))
    ap.add_argument("--outer", default="0,1,2", help="outer folds to hold out, comma-separated")
    ap.add_argument("--n-outer", type=int, default=5, help="outer folds of training perturbations")
    args = ap.parse_args(argv)
    outer = [int(x) for x in args.outer.split(",")]
    if any(not 0 <= o < args.n_outer for o in outer):
        ap.error(f"--outer {args.outer}: each fold must be in 0..{args.n_outer - 1}")
    graph = load_graph()
    print(machine())
    print(f"nested check, task {args.task}, outer folds {outer} of {args.n_outer} (seed {OUTER_SEED})")
    print("| line | outer fold | with same_knockdown | co_response only | difference | seconds |")
    print("|---|---:|---:|---:|---:|---:|")
    diffs = []
    jobs = [(line, o) for line in args.lines.split(",") for o in outer]
    for line, o in tqdm(jobs, desc="outer folds", file=sys.stderr):
        start = time.perf_counter()
        full = load_labels(f"perturbqa-{line}", args.task)
        others = crossline_labels(full)
        ps = pseudo_split(full, o, args.n_outer)
        with_same, without = (held_out_auroc(ps, graph, others, same) for same in (True, False))
        diffs.append(with_same - without)
        print(
            f"| {line} | {o} | {with_same:.4f} | {without:.4f} | {with_same - without:+.4f} | "
            f"{time.perf_counter() - start:.0f} |",
            flush=True,
        )
    d = np.array(diffs)
    print(f"mean difference {d.mean():+.4f} over {len(d)} held-out folds; not worse in {(d >= 0).sum()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
