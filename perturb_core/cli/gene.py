"""``python -m perturb_core gene GENE`` (the gene view; contract in DESIGN.md)."""

from __future__ import annotations

import argparse
import sys

from perturb_core.cli import print_json
from perturb_core.config import get_settings


def _fmt(v: object) -> str:
    return "—" if v is None or v != v else f"{float(v):+.2f}"  # type: ignore[arg-type]


def _gene(args: argparse.Namespace) -> int:
    from perturb_core.explore import gene_report

    lines = [x.strip() for x in args.lines.split(",") if x.strip()]

    def progress(msg: str) -> None:
        if not args.quiet:
            print(f"… {msg}", file=sys.stderr)

    view = gene_report(
        args.gene,
        dataset=args.dataset,
        lines=lines,
        with_core_auroc=not args.no_core_auroc,
        settings=get_settings(),
        progress=progress,
    )
    doc = view.to_dict(limit=args.top)
    if args.json:
        print_json(doc)
        return 0
    print(f"{doc['gene']}: {doc['n_signatures']} signatures in {doc['dataset'] or '— (not measured)'}")
    print(f"values: {doc['units']}")
    for title, key in (("drugs that raise it most", "drugs_up"), ("drugs that lower it most", "drugs_down")):
        print(f"{title} (mean over lines; lines with |z| > {doc['response_threshold']:g} up/down):")
        for r in doc[key]:
            print(
                f"  {r['drug']:<34} mean {_fmt(r['mean'])}  lines {r['n_lines']:>2} "
                f"up {r['n_up']:>2} down {r['n_down']:>2}  {r['moa']}"
            )
    kd = doc["knockdowns"]
    print(f"PerturbQA knock-downs: {kd['n_de']} of {kd['n_pairs']} labelled pairs DE (split per row):")
    for r in kd["responding"][: args.top]:
        print(f"  {r['line']:<7} {r['perturbation']:<14} {r['direction'] or '—':<5} {r['split']}")
    print(f"CORE-Voting per-gene AUROC ({doc['core_auroc_definition']}):")
    for r in doc["core_auroc"]:
        a = "—" if r["auroc"] is None else f"{r['auroc']:.3f}"
        print(f"  {r['line']:<7} {a} over {r['n_test']} test pairs")
    print(f"pathways and GO terms ({len(doc['gene_sets'])}):")
    for r in doc["gene_sets"][: args.top]:
        print(f"  {r['source_label']:<24} {r['term']} ({r['size']} genes)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``gene`` command."""
    p = sub.add_parser("gene", help="the gene view: which perturbations move this gene")
    p.add_argument("gene", help="gene symbol or Ensembl id (any case)")
    p.add_argument("--dataset", default="tahoe", help="signature dataset (default tahoe)")
    p.add_argument(
        "--lines", default="k562,rpe1,hepg2,jurkat", help="PerturbQA lines to search (comma-separated)"
    )
    p.add_argument("--no-core-auroc", action="store_true", help="skip CORE's per-gene AUROC (faster)")
    p.add_argument("--top", type=int, default=15, help="rows per list in the output (default 15)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--quiet", action="store_true", help="no progress messages")
    p.set_defaults(func=_gene)
