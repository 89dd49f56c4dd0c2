"""LGR baselines (cell mean, drug mean, chemistry kNN, PCA + ridge), vectorised over queries.

Every baseline is a pure function ``f(data, cells, drugs, *, k, seed) -> BaselinePrediction``
over a :class:`BaselineData`: the deltas of a signature dataset laid out as a
(cell line, drug, gene) tensor, the mask of training pairs, and drug fingerprints. A query is
a (cell line index, drug index) pair; predictions never use the query's own delta:

- with ``leave_one_out=False`` (unseen-drug, unseen-cell-line regimes) the queries are not
  training pairs to begin with;
- with ``leave_one_out=True`` (open world: every measured pair is both a training pair and a
  query) each query's own pair is removed from the sums it is predicted from, and PCA + ridge
  is cross-fitted (5 folds of queries; a single query is left out exactly).

Definitions (DESIGN.md, "LGR in detail"):

- ``cell_mean``: mean training delta of the query's cell line; the global training mean when
  the line has no training pair (unseen cell line).
- ``drug_mean``: mean delta of the query drug over its training cell lines; falls back to
  ``cell_mean`` (recorded) when the drug has no training pair (unseen drug).
- ``chem_knn``: the k training drugs closest to the query by cosine similarity of Morgan
  fingerprints; the prediction is the mean of their drug means (the paper's baseline; it
  ignores the cell line).
- ``pca_ridge``: ridge regression from [fingerprint, one-hot training cell line] to the
  coordinates of the training deltas on their first 50 principal components, mapped back to
  genes. The fingerprint block is expressed in an orthonormal basis of the training drugs'
  fingerprints, which gives exactly the ridge solution on raw bits at a fraction of the cost.

Fitting and the exact downdate of ``pca_ridge`` fits that leave a few cached pairs out live
in :mod:`perturb_core.retrieval._ridge`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Literal

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from perturb_core.chem import cosine_similarity_matrix
from perturb_core.errors import ValidationError
from perturb_core.memo import Memo
from perturb_core.retrieval._ridge import (
    Design,
    RidgeMoments,
    RidgeReference,
    divide,
    fit_design,
    fit_predict,
    split_moments,
)
from perturb_core.spec import MethodSpec, registry, resolve

__all__ = [
    "BASELINES",
    "BASELINE_DEFINITIONS",
    "BASELINE_LABELS",
    "AdditiveTerms",
    "BaselineData",
    "BaselineFn",
    "BaselineName",
    "BaselinePrediction",
    "RidgeMoments",
    "RidgeReference",
    "additive",
    "additive_terms",
    "cell_mean",
    "check_baseline",
    "chem_knn",
    "drug_mean",
    "pca_ridge",
    "pool_mean",
    "predict_baseline",
]

BaselineName = Literal["cell_mean", "drug_mean", "chem_knn", "pca_ridge", "pool_mean", "additive"]

_N_FOLDS = 5


@dataclass(frozen=True, eq=False)
class BaselineData:
    """Inputs shared by all baselines; validated once.

    Attributes:
        deltas: float32 (C, D, G) deltas of every (cell line, drug) pair on the evaluation
            genes; NaN = gene not measured or pair not profiled.
        train: bool (C, D), the pairs baselines may learn from.
        fingerprints: bool (D, B) Morgan fingerprints of the drugs.
        fp_valid: bool (D,), False where a drug has no structure.
        leave_one_out: each query is also a training pair and must be left out of its own
            prediction (open-world regime).
        reference: optional cross-products of a larger training set on more genes, shared by
            many splits; ``pca_ridge`` fits that drop at most 128 of its pairs come from it.
        gene_ids: (G,) column of each gene of ``deltas`` in ``reference.values`` (with ``reference``).
        pool_pairs: bool (C, D), the pairs a query's candidate pool may hold (profiled and
            allowed by the regime; the query itself is always excluded); ``None``: ``train``.
            In the unseen-cell-line regime these are the held-out line's measured pairs, the
            same responses every LGR selector averages.
    """

    deltas: NDArray[np.float32]
    train: NDArray[np.bool_]
    fingerprints: NDArray[np.bool_]
    fp_valid: NDArray[np.bool_]
    leave_one_out: bool = False
    reference: RidgeReference | None = None
    gene_ids: NDArray[np.intp] | None = None
    pool_pairs: NDArray[np.bool_] | None = None
    pool_memo: Memo = field(init=False, default_factory=lambda: Memo(2), repr=False, compare=False)
    """The last pool means by query batch (every residual aggregation of a run needs the same)."""

    def __post_init__(self) -> None:
        if self.deltas.ndim != 3:
            raise ValidationError(f"deltas must be (cell lines, drugs, genes); got shape {self.deltas.shape}")
        c, d, g = self.deltas.shape
        if self.train.shape != (c, d):
            raise ValidationError(f"train has shape {self.train.shape}; expected {(c, d)} to match deltas")
        if self.fingerprints.ndim != 2 or self.fingerprints.shape[0] != d or self.fp_valid.shape != (d,):
            raise ValidationError(
                f"fingerprints {self.fingerprints.shape} / fp_valid {self.fp_valid.shape} must have {d} rows"
            )
        if self.pool_pairs is not None and self.pool_pairs.shape != (c, d):
            raise ValidationError(f"pool_pairs has shape {self.pool_pairs.shape}; expected {(c, d)}")
        if self.reference is not None and (
            self.gene_ids is None or self.gene_ids.shape != (g,) or self.reference.rows.shape != (c, d)
        ):
            raise ValidationError(
                f"a reference needs gene_ids with one entry per gene ({g}) and rows of shape {(c, d)}"
            )

    @cached_property
    def _filled(self) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
        """Training deltas with NaN -> 0, and the matching observed mask."""
        observed = ~np.isnan(self.deltas) & self.train[:, :, None]
        return np.where(observed, self.deltas, np.float32(0.0)), observed

    @cached_property
    def cell_sums(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Per cell line: sum and count of training deltas per gene, (C, G) each."""
        y0, obs = self._filled
        return y0.sum(1, dtype=np.float64), obs.sum(1, dtype=np.float64)

    @cached_property
    def drug_sums(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Per drug: sum and count of training deltas per gene over cell lines, (D, G) each."""
        y0, obs = self._filled
        return y0.sum(0, dtype=np.float64), obs.sum(0, dtype=np.float64)

    @cached_property
    def drug_pairs(self) -> NDArray[np.int64]:
        """Number of training pairs of each drug, (D,)."""
        return self.train.sum(0)

    @cached_property
    def cell_pairs(self) -> NDArray[np.int64]:
        """Number of training pairs of each cell line, (C,)."""
        return self.train.sum(1)

    @cached_property
    def ridge_design(self) -> Design:
        """``pca_ridge`` features of the training pairs (shared by every leave-out fold)."""
        return fit_design(self, self.train)

    @cached_property
    def ridge_moments(self) -> RidgeMoments:
        """Cross-products of the training deltas (leave-one-out fits without a covering reference)."""
        return split_moments(self)

    @cached_property
    def cosine(self) -> NDArray[np.float32]:
        """Cosine similarity of the drugs' fingerprints, (D, D)."""
        return cosine_similarity_matrix(self.fingerprints)

    @cached_property
    def grand_sums(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Sum and count of all training deltas per gene, (G,) each."""
        cell_sum, cell_cnt = self.cell_sums
        return cell_sum.sum(0), cell_cnt.sum(0)

    def drug_mean_other_lines(
        self, cells: NDArray[np.intp], drugs: NDArray[np.intp]
    ) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        """Mean training delta of drug ``drugs[i]`` over training lines other than ``cells[i]``.

        Returns:
            (N, G) means (NaN where a gene has no such observation) and (N,) whether the drug
            has at least one training pair in another line. The pair ``(cells[i], drugs[i])``
            itself never contributes (it is subtracted only when it is a training pair).
        """
        y0, obs = self._filled
        drug_sum, drug_cnt = self.drug_sums
        own = self.train[cells, drugs]
        num = drug_sum[drugs] - np.where(own[:, None], y0[cells, drugs], 0.0)
        den = drug_cnt[drugs] - np.where(own[:, None], obs[cells, drugs], 0.0)
        seen = (self.drug_pairs[drugs] - own.astype(np.int64)) > 0
        return divide(num, den), seen

    def pool_mean(
        self, cells: NDArray[np.intp], drugs: NDArray[np.intp]
    ) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
        """Mean delta of each query's candidate pool in its line (the query's own pair excluded).

        One sparse product over the pool pairs, so the query's delta never enters, not even
        as a subtracted term. Returns (Q, G) means (NaN for a gene no pool drug measured)
        and (Q,) pool sizes.
        """
        cells = np.asarray(cells, dtype=np.intp)
        drugs = np.asarray(drugs, dtype=np.intp)
        key = hashlib.sha256(cells.tobytes() + b"|" + drugs.tobytes()).hexdigest()
        return self.pool_memo.get(key, lambda: self._pool_mean(cells, drugs))

    def _pool_mean(
        self, cells: NDArray[np.intp], drugs: NDArray[np.intp]
    ) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
        pairs = self.train if self.pool_pairs is None else self.pool_pairs
        n_c, n_d, _ = self.deltas.shape
        member = pairs[cells].copy()
        member[np.arange(cells.size), drugs] = False
        q, e = np.nonzero(member)
        flat = np.asarray(cells)[q] * n_d + e
        used, pos = np.unique(flat, return_inverse=True)
        mat = sp.csr_matrix((np.ones(q.size), (q, pos)), shape=(cells.size, used.size))
        y = self.deltas.reshape(n_c * n_d, -1)[used]
        obs = ~np.isnan(y)
        num = np.asarray(mat @ np.where(obs, y, np.float32(0.0)).astype(np.float64))
        den = np.asarray(mat @ obs.astype(np.float64))
        return divide(num, den), member.sum(1)

    def own(
        self, cells: NDArray[np.intp], drugs: NDArray[np.intp]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """The queries' own training contribution to subtract (zeros unless leave-one-out)."""
        y0, obs = self._filled
        if not self.leave_one_out:
            g = self.deltas.shape[2]
            return np.zeros((cells.size, g)), np.zeros((cells.size, g))
        return y0[cells, drugs].astype(np.float64), obs[cells, drugs].astype(np.float64)


@dataclass(frozen=True, eq=False)
class BaselinePrediction:
    """Predictions of one baseline for a batch of queries.

    Attributes:
        method: the baseline's name.
        prediction: float64 (Q, G); NaN where nothing could be predicted for a gene.
        k_used: float64 (Q,), neighbours used (``chem_knn``), NaN for the others.
        fallback: per query, what was done instead when the method was not applicable
            (``None`` = the method itself).
        neighbours: (Q, k) drug indices of ``chem_knn`` (-1 = none), else ``None``.
    """

    method: str
    prediction: NDArray[np.float64]
    k_used: NDArray[np.float64]
    fallback: tuple[str | None, ...]
    neighbours: NDArray[np.intp] | None = None


def _queries(
    data: BaselineData, cells: NDArray[np.intp], drugs: NDArray[np.intp]
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    c = np.asarray(cells, dtype=np.intp).ravel()
    d = np.asarray(drugs, dtype=np.intp).ravel()
    n_c, n_d, _ = data.deltas.shape
    if c.shape != d.shape:
        raise ValidationError(f"cells ({c.size}) and drugs ({d.size}) must have one entry per query")
    if c.size and (c.min() < 0 or c.max() >= n_c or d.min() < 0 or d.max() >= n_d):
        raise ValidationError(f"query indices out of range: cells in [0, {n_c}), drugs in [0, {n_d})")
    return c, d


def _cell_mean(
    data: BaselineData, c: NDArray[np.intp], d: NDArray[np.intp]
) -> tuple[NDArray[np.float64], list[str | None]]:
    cell_sum, cell_cnt = data.cell_sums
    own_sum, own_cnt = data.own(c, d)
    own_pair = (data.train[c, d] & data.leave_one_out).astype(np.int64)
    seen = (data.cell_pairs[c] - own_pair) > 0
    total_sum, total_cnt = cell_sum.sum(0), cell_cnt.sum(0)
    num = np.where(seen[:, None], cell_sum[c], total_sum[None, :]) - own_sum
    den = np.where(seen[:, None], cell_cnt[c], total_cnt[None, :]) - own_cnt
    notes = [None if s else "cell line has no training pair: global training mean" for s in seen]
    return divide(num, den), notes


def cell_mean(
    data: BaselineData, cells: NDArray[np.intp], drugs: NDArray[np.intp], *, k: int = 10, seed: int = 0
) -> BaselinePrediction:
    """Mean training delta of each query's cell line (global mean for an unseen line).

    Args:
        data: the shared inputs.
        cells: cell-line index of each query, (Q,).
        drugs: drug index of each query, (Q,).
        k: unused (uniform signature).
        seed: unused (uniform signature).

    Returns:
        The predictions; ``fallback`` notes queries whose line is unseen.
    """
    del k, seed
    c, d = _queries(data, cells, drugs)
    pred, notes = _cell_mean(data, c, d)
    return BaselinePrediction("cell_mean", pred, np.full(c.size, np.nan), tuple(notes))


def drug_mean(
    data: BaselineData, cells: NDArray[np.intp], drugs: NDArray[np.intp], *, k: int = 10, seed: int = 0
) -> BaselinePrediction:
    """Mean delta of each query drug over its training cell lines (cell mean for an unseen drug).

    Args:
        data: the shared inputs.
        cells: cell-line index of each query, (Q,).
        drugs: drug index of each query, (Q,).
        k: unused (uniform signature).
        seed: unused (uniform signature).

    Returns:
        The predictions; ``fallback`` notes queries whose drug has no training pair.
    """
    del k, seed
    c, d = _queries(data, cells, drugs)
    drug_sum, drug_cnt = data.drug_sums
    own_sum, own_cnt = data.own(c, d)
    own_pair = (data.train[c, d] & data.leave_one_out).astype(np.int64)
    seen = (data.drug_pairs[d] - own_pair) > 0
    pred = divide(drug_sum[d] - own_sum, drug_cnt[d] - own_cnt)
    fallback_pred, _ = _cell_mean(data, c, d)
    pred = np.where(seen[:, None], pred, fallback_pred)
    notes = tuple(None if s else "drug has no training pair in another cell line: cell mean" for s in seen)
    return BaselinePrediction("drug_mean", pred, np.full(c.size, np.nan), notes)


def chem_knn(
    data: BaselineData, cells: NDArray[np.intp], drugs: NDArray[np.intp], *, k: int = 10, seed: int = 0
) -> BaselinePrediction:
    """Mean of the drug means of the k training drugs nearest by fingerprint cosine (paper baseline).

    Args:
        data: the shared inputs.
        cells: cell-line index of each query, (Q,).
        drugs: drug index of each query, (Q,).
        k: number of neighbour drugs.
        seed: unused (ties are broken by drug order).

    Returns:
        The predictions with the neighbours used; a query drug without a structure falls back
        to the cell mean (recorded).
    """
    del seed
    c, d = _queries(data, cells, drugs)
    drug_sum, drug_cnt = data.drug_sums
    means = divide(drug_sum, drug_cnt)  # (D, G); a neighbour's mean never contains the query pair
    n_d = data.deltas.shape[1]
    candidate = (data.drug_pairs > 0) & data.fp_valid
    ok = candidate[None, :] & (np.arange(n_d)[None, :] != d[:, None])
    sim = np.where(ok, data.cosine[d].astype(np.float64), -np.inf)
    order = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    chosen = np.take_along_axis(sim, order, 1) > -np.inf
    has_fp = data.fp_valid[d]
    chosen &= has_fp[:, None]
    weights = np.zeros((c.size, n_d))
    np.put_along_axis(weights, order, chosen.astype(np.float64), axis=1)
    finite = np.isfinite(means)
    pred = divide(weights @ np.where(finite, means, 0.0), weights @ finite.astype(np.float64))
    n_used = chosen.sum(1)
    fallback_pred, _ = _cell_mean(data, c, d)
    use = n_used > 0
    pred = np.where(use[:, None], pred, fallback_pred)
    notes = tuple(
        None
        if u
        else ("no structure for the query drug: cell mean" if not f else "no training drug: cell mean")
        for u, f in zip(use, has_fp, strict=True)
    )
    return BaselinePrediction(
        "chem_knn", pred, n_used.astype(np.float64), notes, np.where(chosen, order, -1).astype(np.intp)
    )


def pca_ridge(
    data: BaselineData, cells: NDArray[np.intp], drugs: NDArray[np.intp], *, k: int = 10, seed: int = 0
) -> BaselinePrediction:
    """Ridge from fingerprint + one-hot cell line to PCA coordinates of training deltas.

    With ``leave_one_out`` the queries are split into up to 5 seeded folds and each fold is
    predicted by a model fitted without that fold's pairs (one query: exact leave-one-out).
    A fit that drops at most 128 pairs from cached cross-products (the data's
    :class:`RidgeReference`, or for leave-one-out :attr:`BaselineData.ridge_moments`) is
    downdated from them instead of refitted from the data: the same fit, in a fraction of
    the time.

    Args:
        data: the shared inputs.
        cells: cell-line index of each query, (Q,).
        drugs: drug index of each query, (Q,).
        k: unused (uniform signature).
        seed: seed of the randomized PCA and of the fold assignment.

    Returns:
        The predictions; queries whose drug has no structure are predicted from their cell
        line alone (recorded).
    """
    del k
    c, d = _queries(data, cells, drugs)
    pred = np.full((c.size, data.deltas.shape[2]), np.nan)
    if c.size == 0:
        return BaselinePrediction("pca_ridge", pred, np.zeros(0), ())
    if data.leave_one_out:
        n_folds = min(_N_FOLDS, c.size)
        fold = np.random.default_rng(seed).permutation(c.size) % n_folds
        for f in range(n_folds):
            members = np.flatnonzero(fold == f)
            train = data.train.copy()
            train[c[members], d[members]] = False
            pred[members] = fit_predict(data, train, c[members], d[members], seed)
    else:
        pred[:] = fit_predict(data, data.train, c, d, seed)
    notes = tuple(
        None if ok else "no structure for the query drug: cell-line term only" for ok in data.fp_valid[d]
    )
    return BaselinePrediction("pca_ridge", pred, np.full(c.size, np.nan), notes)


def pool_mean(
    data: BaselineData, cells: NDArray[np.intp], drugs: NDArray[np.intp], *, k: int = 10, seed: int = 0
) -> BaselinePrediction:
    """Mean delta of each query's candidate pool in its cell line (global mean for an empty pool).

    The fair reference for retrieval: every selector averages members of this pool. In the
    unseen-cell-line regime ``cell_mean`` has no training pair of the line and falls back to
    the global mean, while the pool holds the held-out line's measured responses.

    Args:
        data: the shared inputs (``pool_pairs`` says which pairs a pool may hold).
        cells: cell-line index of each query, (Q,).
        drugs: drug index of each query, (Q,).
        k: unused (uniform signature).
        seed: unused (uniform signature).

    Returns:
        The predictions; ``fallback`` notes queries with an empty pool.
    """
    del k, seed
    c, d = _queries(data, cells, drugs)
    pred, n_pool = data.pool_mean(c, d)
    total_sum, total_cnt = data.grand_sums
    own_sum, own_cnt = data.own(c, d)
    grand = divide(total_sum[None, :] - own_sum, total_cnt[None, :] - own_cnt)
    pred = np.where((n_pool > 0)[:, None], pred, grand)
    notes = tuple(None if n else "empty candidate pool: global training mean" for n in n_pool)
    return BaselinePrediction("pool_mean", pred, np.full(c.size, np.nan), notes)


@dataclass(frozen=True, eq=False)
class AdditiveTerms:
    """The two-way additive fit of a batch of queries: ``drug + line − grand``.

    Attributes:
        drug: (Q, G) the drug's mean over its training lines other than the query's (NaN if none).
        line: (Q, G) the mean of the query's candidate pool in its line (NaN if empty).
        grand: (Q, G) the grand training mean (the query's own pair left out in the open world).
        drug_seen: (Q,) the drug has a training pair in another line.
        n_pool: (Q,) pool sizes.
    """

    drug: NDArray[np.float64]
    line: NDArray[np.float64]
    grand: NDArray[np.float64]
    drug_seen: NDArray[np.bool_]
    n_pool: NDArray[np.int64]

    @property
    def prediction(self) -> NDArray[np.float64]:
        """``drug + line − grand``; a missing term is replaced by the grand mean (so it drops out)."""
        drug = np.where(np.isfinite(self.drug), self.drug, self.grand)
        line = np.where(np.isfinite(self.line), self.line, self.grand)
        return drug + line - self.grand

    @property
    def notes(self) -> tuple[str | None, ...]:
        """Per query, which term fell back (``None``: both present)."""
        out: list[str | None] = []
        for seen, n in zip(self.drug_seen, self.n_pool, strict=True):
            missing = [
                t for t, ok in (("drug unmeasured in other lines", seen), ("empty pool", n > 0)) if not ok
            ]
            out.append("; ".join(missing) + ": that term is the grand mean" if missing else None)
        return tuple(out)


def additive_terms(data: BaselineData, cells: NDArray[np.intp], drugs: NDArray[np.intp]) -> AdditiveTerms:
    """The terms of the two-way additive model for each query (see :func:`additive`)."""
    c, d = _queries(data, cells, drugs)
    drug, seen = data.drug_mean_other_lines(c, d)
    line, n_pool = data.pool_mean(c, d)
    total_sum, total_cnt = data.grand_sums
    own_sum, own_cnt = data.own(c, d)
    grand = divide(total_sum[None, :] - own_sum, total_cnt[None, :] - own_cnt)
    drug = np.where(seen[:, None], drug, np.nan)
    line = np.where((n_pool > 0)[:, None], line, np.nan)
    return AdditiveTerms(drug, line, grand, seen, n_pool)


def additive(
    data: BaselineData, cells: NDArray[np.intp], drugs: NDArray[np.intp], *, k: int = 10, seed: int = 0
) -> BaselinePrediction:
    """Two-way additive baseline: drug effect + cell-line effect.

    ``Δ̂[c, d] = D̄[d] + L̄[c] − Ḡ`` per gene: the drug's mean delta over its training lines
    other than c, plus the mean delta of the query's candidate pool in c (the line's other
    measured drugs allowed by the regime), minus the grand training mean. A missing term
    (unseen drug, empty pool) is replaced by the grand mean, so it drops out (recorded).

    Args:
        data: the shared inputs.
        cells: cell-line index of each query, (Q,).
        drugs: drug index of each query, (Q,).
        k: unused (uniform signature).
        seed: unused (uniform signature).

    Returns:
        The predictions; ``fallback`` notes the terms that fell back.
    """
    del k, seed
    terms = additive_terms(data, cells, drugs)
    return BaselinePrediction("additive", terms.prediction, np.full(terms.n_pool.size, np.nan), terms.notes)


BaselineFn = Callable[..., BaselinePrediction]
"""``f(data, cells, drugs, *, k, seed) -> BaselinePrediction``."""

BASELINES: Mapping[str, MethodSpec[BaselineFn]] = registry(
    MethodSpec(
        "cell_mean",
        "Cell-line mean (baseline)",
        "mean training delta of the cell line; global training mean if the line is unseen",
        cell_mean,
    ),
    MethodSpec(
        "drug_mean",
        "Drug mean over other cell lines (baseline)",
        "mean delta of the drug over its training cell lines; cell mean if the drug is unseen",
        drug_mean,
    ),
    MethodSpec(
        "chem_knn",
        "Chemistry kNN baseline: mean of the k nearest training drugs' means over lines (paper, no LLM)",
        "mean of the drug means of the k training drugs nearest by Morgan-fingerprint cosine",
        chem_knn,
    ),
    MethodSpec(
        "pca_ridge",
        "PCA + ridge from fingerprint and cell line (baseline)",
        "ridge from [fingerprint, one-hot cell line] to 50 PCA coordinates of training deltas, mapped back",
        pca_ridge,
    ),
    MethodSpec(
        "pool_mean",
        "Pool mean: mean of the query's candidate pool in its line (baseline)",
        "mean delta of the drugs in the query's candidate pool, measured in the query's cell line",
        pool_mean,
    ),
    MethodSpec(
        "additive",
        "Additive drug + cell-line effects (baseline)",
        "drug's mean over its other training lines + mean of the query's pool in its line − grand "
        "training mean (a missing term drops out)",
        additive,
    ),
)
"""Baseline name -> spec; ``spec.fn(data, cells, drugs, *, k, seed) -> BaselinePrediction``."""

BASELINE_LABELS: Mapping[str, str] = MappingProxyType({n: s.label for n, s in BASELINES.items()})
"""Human label of every baseline (a view of :data:`BASELINES`)."""

BASELINE_DEFINITIONS: Mapping[str, str] = MappingProxyType({n: s.definition for n, s in BASELINES.items()})
"""One-line definition of every baseline (a view of :data:`BASELINES`)."""


def check_baseline(name: object) -> str:
    """The canonical baseline name (any case or punctuation).

    Raises:
        UnknownNameError: not a key of :data:`BASELINES` (the message lists them).
    """
    return resolve("baseline", name, BASELINES).name


def predict_baseline(
    name: str,
    data: BaselineData,
    cells: NDArray[np.intp],
    drugs: NDArray[np.intp],
    *,
    k: int = 10,
    seed: int = 0,
) -> BaselinePrediction:
    """Run the baseline called ``name``.

    Raises:
        UnknownNameError: ``name`` is not in :data:`BASELINES`.
    """
    return resolve("baseline", name, BASELINES).fn(data, cells, drugs, k=k, seed=seed)
