"""``python -m perturb_core core ...`` (placeholder until its issue lands)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``core`` command group."""
    p = sub.add_parser("core", help="(not implemented yet)")
    p.set_defaults(func=lambda args: 1)
