"""Benchmark: SVG and PNG export of the app's figures (Kaleido driving a headless Chrome/Chromium).

Times what one click on a chart's SVG or PNG button costs on the server (``pages._export.figure_bytes``:
starts the browser, renders, closes it), for a three-point figure and for the Retrieval explorer's
real scatter (one point per gene: Trametinib in A498, Tahoe, ``kg_mechanism``). Median and max of
``--repeats`` runs, after one untimed warm-up (the first browser start of a process is slower).

    python bench/bench_export.py --repeats 3
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
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import plotly.graph_objects as go  # noqa: E402
from _machine import machine  # noqa: E402

from pages import _export as export  # noqa: E402
from pages import _figures as figs  # noqa: E402
from perturb_core.data.registry import load_signatures  # noqa: E402
from perturb_core.retrieval import predict_query  # noqa: E402


def _time(fig: go.Figure, fmt: export.ImageFormat, repeats: int) -> tuple[float, float, int]:
    times, size = [], 0
    for _ in range(repeats):
        t = time.perf_counter()
        size = len(export.figure_bytes(fig, fmt))
        times.append(time.perf_counter() - t)
    return statistics.median(times), max(times), size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    browser = export.browser_path()
    if browser is None:
        sys.exit(export.NO_BROWSER)
    print(
        f"Machine: {machine()}; load average {os.getloadavg()[0]:.1f} at start; "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; browser {Path(browser).name}."
    )
    small = go.Figure(go.Scatter(x=[1, 2, 3], y=[3, 1, 2], mode="markers"))
    figs.plotly_layout(small)
    ex = predict_query(load_signatures("tahoe"), cell_line="A498", drug="Trametinib", selector="kg_mechanism")
    scatter = figs.prediction_scatter(ex.prediction, ex.truth, ex.genes)
    n_points = sum(len(t.x) for t in scatter.data if t.x is not None)
    t = time.perf_counter()
    export.figure_bytes(small, "svg")
    print(f"Warm-up (first export of the process): {time.perf_counter() - t:.2f} s.\n")
    print("| figure | format | median s | max s | file size |")
    print("|---|---|---|---|---|")
    for label, fig in (("3 points", small), (f"LGR scatter, {n_points:,} points", scatter)):
        for fmt in ("svg", "png"):
            med, mx, size = _time(fig, fmt, args.repeats)
            print(f"| {label} | {fmt.upper()} | {med:.2f} | {mx:.2f} | {size / 1024:,.0f} KiB |")


if __name__ == "__main__":
    main()
