"""Command line: ``python -m perturb_core {data,lgr,core,methods,llm} ...`` (contract in DESIGN.md).

Each command group lives in its own module with a ``register(subparsers)`` function that
adds its parser and sets ``func`` (called with the parsed namespace, returning an exit
code). Errors of this package print one line to stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from perturb_core.errors import PerturbCoreError
from perturb_core.serialize import dumps

__all__ = ["main", "print_json"]

_GROUPS = ("data", "lgr", "core", "methods", "llm", "gene", "connectivity")


def print_json(obj: object) -> None:
    """Print ``obj`` as JSON (NaN -> null, NumPy scalars -> numbers)."""
    print(dumps(obj))


def build_parser() -> argparse.ArgumentParser:
    """The full parser with every command group registered."""
    parser = argparse.ArgumentParser(
        prog="python -m perturb_core",
        description="LLM- and knowledge-graph-based perturbation reasoning (LGR, CORE) on real data.",
    )
    sub = parser.add_subparsers(dest="group", required=True, metavar="{" + ",".join(_GROUPS) + "}")
    for group in _GROUPS:
        importlib.import_module(f"perturb_core.cli.{group}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except PerturbCoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. --out pointing at a folder or a read-only place
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"error: {exc.strerror or exc}{where}; check the path and its permissions", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
