"""Selection of neighbours with the hybrid chemistry fallback, and their aggregation into predictions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from perturb_core.errors import MAX_K, ValidationError
from perturb_core.retrieval._options import (
    DEFAULT_HYBRID_MIN_K,
    Aggregation,
    check_aggregation,
    check_int,
    check_power,
)
from perturb_core.retrieval._selectors import SELECTORS, Scores, SelectOptions, check_selector
from perturb_core.retrieval._splits import SplitData, pool_mask
from perturb_core.retrieval.baselines import additive_terms

SOURCE_SELECTOR, SOURCE_CHEM, SOURCE_POOL = 0, 1, 2
SOURCE_NAMES = {SOURCE_SELECTOR: "selector", SOURCE_CHEM: "hybrid_chem", SOURCE_POOL: "pool_mean"}


@dataclass(frozen=True, eq=False)
class Selection:
    """Neighbours chosen for a batch of queries, after the hybrid fallback.

    Attributes:
        order: (Q, D) drug indices of the neighbours, best first, -1 padded.
        source: (Q, D) where each came from: 0 the selector, 1 chemistry padding, 2 pool mean.
        k_used: (Q,) valid neighbours from the selector itself (<= k).
        n_used: (Q,) neighbours aggregated (selector + padding, or the whole pool).
        fallback: per query, what the hybrid rule did (``None``: nothing).
        scores: the selector's scores.
        pool: (Q, D) the candidate pools.
        drugs: (Q,) the query drugs (the residual aggregation needs them).
    """

    order: NDArray[np.intp]
    source: NDArray[np.int8]
    k_used: NDArray[np.int64]
    n_used: NDArray[np.int64]
    fallback: tuple[str | None, ...]
    scores: Scores
    pool: NDArray[np.bool_]
    drugs: NDArray[np.intp] | None = None


def _top(
    values: NDArray[np.float64], allowed: NDArray[np.bool_], k: int
) -> tuple[NDArray[np.intp], NDArray[np.int64]]:
    """Top-k indices per row among allowed finite values (ties: lower index first), -1 padded."""
    v = np.where(allowed & np.isfinite(values), values, -np.inf)
    order = np.argsort(-v, axis=1, kind="stable")[:, :k]
    taken = np.take_along_axis(v, order, 1) > -np.inf
    return np.where(taken, order, -1), taken.sum(1)


def select_neighbours(
    sd: SplitData,
    cells: NDArray[np.intp],
    drugs: NDArray[np.intp],
    selector: str,
    options: SelectOptions,
    *,
    hybrid_min_k: int = DEFAULT_HYBRID_MIN_K,
    scores: Scores | None = None,
) -> Selection:
    """Rank the pools with a selector and apply the hybrid fallback, for a batch of queries.

    A query whose selector gives fewer valid neighbours than ``min(hybrid_min_k, k, pool
    size)``, or cannot rank at all, is padded with chemistry (Tanimoto) neighbours up to k;
    if chemistry cannot rank either (no structure), the whole pool is averaged. Each case is
    written to ``fallback``.

    Args:
        sd: split data.
        cells: cell-line index per query, (Q,).
        drugs: drug index per query, (Q,).
        selector: a key of :data:`SELECTORS`.
        options: k, seed, llm, progress, log path.
        hybrid_min_k: the padding threshold (0 disables padding; unrankable queries still fall back).
        scores: this selector's scores of these queries, if already computed (e.g. when only k
            changes); ``None`` computes them.

    Returns:
        The :class:`Selection`.
    """
    selector = check_selector(selector)
    k = check_int("k", options.k, 1)
    hybrid_min_k = check_int("hybrid_min_k", hybrid_min_k, 0, MAX_K)
    cells = np.asarray(cells, dtype=np.intp)
    drugs = np.asarray(drugs, dtype=np.intp)
    index = sd.index
    pool = pool_mask(sd.split, index.present, cells, drugs)
    if scores is None:
        scores = SELECTORS[selector].fn(sd, cells, drugs, pool, options)
    n_d = len(index.drugs)
    unavailable = np.array([r is not None for r in scores.unavailable], dtype=bool)
    top, k_used = _top(scores.values, pool & ~unavailable[:, None], k)
    order = np.full((cells.size, n_d), -1, dtype=np.intp)
    source = np.zeros((cells.size, n_d), dtype=np.int8)
    order[:, : top.shape[1]] = top
    n_pool = pool.sum(1)
    need = (k_used < np.minimum(min(hybrid_min_k, k), n_pool)) | ((k_used == 0) & (n_pool > 0))
    fallback: list[str | None] = [None] * cells.size
    if need.any():
        q = np.flatnonzero(need)
        chem_ok = index.fp_valid[drugs[q]] & (selector != "chem_knn_retrieval")
        chosen = np.zeros((q.size, n_d), dtype=bool)
        sel = order[q, : top.shape[1]]
        rows_q, cols_q = np.nonzero(sel >= 0)
        chosen[rows_q, sel[rows_q, cols_q]] = True
        chem = np.where(index.fp_valid[None, :], index.tanimoto[drugs[q]].astype(np.float64), np.nan)
        pad, n_pad = _top(chem, pool[q] & ~chosen & chem_ok[:, None], k)
        for j, qi in enumerate(q):
            reason = scores.unavailable[qi] or f"k_used {k_used[qi]} < {min(hybrid_min_k, k)}"
            m = int(min(n_pad[j], k - k_used[qi]))
            if m > 0:
                order[qi, k_used[qi] : k_used[qi] + m] = pad[j, :m]
                source[qi, k_used[qi] : k_used[qi] + m] = SOURCE_CHEM
                verb = "padded with" if k_used[qi] else "used"
                fallback[qi] = f"{reason}; {verb} {m} chem_knn_retrieval neighbour(s)"
            elif k_used[qi] == 0 and n_pool[qi] > 0:
                members = np.flatnonzero(pool[qi])
                order[qi, : members.size] = members
                source[qi, : members.size] = SOURCE_POOL
                why = "no chemical structure" if not index.fp_valid[drugs[qi]] else "chemistry cannot rank"
                fallback[qi] = f"{reason}; {why}: used the mean of the whole pool ({members.size} drugs)"
            elif k_used[qi] == 0:
                fallback[qi] = f"{reason}; empty pool: no prediction"
            else:
                fallback[qi] = f"{reason}; no chemistry neighbour to pad with"
    for qi in np.flatnonzero(~need & unavailable):
        fallback[qi] = scores.unavailable[qi]
    n_used = (order >= 0).sum(1)
    return Selection(
        order, source, k_used.astype(np.int64), n_used.astype(np.int64), tuple(fallback), scores, pool, drugs
    )


def _uniform(
    used: NDArray[np.bool_], rank: NDArray[np.int64], source: NDArray[np.int8]
) -> NDArray[np.float64]:
    return used.astype(np.float64)


def _rank_weighted(
    used: NDArray[np.bool_], rank: NDArray[np.int64], source: NDArray[np.int8]
) -> NDArray[np.float64]:
    w = np.where(used, 1.0 / np.maximum(rank, 1), 0.0)
    return np.where((source == SOURCE_POOL) & used, 1.0, w)  # a pool-mean fallback stays uniform


_RAW_WEIGHTS: dict[
    str, Callable[[NDArray[np.bool_], NDArray[np.int64], NDArray[np.int8]], NDArray[np.float64]]
] = {
    "mean": _uniform,
    "rank_weighted": _rank_weighted,
    "residual": _uniform,
}
"""Aggregation -> unnormalised weight of each ranked neighbour, from (used, rank, source)."""


def _similarity_factor(selection: Selection, power: float) -> NDArray[np.float64]:
    """(Q, D) factors max(s_e, 0)^p over the ranked positions (1 where they do not apply).

    They apply to queries whose aggregated neighbours all come from a selector with a
    similarity score (``Scores.similarity``) and have at least one positive similarity.
    """
    order = selection.order
    ones = np.ones(order.shape)
    if power == 0 or not selection.scores.similarity:
        return ones
    used = order >= 0
    rows = np.arange(order.shape[0])[:, None]
    s = selection.scores.values[rows, np.where(used, order, 0)]
    f = np.where(used, np.power(np.clip(np.nan_to_num(s, nan=0.0), 0.0, None), power), 0.0)
    ok = ((selection.source == SOURCE_SELECTOR) | ~used).all(1) & (f.sum(1) > 0)
    return np.where(ok[:, None], f, ones)


def weights(selection: Selection, aggregation: str, similarity_power: float = 0.0) -> NDArray[np.float64]:
    """(Q, D) normalised aggregation weights by drug.

    Uniform (``mean``, ``residual``) or 1/rank (``rank_weighted``; uniform for a pool-mean
    fallback), times ``max(s_e, 0)^similarity_power`` where the selector has a similarity.
    """
    order = selection.order
    used = order >= 0
    rank = np.cumsum(used, axis=1)
    w = _RAW_WEIGHTS[aggregation](used, rank, selection.source)
    w = w * _similarity_factor(selection, check_power(similarity_power))
    total = w.sum(1, keepdims=True)
    w = np.divide(w, total, out=np.zeros_like(w), where=total > 0)
    out = np.zeros(order.shape)
    q, pos = np.nonzero(used)
    out[q, order[q, pos]] = w[q, pos]
    return out


def _weighted_rows(
    w: NDArray[np.float64], cells: NDArray[np.intp], rows: Callable[[NDArray[np.intp]], NDArray[np.float64]]
) -> NDArray[np.float64]:
    """Per query and gene, the w-weighted mean of ``rows(used pair ids)`` over the finite entries."""
    n_d = w.shape[1]
    q_idx, e_idx = np.nonzero(w)
    cols = np.asarray(cells)[q_idx] * n_d + e_idx
    # only the (line, drug) rows some query uses take part (a handful for one explained query)
    used, pos = np.unique(cols, return_inverse=True)
    mat = sp.csr_matrix((w[q_idx, e_idx], (q_idx, pos)), shape=(w.shape[0], used.size))
    y = rows(used)
    obs = np.isfinite(y)
    num = np.asarray(mat @ np.where(obs, y, 0.0), dtype=np.float64)
    den = np.asarray(mat @ obs.astype(np.float64), dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def residual_available(sd: SplitData, cells: NDArray[np.intp], drugs: NDArray[np.intp]) -> NDArray[np.bool_]:
    """(Q,) whether the residual aggregation applies: the drug has a training pair in another line."""
    return sd.baseline_data.drug_mean_other_lines(np.asarray(cells), np.asarray(drugs))[1]


def aggregate(
    sd: SplitData,
    cells: NDArray[np.intp],
    selection: Selection,
    aggregation: Aggregation = "mean",
    *,
    similarity_power: float = 0.0,
) -> NDArray[np.float64]:
    """Predicted deltas (Q, G) from the selected neighbours.

    - ``mean`` / ``rank_weighted``: the weighted mean of the neighbours' measured deltas in each
      query's line; a gene missing in some neighbours is averaged over the others; missing in
      all, it is NaN.
    - ``residual``: the additive baseline ``A[c,d] = D̄₋c[d] + L̄ − Ḡ`` plus the weighted mean
      of the neighbours' residuals ``Δ[c,e] − A[c,e]`` from their own additive fits (same line
      term); this equals ``D̄₋c[d] + mean_e(Δ[c,e] − D̄₋c[e])``. A gene no neighbour residual
      covers gets the additive baseline; a query whose drug has no training pair in another
      line gets the plain weighted mean (``residual_available`` says which).

    Args:
        sd: split data.
        cells: cell-line index per query.
        selection: from :func:`select_neighbours`.
        aggregation: ``"mean"``, ``"rank_weighted"`` or ``"residual"``.
        similarity_power: weights ``max(s_e, 0)^p`` for selectors with a similarity (0: none).

    Returns:
        float64 (Q, G) predictions on ``sd.genes``.
    """
    aggregation = check_aggregation(aggregation)
    cells = np.asarray(cells, dtype=np.intp)
    w = weights(selection, aggregation, similarity_power)
    y0, obs = sd.flat

    def measured(ids: NDArray[np.intp]) -> NDArray[np.float64]:
        return np.where(obs[ids] > 0, y0[ids].astype(np.float64), np.nan)

    plain = _weighted_rows(w, cells, measured)
    if aggregation != "residual":
        return plain
    if selection.drugs is None:
        raise ValidationError(
            "residual aggregation needs the query drugs (a Selection from select_neighbours)"
        )
    drugs = np.asarray(selection.drugs, dtype=np.intp)
    terms = additive_terms(sd.baseline_data, cells, drugs)
    mean_resid = _weighted_rows(w, cells, sd.residuals)
    drug = np.where(np.isfinite(terms.drug), terms.drug, terms.grand)
    pred = np.where(np.isfinite(mean_resid), drug + mean_resid, terms.prediction)
    return np.where(terms.drug_seen[:, None], pred, plain)


def oracle_neighbours(
    sd: SplitData, cells: NDArray[np.intp], drugs: NDArray[np.intp], k: int
) -> NDArray[np.intp]:
    """(Q, k) the oracle's neighbours: the k pool drugs closest (Pearson r) to each TRUE response, -1 padded.

    The reference set of the retrieval-quality metrics (precision@k, reciprocal rank); it
    reads the truth, so it is for scoring only.
    """
    cells = np.asarray(cells, dtype=np.intp)
    drugs = np.asarray(drugs, dtype=np.intp)
    pool = pool_mask(sd.split, sd.index.present, cells, drugs)
    top, _ = _top(sd.correlations[cells, drugs], pool, check_int("k", k, 1))
    return top
