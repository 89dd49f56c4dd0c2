"""``python -m perturb_core lgr compare``: two LGR predictions side by side (see :mod:`perturb_core.compare`).

Hooked into the ``lgr`` group by :func:`add_parser` (one call at the end of ``cli/lgr.py``).
"""

from __future__ import annotations

import argparse

from perturb_core.cli import print_json
from perturb_core.config import get_settings

__all__ = ["add_parser"]

_REGIMES = ("unseen-drug", "unseen-cell-line", "open-world")


def _fmt(v: object) -> str:
    return "—" if v is None else f"{v:.3f}"  # type: ignore[str-format]


def _compare(args: argparse.Namespace) -> int:
    from perturb_core.compare import compare_predictions

    cmp = compare_predictions(
        args.dataset,
        cell_line=args.cell_line,
        drug=args.drug,
        selector=args.selector,
        cell_line_b=args.cell_line_b,
        drug_b=args.drug_b,
        selector_b=args.selector_b,
        k=args.k,
        aggregation=args.aggregation,
        regime=args.regime,
        seed=args.seed,
        settings=get_settings(),
    )
    doc = cmp.to_dict(n_top_genes=args.top_genes)
    if args.json:
        print_json(doc)
        return 0
    left, right = cmp.side_label(cmp.left), cmp.side_label(cmp.right)
    print(f"{doc['left']['dataset']}, {cmp.label} ({doc['left']['regime']}, k={doc['left']['k']})")
    print(f"  left:  {left}\n  right: {right}")
    print(f"{'metric':<44}{'left':>9}{'right':>9}{'right−left':>12}  better")
    for row in doc["metrics"].values():
        diff = "—" if row["difference"] is None else f"{row['difference']:+.3f}"
        flag = " *" if row["notable"] else ""
        print(
            f"{row['label'][:43]:<44}{_fmt(row['left']):>9}{_fmt(row['right']):>9}{diff:>12}  "
            f"{row['better'] or '—'}{flag}"
        )
    nb = doc["neighbours"]
    print(f"neighbours: {len(nb['shared'])} shared (Jaccard {_fmt(nb['jaccard'])})")
    for s in nb["shared"]:
        print(f"  = {s['name']:<36} rank {s['rank_left']:>2} | {s['rank_right']:>2}")
    for n in nb["only_left"]:
        print(f"  < {n}")
    for n in nb["only_right"]:
        print(f"  > {n}")
    sim = doc["similarity"]
    print(
        f"Pearson r over {sim['n_genes']} shared genes: predictions {_fmt(sim['prediction_pearson'])}, "
        f"observed responses {_fmt(sim['observed_pearson'])}"
    )
    print("differences (* = notable, |difference| >= 0.05):")
    for d in doc["differences"]:
        print(f"  - {d}")
    return 0


def add_parser(lsub: argparse._SubParsersAction) -> None:
    """Add ``compare`` to the ``lgr`` subcommands."""
    c = lsub.add_parser(
        "compare",
        help="two predictions side by side: two selectors, two drugs in one line, or one drug in two lines",
        description="Give the left query with --cell-line/--drug/--selector and change exactly one of them "
        "for the right with --cell-line-b, --drug-b or --selector-b.",
    )
    c.add_argument("--dataset", default="tahoe")
    c.add_argument("--cell-line", required=True)
    c.add_argument("--drug", required=True)
    c.add_argument("--selector", default="kg_mechanism", help="left selector (default kg_mechanism)")
    c.add_argument("--cell-line-b", default=None, help="right cell line (same drug, two lines)")
    c.add_argument("--drug-b", default=None, help="right drug (two drugs, one line)")
    c.add_argument("--selector-b", default=None, help="right selector (same query, two selectors)")
    c.add_argument("--k", type=int, default=10)
    c.add_argument("--regime", default="open-world", choices=_REGIMES)
    c.add_argument(
        "--aggregation", default=None, help="mean, rank_weighted or residual (default: the regime's)"
    )
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--top-genes", type=int, default=10, help="genes per direction in the top-gene overlap")
    c.add_argument("--json", action="store_true", help="machine-readable output")
    c.set_defaults(func=_compare)
