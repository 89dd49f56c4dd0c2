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
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from sklearn.decomposition import PCA
from sklearn.linear_model import RidgeCV

from perturb_core.chem import cosine_similarity_matrix
from perturb_core.errors import UnknownNameError, ValidationError

__all__ = [
    "BASELINES",
    "BASELINE_DEFINITIONS",
    "BASELINE_LABELS",
    "BaselineData",
    "BaselineName",
    "BaselinePrediction",
    "cell_mean",
    "chem_knn",
    "drug_mean",
    "pca_ridge",
    "predict_baseline",
]

BaselineName = Literal["cell_mean", "drug_mean", "chem_knn", "pca_ridge"]

BASELINE_LABELS: dict[str, str] = {
    "cell_mean": "Cell-line mean (baseline)",
    "drug_mean": "Drug mean over other cell lines (baseline)",
    "chem_knn": "Chemistry kNN: mean of the k nearest drugs' means (paper baseline, no LLM)",
    "pca_ridge": "PCA + ridge from fingerprint and cell line (baseline)",
}
"""Human label of every baseline."""

BASELINE_DEFINITIONS: dict[str, str] = {
    "cell_mean": "mean training delta of the cell line; global training mean if the line is unseen",
    "drug_mean": "mean delta of the drug over its training cell lines; cell mean if the drug is unseen",
    "chem_knn": "mean of the drug means of the k training drugs nearest by Morgan-fingerprint cosine",
    "pca_ridge": "ridge from [fingerprint, one-hot cell line] to 50 PCA coordinates of training deltas, mapped back",
}
"""One-line definition of every baseline."""

_N_COMPONENTS = 50
_RIDGE_ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0)
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
    """

    deltas: NDArray[np.float32]
    train: NDArray[np.bool_]
    fingerprints: NDArray[np.bool_]
    fp_valid: NDArray[np.bool_]
    leave_one_out: bool = False

    def __post_init__(self) -> None:
        if self.deltas.ndim != 3:
            raise ValidationError(f"deltas must be (cell lines, drugs, genes); got shape {self.deltas.shape}")
        c, d, _ = self.deltas.shape
        if self.train.shape != (c, d):
            raise ValidationError(f"train has shape {self.train.shape}; expected {(c, d)} to match deltas")
        if self.fingerprints.ndim != 2 or self.fingerprints.shape[0] != d or self.fp_valid.shape != (d,):
            raise ValidationError(
                f"fingerprints {self.fingerprints.shape} / fp_valid {self.fp_valid.shape} must have {d} rows"
            )

    @cached_property
    def _filled(self) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """Training deltas with NaN -> 0, and the matching observed mask (float32)."""
        observed = ~np.isnan(self.deltas) & self.train[:, :, None]
        return np.where(observed, self.deltas, np.float32(0.0)), observed.astype(np.float32)

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
    def cosine(self) -> NDArray[np.float32]:
        """Cosine similarity of the drugs' fingerprints, (D, D)."""
        return cosine_similarity_matrix(self.fingerprints)

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


def _divide(num: NDArray[np.float64], den: NDArray[np.float64]) -> NDArray[np.float64]:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


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
    return _divide(num, den), notes


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
    pred = _divide(drug_sum[d] - own_sum, drug_cnt[d] - own_cnt)
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
    means = _divide(drug_sum, drug_cnt)  # (D, G); a neighbour's mean never contains the query pair
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
    pred = _divide(weights @ np.where(finite, means, 0.0), weights @ finite.astype(np.float64))
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


def _fit_predict_ridge(
    data: BaselineData,
    train: NDArray[np.bool_],
    c: NDArray[np.intp],
    d: NDArray[np.intp],
    seed: int,
) -> NDArray[np.float64]:
    """Fit PCA + ridge on ``train`` pairs and predict the queries (c, d)."""
    rows_c, rows_d = np.nonzero(train)
    y = data.deltas[rows_c, rows_d]  # (N, G) float32: PCA in single precision is plenty and 2x faster
    observed = ~np.isnan(y)
    col_mean = _divide(
        np.where(observed, y, 0.0).sum(0, dtype=np.float64), observed.sum(0).astype(np.float64)
    )
    col_mean = np.where(np.isnan(col_mean), 0.0, col_mean)
    y = np.where(observed, y, col_mean[None, :].astype(np.float32))
    n_comp = int(min(_N_COMPONENTS, y.shape[0] - 1, y.shape[1]))
    fp = data.fingerprints.astype(np.float64)
    train_drugs = np.unique(rows_d[data.fp_valid[rows_d]])
    if train_drugs.size:
        _, s, vt = np.linalg.svd(fp[train_drugs], full_matrices=False)
        basis = vt[s > 1e-8 * max(s.max(), 1.0)]
    else:
        basis = np.zeros((0, fp.shape[1]))
    lines = np.unique(rows_c)
    line_pos = np.full(data.deltas.shape[0], -1)
    line_pos[lines] = np.arange(lines.size)

    def features(cc: NDArray[np.intp], dd: NDArray[np.intp]) -> NDArray[np.float64]:
        z = (fp[dd] @ basis.T) * data.fp_valid[dd][:, None]
        onehot = np.zeros((cc.size, lines.size))
        pos = line_pos[cc]
        onehot[np.flatnonzero(pos >= 0), pos[pos >= 0]] = 1.0
        return np.hstack([z, onehot])

    if n_comp < 1:
        return np.tile(col_mean, (c.size, 1))
    pca = PCA(n_components=n_comp, svd_solver="randomized", random_state=seed).fit(y)
    ridge = RidgeCV(alphas=_RIDGE_ALPHAS).fit(features(rows_c, rows_d), pca.transform(y))
    return pca.inverse_transform(ridge.predict(features(c, d))).astype(np.float64)


def pca_ridge(
    data: BaselineData, cells: NDArray[np.intp], drugs: NDArray[np.intp], *, k: int = 10, seed: int = 0
) -> BaselinePrediction:
    """Ridge from fingerprint + one-hot cell line to PCA coordinates of training deltas.

    With ``leave_one_out`` the queries are split into up to 5 seeded folds and each fold is
    predicted by a model fitted without that fold's pairs (one query: exact leave-one-out).

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
            pred[members] = _fit_predict_ridge(data, train, c[members], d[members], seed)
    else:
        pred[:] = _fit_predict_ridge(data, data.train, c, d, seed)
    notes = tuple(
        None if ok else "no structure for the query drug: cell-line term only" for ok in data.fp_valid[d]
    )
    return BaselinePrediction("pca_ridge", pred, np.full(c.size, np.nan), notes)


BaselineFn = Callable[..., BaselinePrediction]

BASELINES: dict[str, BaselineFn] = {
    "cell_mean": cell_mean,
    "drug_mean": drug_mean,
    "chem_knn": chem_knn,
    "pca_ridge": pca_ridge,
}
"""Baseline name -> function ``f(data, cells, drugs, *, k, seed) -> BaselinePrediction``."""


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
    fn = BASELINES.get(name)
    if fn is None:
        raise UnknownNameError(f"unknown baseline {name!r}; valid: {', '.join(BASELINES)}")
    return fn(data, cells, drugs, k=k, seed=seed)
