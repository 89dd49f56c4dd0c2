"""LGR choices and defaults: regimes, aggregations, selector names, k, and their validation."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal, get_args

import numpy as np

from perturb_core.errors import ValidationError, check_choice

Regime = Literal["unseen-drug", "unseen-cell-line", "open-world"]
Aggregation = Literal["mean", "rank_weighted"]
SelectorName = Literal["llm", "kg_mechanism", "chem_knn", "transcriptome_knn", "random", "oracle"]

REGIMES: tuple[str, ...] = get_args(Regime)
"""The evaluation regimes (DESIGN.md): unseen drug, unseen cell line, open world."""
REGIME_LABELS: Mapping[str, str] = MappingProxyType(
    {
        "open-world": "open world: pool = every other drug measured in the line",
        "unseen-drug": "unseen drug: pool = training drugs only",
        "unseen-cell-line": "unseen cell line: the line is held out of training",
    }
)
"""Human label of every regime (what the candidate pool holds)."""

AGGREGATIONS: tuple[str, ...] = get_args(Aggregation)
"""Ways to combine neighbour deltas: uniform mean (the paper) or rank-weighted mean (weights 1/rank)."""
AGGREGATION_LABELS: Mapping[str, str] = MappingProxyType(
    {"mean": "uniform mean (paper)", "rank_weighted": "rank-weighted (1/rank)"}
)
"""Human label of every aggregation."""

DEFAULT_K = 10
DEFAULT_HYBRID_MIN_K = 3
"""Fewer valid neighbours than this (and than the pool allows) triggers chemistry padding."""
N_EVAL_GENES = 2000
"""Metrics use this many most variable genes of the training deltas."""
NEIGHBOUR_LOG = "lgr_neighbours.jsonl"
"""Per-query LLM neighbour records are appended to ``<cache dir>/`` this file."""


def check_regime(regime: object) -> str:
    """The canonical regime name (any case or punctuation).

    Raises:
        UnknownNameError: not one of :data:`REGIMES` (the message lists them).
    """
    return check_choice("regime", regime, REGIMES)


def check_aggregation(aggregation: object) -> str:
    """The canonical aggregation name.

    Raises:
        UnknownNameError: not one of :data:`AGGREGATIONS`.
    """
    return check_choice("aggregation", aggregation, AGGREGATIONS)


def check_int(name: str, value: object, minimum: int) -> int:
    """``value`` as an int, if it is an integer (not a bool) >= ``minimum``.

    Raises:
        ValidationError: otherwise (the message names the argument and the bound).
    """
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValidationError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)
