"""Benchmark: fetch + build of every dataset and the graph from scratch.

Runs in a temporary data folder (the mirror is read, nothing else is touched) and prints
wall time per step and peak resident memory (this process and its worker processes).

    python bench/bench_data.py [--workers N]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1])]

from _machine import machine  # noqa: E402

from perturb_core.config import get_settings  # noqa: E402
from perturb_core.data.build import build  # noqa: E402
from perturb_core.data.fetch import fetch  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = get_settings().with_(data_dir=Path(tmp))
        t0 = time.perf_counter()
        fetch(settings=settings)
        t_fetch = time.perf_counter() - t0
        steps = build(settings=settings, workers=args.workers)
        total = time.perf_counter() - t0
    peak_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    peak_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"machine: {machine()}")
    print(f"fetch (mirror copy + sha256): {t_fetch:.1f} s")
    for s in steps:
        print(f"build {s.artifact:<14} {s.seconds:6.1f} s")
    print(f"total fetch + build: {total:.1f} s")
    print(f"peak RSS: main {peak_self:.0f} MiB, largest worker {peak_children:.0f} MiB")


if __name__ == "__main__":
    main()
