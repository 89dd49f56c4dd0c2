"""``python -m perturb_core lgr ...`` (placeholder until its issue lands)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``lgr`` command group."""
    p = sub.add_parser("lgr", help="(not implemented yet)")
    p.set_defaults(func=lambda args: 1)
