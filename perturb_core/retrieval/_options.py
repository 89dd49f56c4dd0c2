"""LGR choices and defaults: regimes, aggregations, selector names, k, and their validation."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal, get_args

import numpy as np

from perturb_core.errors import ValidationError, check_choice, check_int_range

Regime = Literal["unseen-drug", "unseen-cell-line", "open-world"]
Aggregation = Literal["mean", "rank_weighted", "residual"]
SelectorName = Literal[
    "llm", "kg_mechanism", "chem_knn_retrieval", "transcriptome_knn", "random", "oracle", "residual_oracle"
]

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
"""Ways to combine neighbour deltas: mean (the paper), rank-weighted mean (1/rank), or residual
(additive baseline + the weighted mean of the neighbours' residuals from their own additive fits)."""
AGGREGATION_LABELS: Mapping[str, str] = MappingProxyType(
    {
        "mean": "plain mean of the neighbours' deltas (paper)",
        "rank_weighted": "rank-weighted mean (1/rank)",
        "residual": "residual: additive baseline + mean of the neighbours' residuals",
    }
)
"""Human label of every aggregation."""
AGGREGATION_DEFINITIONS: Mapping[str, str] = MappingProxyType(
    {
        "mean": "Δ̂[c,d] = Σ_e w_e Δ[c,e] / Σ_e w_e (w_e = 1, or s_e^p with a similarity power p)",
        "rank_weighted": "Δ̂[c,d] = Σ_e w_e Δ[c,e] / Σ_e w_e with w_e = 1/rank(e) (× s_e^p)",
        "residual": "Δ̂[c,d] = A[c,d] + Σ_e w_e (Δ[c,e] − A[c,e]) / Σ_e w_e, A = drug mean over other "
        "training lines + line mean over the query's pool − grand training mean (the additive baseline)",
    }
)
"""Formula of every aggregation (s_e: the selector's similarity, p: ``similarity_power``)."""

DEFAULT_AGGREGATION: Mapping[str, str] = MappingProxyType(
    {"unseen-drug": "mean", "unseen-cell-line": "residual", "open-world": "residual"}
)
"""Default aggregation per regime: ``residual`` where the query drug has been measured in other
lines (unseen cell line, open world); the paper's plain mean for an unseen drug (no drug term)."""
DEFAULT_SIMILARITY_POWER = 0.0
"""Weights w_e = max(s_e, 0)^p for selectors with a similarity s_e (0: uniform, the paper)."""

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


def default_aggregation(regime: str, aggregation: object | None = None) -> str:
    """``aggregation`` checked, or the regime's default (:data:`DEFAULT_AGGREGATION`) when ``None``."""
    if aggregation is None:
        return DEFAULT_AGGREGATION[check_regime(regime)]
    return check_aggregation(aggregation)


MAX_POWER = 64.0
"""Largest similarity power: r**64 already gives the best neighbour almost all the weight."""


def check_power(value: object) -> float:
    """A similarity power: a finite number in ``0..MAX_POWER``.

    Raises:
        ValidationError: otherwise.
    """
    msg = f"similarity_power must be a number in 0..{MAX_POWER:g} (e.g. 4); got {value!r}"
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValidationError(msg)
    if not np.isfinite(value) or not 0 <= value <= MAX_POWER:
        raise ValidationError(msg)
    return float(value)


def check_int(name: str, value: object, minimum: int, maximum: int | None = None) -> int:
    """``value`` as an int, if it is an integer (not a bool) >= ``minimum`` (and <= ``maximum``).

    Raises:
        ValidationError: otherwise (the message names the argument and the bounds).
    """
    if maximum is not None:
        return check_int_range(name, value, minimum, maximum)
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValidationError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)
