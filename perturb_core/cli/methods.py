"""``python -m perturb_core methods [--json | --markdown]``: every method and metric, from the registries."""

from __future__ import annotations

import argparse

from perturb_core.cli import print_json


def _methods(args: argparse.Namespace) -> int:
    from perturb_core.evaluate.catalogue import catalogue, catalogue_markdown

    if args.markdown:
        print(catalogue_markdown(), end="")
        return 0
    doc = catalogue()
    if args.json:
        print_json(doc)
        return 0
    for section, entries in doc.items():
        print(f"{section}:")
        for name, info in entries.items():
            label = info["label"] if isinstance(info, dict) else info
            print(f"  {name:<28} {label}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``methods`` command."""
    p = sub.add_parser(
        "methods", help="list every method (LGR, CORE) and metric with its label and definition"
    )
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print JSON (labels, definitions, units)")
    fmt.add_argument("--markdown", action="store_true", help="print the tables of docs/methods.md")
    p.set_defaults(func=_methods)
