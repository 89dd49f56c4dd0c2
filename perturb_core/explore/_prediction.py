"""Pathway enrichment of one LGR prediction: predicted vs observed top genes, side by side.

The top ``n_top`` up- and down-regulated genes of the predicted and of the observed delta are
each tested against the graph's gene sets (:func:`~perturb_core.explore.enrich`). The universe
is the set the four lists are drawn from: the query's evaluation genes (the 2,000 most variable
genes of the training deltas, see :data:`~perturb_core.retrieval.N_EVAL_GENES`) with a finite
prediction and observation. (A universe larger than the genes a list can come from would make
every term that is common among variable genes look enriched.) Agreement: per direction, the
terms with ``q < alpha`` in both the predicted and the observed list.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from perturb_core.errors import ValidationError, check_int_range
from perturb_core.explore._enrichment import (
    DEFAULT_MAX_SIZE,
    DEFAULT_MIN_SIZE,
    NONCODING_RULE,
    GeneSets,
    enrich,
    significant,
    to_records,
    uninformative_genes,
)

__all__ = ["DEFAULT_ALPHA", "DEFAULT_N_TOP", "HIDE_RULE", "PredictionEnrichment", "enrich_prediction"]

DEFAULT_N_TOP = 50
"""Genes per top list (up and down, predicted and observed)."""
DEFAULT_ALPHA = 0.05
"""q-value threshold for an enriched term."""
HIDE_RULE = (
    "hidden from the top lists (and from the universe): ribosomal proteins (RPL*/RPS*), mitochondrially "
    "encoded genes (MT-), bare Ensembl ids, and " + NONCODING_RULE
)
"""What the hide toggle removes."""

Side = Literal["predicted", "observed"]
Direction = Literal["up", "down"]


@dataclass(frozen=True)
class PredictionEnrichment:
    """Enrichment of the predicted and observed top genes of one prediction.

    Attributes:
        n_top: genes per list.
        alpha: q threshold for "enriched".
        hidden: whether uninformative genes were hidden (see :data:`HIDE_RULE`).
        n_hidden: how many universe genes the toggle removed.
        universe_size: N, genes in the universe.
        top: ``(side, direction) -> genes`` (most extreme first).
        tables: ``(side, direction) -> enrichment table`` (:data:`ENRICHMENT_COLUMNS`).
        min_size, max_size: gene-set size filter (after intersecting with the universe).
    """

    n_top: int
    alpha: float
    hidden: bool
    n_hidden: int
    universe_size: int
    min_size: int
    max_size: int
    top: dict[tuple[str, str], list[str]] = field(repr=False)
    tables: dict[tuple[str, str], pd.DataFrame] = field(repr=False)

    def enriched(self, side: Side, direction: Direction) -> pd.DataFrame:
        """Terms with ``q < alpha`` (and at least one gene) for one list."""
        return significant(self.tables[(side, direction)], self.alpha)

    def agreement(self, direction: Direction) -> pd.DataFrame:
        """Terms enriched in both the predicted and observed list of a direction, with both q-values."""
        pred = self.enriched("predicted", direction).set_index("term_id")
        obs = self.enriched("observed", direction).set_index("term_id")
        both = pred.index.intersection(obs.index)
        out = pd.DataFrame(
            {
                "term_id": both,
                "term": pred.loc[both, "term"].to_numpy(),
                "source": pred.loc[both, "source"].to_numpy(),
                "q_predicted": pred.loc[both, "q"].to_numpy(),
                "q_observed": obs.loc[both, "q"].to_numpy(),
                "overlap_predicted": pred.loc[both, "overlap"].to_numpy(),
                "overlap_observed": obs.loc[both, "overlap"].to_numpy(),
            }
        )
        return out.sort_values("q_observed").reset_index(drop=True)

    def summary(self) -> dict[str, dict[str, int]]:
        """Per direction: enriched terms (q < alpha) predicted, observed, in both; genes shared by the top
        lists; terms shared among the 20 smallest p-values of each list."""
        out = {}
        for d in ("up", "down"):
            out[d] = {
                "predicted": len(self.enriched("predicted", d)),
                "observed": len(self.enriched("observed", d)),
                "both": len(self.agreement(d)),
                "shared_genes": len(set(self.top[("predicted", d)]) & set(self.top[("observed", d)])),
                "shared_best_20": len(self.shared_best(d)),  # type: ignore[arg-type]
            }
        return out

    def best(self, side: Side, direction: Direction, limit: int = 20) -> pd.DataFrame:
        """The ``limit`` terms with the smallest p (at least one gene in the list), enriched or not."""
        t = self.tables[(side, direction)]
        return t[t["k"] > 0].head(limit).reset_index(drop=True)

    def shared_best(self, direction: Direction, limit: int = 20) -> list[str]:
        """Terms among the ``limit`` smallest p-values of both the predicted and the observed list
        (descriptive: no significance implied)."""
        pred = self.best("predicted", direction, limit)
        obs = set(self.best("observed", direction, limit)["term_id"])
        return [t for t, i in zip(pred["term"], pred["term_id"], strict=True) if i in obs]

    def side_by_side(self, direction: Direction, limit: int = 15) -> pd.DataFrame:
        """The ``limit`` best terms (smallest p) of the predicted and observed lists of a direction,
        row by row, with q and overlap k/K."""
        cols = {}
        for side in ("predicted", "observed"):
            t = self.best(side, direction, limit)  # type: ignore[arg-type]
            cols[f"{side}_term"] = t["term"]
            cols[f"{side}_source"] = t["source"]
            cols[f"{side}_k_of_K"] = [f"{a}/{b}" for a, b in zip(t["k"], t["K"], strict=True)]
            cols[f"{side}_q"] = t["q"]
        return pd.DataFrame(cols)

    def to_dict(self, limit: int = 20) -> dict[str, Any]:
        """The ``lgr enrich --json`` body: settings, top lists, enriched terms per list (first ``limit``)."""
        return {
            "n_top": self.n_top,
            "alpha": self.alpha,
            "hide_uninformative": self.hidden,
            "hide_rule": HIDE_RULE if self.hidden else None,
            "n_hidden": self.n_hidden,
            "universe_size": self.universe_size,
            "universe": "evaluation genes of the query with a finite prediction and observation",
            "set_size": [self.min_size, self.max_size],
            "test": "hypergeometric P(X >= k), Benjamini-Hochberg q over all tested sets per list",
            "summary": self.summary(),
            "top": {f"{s}_{d}": genes for (s, d), genes in self.top.items()},
            "enriched": {
                f"{s}_{d}": to_records(self.enriched(s, d), limit)
                for (s, d) in self.tables  # type: ignore[arg-type]
            },
            "best": {
                f"{s}_{d}": to_records(self.best(s, d, limit))
                for (s, d) in self.tables  # type: ignore[arg-type]
            },
            "agreement": {d: to_records(self.agreement(d)) for d in ("up", "down")},  # type: ignore[arg-type]
            "shared_best_20": {d: self.shared_best(d) for d in ("up", "down")},  # type: ignore[arg-type]
        }


def _top(genes: np.ndarray, values: np.ndarray, n: int, sign: int) -> list[str]:
    order = np.argsort(-sign * values, kind="stable")[:n]
    return [str(g) for g in genes[order]]


def enrich_prediction(
    genes: Sequence[str],
    prediction: ArrayLike,
    truth: ArrayLike,
    sets: GeneSets,
    *,
    n_top: int = DEFAULT_N_TOP,
    hide_uninformative: bool = False,
    coding: Iterable[str] | None = None,
    min_size: int = DEFAULT_MIN_SIZE,
    max_size: int = DEFAULT_MAX_SIZE,
    alpha: float = DEFAULT_ALPHA,
) -> PredictionEnrichment:
    """Enrichment of the predicted and observed top up/down genes of one prediction.

    Args:
        genes: gene symbols aligned with ``prediction`` and ``truth`` (e.g. a
            :class:`~perturb_core.retrieval.QueryExplanation`'s ``genes``).
        prediction: predicted delta per gene (rank scores for the Tahoe datasets).
        truth: observed delta per gene.
        sets: gene sets from :func:`~perturb_core.explore.gene_sets`.
        n_top: genes per top list (1..1000).
        hide_uninformative: drop the genes of :data:`HIDE_RULE` before ranking.
        coding: protein-coding symbols for the non-coding rule (``None``: that rule is off).
        min_size, max_size: gene-set size filter.
        alpha: q threshold for an enriched term (0 < alpha < 1).

    Raises:
        ValidationError: misaligned arrays, bad options, or no comparable gene.
    """
    n_top = check_int_range("n_top", n_top, 1, 1000, hint="genes per top list, e.g. 50")
    if not (isinstance(alpha, float | int) and 0 < float(alpha) < 1):
        raise ValidationError(f"alpha must be a number strictly between 0 and 1, e.g. 0.05; got {alpha!r}")
    names = np.asarray([str(g) for g in genes], dtype=object)
    pred = np.asarray(prediction, dtype=np.float64)
    obs = np.asarray(truth, dtype=np.float64)
    if not names.shape == pred.shape == obs.shape or names.ndim != 1:
        raise ValidationError(
            f"genes {names.shape}, prediction {pred.shape} and truth {obs.shape} must be 1-D and aligned"
        )
    ok = np.isfinite(pred) & np.isfinite(obs)
    n_hidden = 0
    if hide_uninformative:
        hide = uninformative_genes(names, None if coding is None else set(coding))
        n_hidden = int((ok & hide).sum())
        ok &= ~hide
    if not ok.any():
        raise ValidationError(
            "no gene has both a finite prediction and observation (after hiding); nothing to rank"
        )
    names, pred, obs = names[ok], pred[ok], obs[ok]
    universe = list(names)
    top: dict[tuple[str, str], list[str]] = {}
    tables: dict[tuple[str, str], pd.DataFrame] = {}
    for side, values in (("predicted", pred), ("observed", obs)):
        for direction, sign in (("up", 1), ("down", -1)):
            lst = _top(names, values, n_top, sign)
            top[(side, direction)] = lst
            tables[(side, direction)] = enrich(lst, universe, sets, min_size=min_size, max_size=max_size)
    return PredictionEnrichment(
        n_top,
        float(alpha),
        bool(hide_uninformative),
        n_hidden,
        len(universe),
        min_size,
        max_size,
        top,
        tables,
    )


def frame_of(result: PredictionEnrichment) -> pd.DataFrame:
    """Every enriched term of every list in one long table (``side``, ``direction`` first)."""
    parts = [
        result.enriched(s, d).assign(side=s, direction=d)  # type: ignore[arg-type]
        for (s, d) in result.tables
    ]
    t = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return t[["side", "direction", *[c for c in t.columns if c not in ("side", "direction")]]]
