"""``python -m perturb_core connectivity --up FILE --down FILE`` (signature query; contract in DESIGN.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

from perturb_core.cli import print_json
from perturb_core.config import get_settings
from perturb_core.errors import ValidationError


def _read(path: str | None, what: str) -> str:
    if path is None:
        return ""
    p = Path(path)
    if not p.is_file():
        raise ValidationError(
            f"{what} file {path!r} does not exist or is not a file; give a text file of genes"
        )
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError(
            f"{what} file {path!r} is not UTF-8 text ({exc}); give a plain text file"
        ) from exc


def _connectivity(args: argparse.Namespace) -> int:
    from perturb_core.explore import parse_gene_list, parse_ranked_list, signature_query

    if args.ranked and (args.up or args.down):
        raise ValidationError("give either --ranked or --up/--down, not both")
    if args.ranked:
        up, down = parse_ranked_list(_read(args.ranked, "ranked list"), args.n)
    elif args.up or args.down:
        up, down = parse_gene_list(_read(args.up, "up")), parse_gene_list(_read(args.down, "down"))
    else:
        raise ValidationError("give --up FILE and/or --down FILE (one gene per line), or --ranked FILE")
    res = signature_query(up, down, dataset=args.dataset, cell_line=args.cell_line, settings=get_settings())
    doc = res.to_dict(limit=args.top)
    if args.json:
        print_json(doc)
        return 0
    where = res.cell_line or "all cell lines"
    print(f"{len(res.table)} signatures of {res.dataset} ({where}) scored by WTCS")
    print(f"  {doc['definition']}")
    print(f"  up {len(res.query.up)} genes, down {len(res.query.down)} genes")
    if res.query.unknown:
        print(f"  not measured in {res.dataset} (ignored): {', '.join(res.query.unknown)}")
    print(f"{'cell line':<14}{'drug':<34}{'WTCS':>7}{'n_up':>6}{'n_dn':>6}  MoA")
    t = res.table
    for r in t.head(args.top).itertuples():
        print(f"{r.cell_line:<14}{r.drug:<34}{r.score:>+7.3f}{r.n_up:>6}{r.n_down:>6}  {r.moa}")
    print("…")
    for r in t.tail(min(args.top, 5)).itertuples():
        print(f"{r.cell_line:<14}{r.drug:<34}{r.score:>+7.3f}{r.n_up:>6}{r.n_down:>6}  {r.moa}")
    if res.cell_line is None:
        print("per drug (mean WTCS over lines):")
        for r in res.by_drug().head(args.top).itertuples():
            print(f"  {r.drug:<34}{r.mean_score:>+7.3f} over {r.n_lines} lines  {r.moa}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``connectivity`` command."""
    p = sub.add_parser("connectivity", help="rank drugs against a gene signature (CMap-style WTCS)")
    p.add_argument(
        "--up", default=None, help="file of up-regulated genes (one per line, or separated by commas)"
    )
    p.add_argument("--down", default=None, help="file of down-regulated genes")
    p.add_argument(
        "--ranked",
        default=None,
        help="file of a ranked list instead (GENE or GENE<TAB>score per line; first = most up)",
    )
    p.add_argument("--n", type=int, default=100, help="genes from each end of a ranked list (default 100)")
    p.add_argument("--dataset", default="tahoe", help="signature dataset (default tahoe)")
    p.add_argument("--cell-line", default=None, help="one cell line (default: all lines)")
    p.add_argument("--top", type=int, default=20, help="rows shown (and in --json, each end) (default 20)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_connectivity)
