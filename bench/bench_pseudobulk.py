"""Pseudobulk on Dask: peak memory and throughput on a large synthetic sparse file, and a projection.

    nice python bench/bench_pseudobulk.py --out /tmp/pb_bench                  # 2,000,000 x 2,000
    nice python bench/bench_pseudobulk.py --out /tmp/pb_bench --scheduler local
    nice python bench/bench_pseudobulk.py --out /tmp/pb_bench --cells 200000 --genes 20000 --library 3000

Generates the file once (CSR ``.h5ad``, Poisson counts drawn sparsely, written chunk by chunk;
kept in ``--out`` for reruns; never inside the repository), then runs
``python -m perturb_core data pseudobulk`` in a child process against a throw-away data folder
and samples the resident memory (RSS) of that process and all its children (the Dask workers
of ``--scheduler local``) every 0.1 s. Prints one JSON record: sizes, wall time, cells per second
per core, peak RSS, and a projection for Tahoe-100M.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import contextlib

from bench._machine import machine
from perturb_core.testing.cells import simulate_cells, write_h5ad

TAHOE_CELLS = 100_600_000
TAHOE_GENES = 62_710
TAHOE_PLATES = 14


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


def _generate(args: argparse.Namespace) -> Path:
    path = Path(args.out) / f"cells_{args.cells}x{args.genes}_lib{args.library}.h5ad"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    cells = simulate_cells(
        args.cells,
        args.genes,
        n_plates=4,
        n_cell_lines=10,
        n_drugs=20,
        mean_library=args.library,
        dispersion=0.0,
        seed=0,
    )
    tmp = path.with_suffix(".tmp")
    write_h5ad(cells, tmp, chunk_cells=max(1_000, 40_000_000 // args.genes))  # ~ constant memory
    tmp.rename(path)
    print(f"generated {path} in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="folder for the generated file (outside the repository)")
    ap.add_argument("--cells", type=int, default=2_000_000)
    ap.add_argument("--genes", type=int, default=2_000)
    ap.add_argument("--library", type=int, default=300, help="mean counts per cell before plate/line effects")
    ap.add_argument("--scheduler", default="synchronous")
    ap.add_argument("--chunk-cells", type=int, default=20_000)
    ap.add_argument("--de", action="store_true", help="also make DE calls (more work per chunk)")
    args = ap.parse_args()
    path = _generate(args)
    with h5py.File(path, "r") as f:
        nnz = int(f["X"]["indptr"][-1])
    with tempfile.TemporaryDirectory() as data_dir:
        env = {**os.environ, "PERTURB_CORE_DATA_DIR": data_dir}
        cmd = [
            sys.executable,
            "-m",
            "perturb_core",
            "data",
            "pseudobulk",
            str(path),
            "--name",
            "bench",
            "--cell-line-col",
            "cell_line",
            "--drug-col",
            "drug",
            "--control",
            "DMSO_TF",
            "--batch-col",
            "plate",
            "--scheduler",
            args.scheduler,
            "--chunk-cells",
            str(args.chunk_cells),
            "--json",
            "--quiet",
            *(["--de"] if args.de else []),
        ]
        t = time.perf_counter()
        proc = psutil.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        peak = 0
        while proc.poll() is None:
            peak = max(peak, _tree_rss(proc))
            time.sleep(0.1)
        wall = time.perf_counter() - t
        out, err = proc.communicate()
    if proc.returncode:
        sys.exit(f"pseudobulk failed ({proc.returncode}): {err[-2000:]}")
    res = json.loads(out)
    cores = 1 if args.scheduler == "synchronous" else 2
    cps = args.cells / res["seconds"]
    per_core = cps / cores
    nnz_per_cell = nnz / args.cells
    # Work per cell ~ its non-zeros (read + sparse product) plus a dense (groups x genes) partial per chunk.
    # At the same non-zeros per cell the projection scales by cells only; at Tahoe's gene count each cell
    # has more non-zeros: the projection scales the measured time per non-zero by nnz_per_cell_tahoe.
    seconds_per_nnz = res["seconds"] * cores / nnz
    proj = {
        f"nnz_per_cell_{k}": round(TAHOE_CELLS * k * seconds_per_nnz / 3600, 1) for k in (1_000, 2_000, 4_000)
    }
    record = {
        "machine": machine(),
        "load_1min": round(os.getloadavg()[0], 2),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cells": args.cells,
        "genes": args.genes,
        "nnz": nnz,
        "nnz_per_cell": round(nnz_per_cell, 1),
        "file_gb": round(path.stat().st_size / 1e9, 2),
        "scheduler": args.scheduler,
        "de": args.de,
        "chunk_cells": args.chunk_cells,
        "groups": res["n_groups"],
        "seconds_pipeline": res["seconds"],
        "seconds_wall_incl_startup": round(wall, 1),
        "cells_per_second": round(cps),
        "cells_per_second_per_core": round(per_core),
        "peak_rss_gb_incl_workers": round(peak / 1e9, 3),
        "tahoe_core_hours_by_cells_same_nnz": round(TAHOE_CELLS / per_core / 3600, 1),
        "tahoe_core_hours_by_nnz": proj,
    }
    print(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
