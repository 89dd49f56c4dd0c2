"""``python -m perturb_core data {fetch,build,info,import,pseudobulk}``."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
from tqdm import tqdm

from perturb_core.cli import print_json
from perturb_core.config import get_settings


def _fetch(args: argparse.Namespace) -> int:
    from perturb_core.data.fetch import fetch

    settings = get_settings()
    if args.corum:
        settings = settings.with_(enable_corum=True)
    mirror = None if args.no_mirror else (Path(args.mirror) if args.mirror else "settings")
    bar = tqdm(total=None, unit="file", desc="fetch", disable=args.quiet, file=sys.stderr)

    def progress(i: int, n: int, name: str) -> None:
        bar.total = n
        bar.set_postfix_str(name[-40:])
        bar.update(1)

    results = fetch(mirror=mirror, settings=settings, progress=progress)
    bar.close()
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    print(
        f"{len(results)} files verified in {settings.raw_dir}: "
        + ", ".join(f"{v} {k}" for k, v in counts.items())
    )
    return 0


def _build(args: argparse.Namespace) -> int:
    from perturb_core.data.build import build

    settings = get_settings()
    if args.corum:
        settings = settings.with_(enable_corum=True)
    bars: dict[str, tqdm] = {}

    def progress(artifact: str, i: int, n: int, msg: str) -> None:
        if args.quiet:
            return
        bar = bars.get(artifact)
        if bar is None:
            bar = bars[artifact] = tqdm(
                total=n, desc=f"build {artifact}", unit="step", file=sys.stderr, leave=True
            )
        bar.total = n
        bar.n = i
        bar.set_postfix_str(msg[-40:])
        bar.refresh()

    steps = build(settings=settings, force=args.force, progress=progress, workers=args.workers)
    for bar in bars.values():
        bar.close()
    for s in steps:
        print(f"{s.artifact:<14} {s.status:<11} {s.seconds:6.1f} s")
    print(f"artifacts in {settings.processed_dir}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from perturb_core.data.info import data_info

    info = data_info()
    if args.json:
        print_json(info)
        return 0
    for name, d in info["datasets"].items():
        if d["kind"] == "signatures":
            print(
                f"{name:<22} signatures  {d['cell_lines']:>3} cell lines  {d['drugs']:>4} drugs  "
                f"{d['signatures']:>5} signatures  {d['genes']:>6} genes"
            )
        else:
            de = d["de"]
            print(
                f"{name:<22} labels      DE pairs train {de['train']['pairs']:>7} test {de['test']['pairs']:>6}  "
                f"positive rate {de['train']['positive_rate']:.3f}"
            )
    dr = info["drugs"]
    print(
        f"drugs: {dr['drugs']} ({dr['with_fingerprint']} with fingerprints); unmatched: {', '.join(dr['unmatched'])}"
    )
    g = info["graph"]
    print("graph nodes: " + ", ".join(f"{k} {v}" for k, v in g["nodes"].items()))
    print("graph edges: " + ", ".join(f"{k} {v}" for k, v in g["edges"].items()))
    return 0


def _import(args: argparse.Namespace) -> int:
    from perturb_core.data.importer import import_dataset

    out = import_dataset(
        args.path,
        name=args.name,
        cell_line_col=args.cell_line_col,
        drug_col=args.drug_col,
        overwrite=args.force,
    )
    print(f"imported {args.name!r} -> {out}; use --dataset {args.name}")
    return 0


def _gene_list(path: str | None) -> list[str] | None:
    """Genes of a ``--genes`` file: one per line (blank lines and ``#`` comments ignored)."""
    from perturb_core.errors import DataError

    if path is None:
        return None
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise DataError(
            f"cannot read the gene list {path} ({exc.strerror or exc}); give a text file, one gene per line"
        ) from exc
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def _pseudobulk(args: argparse.Namespace) -> int:
    from perturb_core.pseudobulk import PSEUDOBULK_UNITS, pseudobulk_dataset

    bar = tqdm(total=None, unit="task", desc="pseudobulk", disable=args.quiet, file=sys.stderr)

    def progress(done: int, total: int) -> None:
        if (bar.n, bar.total) == (done, total):
            return
        bar.total = total
        bar.n = done
        bar.refresh()

    def on_client(client: object) -> None:
        if not args.quiet:
            link = getattr(client, "dashboard_link", None)
            print(f"dask client {client}; dashboard: {link}", file=sys.stderr)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out, result = pseudobulk_dataset(
            args.inputs,
            name=args.name,
            overwrite=args.force,
            cell_line_col=args.cell_line_col,
            drug_col=args.drug_col,
            control=args.control,
            batch_col=args.batch_col,
            dose_col=args.dose_col,
            layer=args.layer,
            scheduler=args.scheduler,
            chunk_cells=args.chunk_cells,
            min_counts=args.min_counts,
            genes=_gene_list(args.genes),
            de=args.de,
            de_threshold=args.de_threshold,
            de_alpha=args.de_alpha,
            progress=progress,
            on_client=on_client,
        )
    bar.close()
    notes = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    for note in notes:
        print(f"warning: {note}", file=sys.stderr)
    a = result.adata
    summary = {
        "name": args.name,
        "path": str(out),
        "units": PSEUDOBULK_UNITS,
        "n_cells": result.n_cells,
        "n_groups": int(a.uns["provenance"]["n_groups"]),
        "n_signatures": int(a.n_obs),
        "n_cell_lines": int(a.obs["cell_line"].nunique()),
        "n_drugs": int(a.obs["drug"].nunique()),
        "n_genes": int(a.n_vars),
        "masked_fraction": float(np.isnan(a.X).mean()) if a.X.size else 0.0,
        "scheduler": args.scheduler,
        "chunk_cells": args.chunk_cells,
        "seconds": round(result.seconds, 3),
        "cells_per_second": round(result.n_cells / max(result.seconds, 1e-9), 1),
        "de_calls": {"up": int((a.layers["de"] > 0).sum()), "down": int((a.layers["de"] < 0).sum())}
        if "de" in a.layers
        else None,
        "warnings": notes,
    }
    if args.json:
        print_json(summary)
        return 0
    print(
        f"pseudobulk {args.name!r}: {summary['n_cells']:,} cells -> {summary['n_signatures']} signatures "
        f"({summary['n_cell_lines']} cell lines x {summary['n_drugs']} drugs) x {summary['n_genes']} genes, "
        f"{summary['masked_fraction']:.1%} masked; units: {PSEUDOBULK_UNITS} (not rank scores)"
    )
    print(
        f"{summary['seconds']:.1f} s ({summary['cells_per_second']:,.0f} cells/s) -> {out}; use --dataset {args.name}"
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``data`` command group."""
    p = sub.add_parser("data", help="fetch, build, inspect and import datasets")
    dsub = p.add_subparsers(dest="command", required=True)

    f = dsub.add_parser("fetch", help="copy (from the mirror) or download the raw files, verifying sha256")
    f.add_argument("--mirror", help="mirror folder (default: perturb_core.toml or PERTURB_CORE_MIRROR)")
    f.add_argument("--no-mirror", action="store_true", help="download from the public URLs")
    f.add_argument("--corum", action="store_true", help="also fetch CORUM (CC BY-NC licence)")
    f.add_argument("--quiet", action="store_true", help="no progress bar")
    f.set_defaults(func=_fetch)

    b = dsub.add_parser("build", help="build datasets, labels, drug table and graph (idempotent)")
    b.add_argument("--force", action="store_true", help="rebuild everything")
    b.add_argument(
        "--workers", type=int, default=None, help="parallel signature readers (default: all cores)"
    )
    b.add_argument("--corum", action="store_true", help="include CORUM complexes (CC BY-NC licence)")
    b.add_argument("--quiet", action="store_true", help="no progress bars")
    b.set_defaults(func=_build)

    i = dsub.add_parser("info", help="counts per dataset, drugs and graph")
    i.add_argument("--json", action="store_true", help="machine-readable output")
    i.set_defaults(func=_info)

    m = dsub.add_parser("import", help="register your own .h5ad or folder of signature files")
    m.add_argument("path", help=".h5ad (obs: cell line and drug columns; X: deltas) or folder of .rda files")
    m.add_argument("--name", required=True, help="dataset name to use with --dataset")
    m.add_argument("--cell-line-col", default=None, help="obs column with cell lines (auto-detected)")
    m.add_argument("--drug-col", default=None, help="obs column with drugs (auto-detected)")
    m.add_argument("--force", action="store_true", help="replace a dataset already imported under this name")
    m.set_defaults(func=_import)

    pb = dsub.add_parser(
        "pseudobulk",
        help="single-cell counts (.h5ad / AnnData zarr) -> control-matched pseudobulk deltas on Dask",
    )
    pb.add_argument(
        "inputs", nargs="+", metavar="INPUT", help=".h5ad files or AnnData .zarr stores (same genes)"
    )
    pb.add_argument("--name", required=True, help="dataset name to use with --dataset")
    pb.add_argument("--cell-line-col", required=True, help="obs column with cell lines")
    pb.add_argument("--drug-col", required=True, help="obs column with drugs (controls included)")
    pb.add_argument("--control", required=True, help="control label in the drug column (e.g. DMSO_TF)")
    pb.add_argument("--batch-col", required=True, help="obs column with the batch (e.g. plate)")
    pb.add_argument(
        "--dose-col", default=None, help="obs column with the dose (one signature per drug and dose)"
    )
    pb.add_argument("--layer", default=None, help="read raw counts from this layer instead of X")
    pb.add_argument(
        "--scheduler",
        default="synchronous",
        help="synchronous (default), local (LocalCluster of 2 worker processes) or tcp://HOST:PORT",
    )
    pb.add_argument("--chunk-cells", type=int, default=20_000, help="cells per Dask task (default 20000)")
    pb.add_argument(
        "--min-counts",
        type=float,
        default=10.0,
        help="mask genes with fewer treated+control counts (default 10)",
    )
    pb.add_argument(
        "--genes",
        default=None,
        help="text file, one gene per line: keep only these genes (libraries use all)",
    )
    pb.add_argument(
        "--de",
        action="store_true",
        help="also call DE genes per condition (|delta| + cell-level Welch test; layers de, qvalue)",
    )
    pb.add_argument(
        "--de-threshold", type=float, default=0.5, help="minimum |delta| of a DE call (default 0.5)"
    )
    pb.add_argument("--de-alpha", type=float, default=0.05, help="q-value cutoff of a DE call (default 0.05)")
    pb.add_argument(
        "--force", action="store_true", help="replace a dataset already registered under this name"
    )
    pb.add_argument("--json", action="store_true", help="machine-readable summary")
    pb.add_argument("--quiet", action="store_true", help="no progress bar")
    pb.set_defaults(func=_pseudobulk)
