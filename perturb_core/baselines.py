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

A ``pca_ridge`` fit that leaves out a few pairs of a larger cached set (one explained query:
its own pair in the open world, its drug's or line's pairs in the other regimes) does not
refit from the data: the cross-products of the cached pairs are computed once
(:class:`RidgeMoments`, shared through a :class:`RidgeReference`), the left-out rows are
subtracted exactly, and scikit-learn's randomized PCA is replayed on the resulting
covariance with the same random matrix. The result equals a fresh fit without those pairs
up to float rounding (tests/test_baselines.py); the left-out pairs never enter it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from scipy import linalg
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
    "RidgeMoments",
    "RidgeReference",
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
_PCA_OVERSAMPLES = 10  # scikit-learn's PCA default
_PCA_DTYPE: type[np.floating] = np.float32  # PCA in single precision is plenty and 2x faster
_RIDGE_ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0)
_N_FOLDS = 5
_MAX_DOWNDATE_ROWS = 128  # fits dropping up to this many cached pairs are downdated, not refitted


@dataclass(frozen=True, eq=False)
class RidgeMoments:
    """Cross-products of the deltas of a set of pairs, from which ``pca_ridge`` drops pairs exactly.

    Rows are the pairs (a split's training pairs, or a :class:`RidgeReference`'s); ``centred`` holds ``observed * (delta - mean)`` (0 where a
    gene is missing, which is what imputing the gene mean and centring gives). With the three
    Gram blocks, the covariance of the mean-imputed deltas of any subset of rows follows from a
    low-rank downdate (see :func:`_downdated_covariance`).

    Attributes:
        row_of: (C, D) row of each pair, -1 for the others.
        cells: (N,) cell-line index of each row.
        drugs: (N,) drug index of each row.
        centred: (N, G) centred deltas, 0 where missing.
        observed: (N, G) 1.0 where the gene was measured.
        total: (G,) sum of the measured values.
        count: (G,) number of measured values.
        mean: (G,) ``total / count`` (0 for a gene never measured).
        cov: (G, G) ``centredᵀ centred``.
        cross: (G, G) ``centredᵀ observed``.
        overlap: (G, G) ``observedᵀ observed``.
    """

    row_of: NDArray[np.intp]
    cells: NDArray[np.intp]
    drugs: NDArray[np.intp]
    centred: NDArray[np.floating]
    observed: NDArray[np.floating]
    total: NDArray[np.float64]
    count: NDArray[np.float64]
    mean: NDArray[np.float64]
    cov: NDArray[np.floating]
    cross: NDArray[np.floating]
    overlap: NDArray[np.floating]


@dataclass(frozen=True, eq=False)
class RidgeReference:
    """Pairs and genes whose ``pca_ridge`` cross-products many splits share (computed on first use).

    A dataset's every profiled pair on a superset of the evaluation genes covers all its
    single-query splits: open world (drop the query pair), unseen drug (drop the drug's pairs),
    unseen cell line (drop the line's pairs), each on its own evaluation genes.

    Attributes:
        values: (R, X) matrix holding the deltas (e.g. a dataset's ``X``; read, never copied).
        rows: (C, D) row of each reference pair in ``values``, -1 for pairs outside the reference.
        gene_ids: (G_ref,) columns of ``values`` the cross-products cover.
    """

    values: NDArray[np.float32] = field(repr=False)
    rows: NDArray[np.intp] = field(repr=False)
    gene_ids: NDArray[np.intp] = field(repr=False)

    @property
    def pairs(self) -> NDArray[np.bool_]:
        """(C, D) the reference's pairs."""
        return self.rows >= 0

    @cached_property
    def moments(self) -> RidgeMoments:
        """Cross-products of the reference pairs on ``gene_ids``."""
        c, d = np.nonzero(self.pairs)
        return _moments_of(
            self.values[self.rows[c, d][:, None], self.gene_ids[None, :]], c, d, self.rows.shape
        )


@dataclass(frozen=True, eq=False)
class _Design:
    """Ridge features of a training set: fingerprint coordinates per drug and line columns."""

    z: NDArray[np.float64]  # (D, r) fingerprints in an orthonormal basis of the training drugs' ones
    line_pos: NDArray[np.intp]  # (C,) one-hot column of each line, -1 for lines without a training pair
    n_lines: int

    def features(self, cells: NDArray[np.intp], drugs: NDArray[np.intp]) -> NDArray[np.float64]:
        """(Q, r + n_lines) design rows of the pairs (cells, drugs)."""
        onehot = np.zeros((cells.size, self.n_lines))
        pos = self.line_pos[cells]
        onehot[np.flatnonzero(pos >= 0), pos[pos >= 0]] = 1.0
        return np.hstack([self.z[drugs], onehot])


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
    """

    deltas: NDArray[np.float32]
    train: NDArray[np.bool_]
    fingerprints: NDArray[np.bool_]
    fp_valid: NDArray[np.bool_]
    leave_one_out: bool = False
    reference: RidgeReference | None = None
    gene_ids: NDArray[np.intp] | None = None

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
    def ridge_design(self) -> _Design:
        """``pca_ridge`` features of the training pairs (shared by every leave-out fold)."""
        return _design(self, self.train)

    @cached_property
    def ridge_moments(self) -> RidgeMoments:
        """Cross-products of the training deltas (leave-one-out fits without a covering reference)."""
        return _moments(self)

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


def _design(data: BaselineData, train: NDArray[np.bool_]) -> _Design:
    """Fingerprint basis and line columns of the training pairs ``train``."""
    rows_c, rows_d = np.nonzero(train)
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
    return _Design((fp @ basis.T) * data.fp_valid[:, None], line_pos, int(lines.size))


def _imputed_mean(total: NDArray[np.float64], count: NDArray[np.float64]) -> NDArray[np.float64]:
    """Gene means of the measured values; 0 for a gene measured nowhere (as the imputation uses)."""
    mean = _divide(total, count)
    return np.where(np.isnan(mean), 0.0, mean)


def _fit_predict_ridge(
    data: BaselineData,
    train: NDArray[np.bool_],
    c: NDArray[np.intp],
    d: NDArray[np.intp],
    seed: int,
) -> NDArray[np.float64]:
    """Fit PCA + ridge on ``train`` pairs from scratch and predict the queries (c, d)."""
    rows_c, rows_d = np.nonzero(train)
    y = data.deltas[rows_c, rows_d].astype(_PCA_DTYPE, copy=False)  # (N, G)
    observed = ~np.isnan(y)
    col_mean = _imputed_mean(
        np.where(observed, y, 0.0).sum(0, dtype=np.float64), observed.sum(0).astype(np.float64)
    )
    y = np.where(observed, y, col_mean[None, :].astype(y.dtype))
    n_comp = int(min(_N_COMPONENTS, y.shape[0] - 1, y.shape[1]))
    if n_comp < 1:
        return np.tile(col_mean, (c.size, 1))
    design = _design(data, train)
    pca = PCA(n_components=n_comp, svd_solver="randomized", random_state=seed).fit(y)
    ridge = RidgeCV(alphas=_RIDGE_ALPHAS).fit(design.features(rows_c, rows_d), pca.transform(y))
    return pca.inverse_transform(ridge.predict(design.features(c, d))).astype(np.float64)


def _moments(data: BaselineData) -> RidgeMoments:
    """Cross-products of a split's own training pairs."""
    c, d = np.nonzero(data.train)
    return _moments_of(data.deltas[c, d], c, d, data.train.shape)


def _moments_of(
    y: NDArray[np.float32], cells: NDArray[np.intp], drugs: NDArray[np.intp], shape: tuple[int, int]
) -> RidgeMoments:
    """Centred deltas of rows (cells, drugs) and their Gram blocks (two syrk and one gemm)."""
    dt = _PCA_DTYPE
    observed = ~np.isnan(y)
    y0 = np.where(observed, y, 0.0).astype(dt)
    total, count = y0.sum(0, dtype=np.float64), observed.sum(0).astype(np.float64)
    mean = _imputed_mean(total, count)
    centred = np.where(observed, y0 - mean.astype(dt), dt(0.0))
    del y0
    obs = observed.astype(dt)
    syrk = linalg.get_blas_funcs("syrk", (centred,))

    def gram(a: NDArray[np.floating]) -> NDArray[np.floating]:
        upper = syrk(1.0, a.T, trans=0)  # upper triangle of aᵀa (a.T is Fortran-ordered: no copy)
        return np.triu(upper) + np.triu(upper, 1).T

    row_of = np.full(shape, -1, dtype=np.intp)
    row_of[cells, drugs] = np.arange(cells.size)
    return RidgeMoments(
        row_of=row_of,
        cells=cells,
        drugs=drugs,
        centred=centred,
        observed=obs,
        total=total,
        count=count,
        mean=mean,
        cov=gram(centred),
        cross=centred.T @ obs,
        overlap=gram(obs),
    )


def _block(matrix: NDArray[np.floating], genes: NDArray[np.intp]) -> NDArray[np.floating]:
    """``matrix[genes][:, genes]``, as a view when the genes are a contiguous run."""
    if genes.size and genes[-1] - genes[0] + 1 == genes.size and (np.diff(genes) == 1).all():
        return matrix[genes[0] : genes[-1] + 1, genes[0] : genes[-1] + 1]
    return np.take(np.take(matrix, genes, axis=0), genes, axis=1)  # 2x faster than np.ix_ here


def _downdated_covariance(
    mom: RidgeMoments, drop: NDArray[np.intp], genes: NDArray[np.intp]
) -> tuple[NDArray[np.floating], NDArray[np.float64]]:
    """Scatter matrix of the mean-imputed, centred deltas without rows ``drop``, and their gene means.

    Restricted to the columns ``genes`` of the moments. Without the dropped rows the gene means
    move from m to m' = m + δ, so the kept rows' centred deltas become
    ``centred − observed·diag(δ)``; expanding the product gives
    ``cov − A − Aᵀ + diag(δ)·overlap·diag(δ)`` with ``A = cross·diag(δ)``, each term minus the
    dropped rows' own (rank-r) contribution. Exact; no pass over the N kept rows.
    """
    yr = mom.centred[np.ix_(drop, genes)].astype(np.float64)
    orr = mom.observed[np.ix_(drop, genes)].astype(np.float64)
    m0 = mom.mean[genes]
    mean = _imputed_mean(mom.total[genes] - (yr + orr * m0).sum(0), mom.count[genes] - orr.sum(0))
    delta = mean - m0
    dt = mom.cov.dtype
    yr_t, od, dd = yr.T.astype(dt), (orr * delta).astype(dt), delta.astype(dt)
    a = _block(mom.cross, genes) * dd[None, :]
    a -= yr_t @ od
    out = _block(mom.cov, genes) - a
    out -= a.T
    np.multiply(_block(mom.overlap, genes), dd[:, None], out=a)
    a *= dd[None, :]
    out += a
    out -= yr_t @ yr_t.T
    out -= od.T @ od
    return out, mean


def _randomized_components(
    cov: NDArray[np.floating], n_comp: int, n_rows: int, seed: int
) -> NDArray[np.float64]:
    """scikit-learn's randomized PCA (``PCA(svd_solver="randomized", random_state=seed)``) from the covariance.

    sklearn draws Ω (G × (n_comp + 10)) from ``RandomState(seed)``, takes P = Cⁿ·Ω by n power
    iterations (n = 7, or 4 when n_comp ≥ 0.1·min(N, G)), and returns the top right singular
    vectors of B = Qᵀ·Y with Q an orthonormal basis of Y·P. Those are the top eigenvectors of
    BᵀB = Z·W⁻¹·Zᵀ with Z = C·P and W = Pᵀ·C·P, which need C only. Same subspace, same
    components (up to sign) as the data-matrix computation, in exact arithmetic.

    Returns:
        (n_comp, G) components, rows ordered by explained variance.
    """
    g = cov.shape[0]
    n_iter = 7 if n_comp < 0.1 * min(n_rows, g) else 4
    p = np.random.RandomState(seed).normal(size=(g, n_comp + _PCA_OVERSAMPLES)).astype(cov.dtype)
    for _ in range(n_iter):
        p, _ = linalg.lu(cov @ p, permute_l=True, check_finite=False)
    p, _ = linalg.qr(p, mode="economic", check_finite=False)
    z = (cov @ p).astype(np.float64)
    w, e = np.linalg.eigh(0.5 * (p.T @ z + z.T @ p))
    keep = w > w.max() * 1e-12
    u, _, _ = np.linalg.svd(z @ (e[:, keep] / np.sqrt(w[keep])), full_matrices=False)
    return u[:, :n_comp].T


@dataclass(frozen=True, eq=False)
class _DowndatePlan:
    """How a fit comes from cached cross-products: whose, which rows to drop, which columns."""

    moments: RidgeMoments
    drop: NDArray[np.intp]  # rows of the moments outside the fit
    genes: NDArray[np.intp]  # columns of the moments, one per gene of the data


def _downdate_plan(data: BaselineData, fit_train: NDArray[np.bool_]) -> _DowndatePlan | None:
    """The cached cross-products a fit on ``fit_train`` can be downdated from, or ``None`` (refit).

    The data's :class:`RidgeReference` when it covers the fit's pairs and genes; otherwise, for
    leave-one-out, the split's own moments. At most :data:`_MAX_DOWNDATE_ROWS` rows may be
    dropped, and the shape must be one where sklearn's randomized PCA works on the data matrix
    as is (at least as many kept rows as genes, more genes than components + oversamples).
    """
    g = data.deltas.shape[2]
    n_keep = int(fit_train.sum())
    n_comp = min(_N_COMPONENTS, n_keep - 1, g)
    if n_keep < g or n_comp + _PCA_OVERSAMPLES > g:
        return None
    ref = data.reference
    if ref is not None and data.gene_ids is not None and not (fit_train & ~ref.pairs).any():
        sorter = np.argsort(ref.gene_ids)
        at = sorter[np.searchsorted(ref.gene_ids, data.gene_ids, sorter=sorter).clip(0, sorter.size - 1)]
        dropped = ref.pairs & ~fit_train
        if (ref.gene_ids[at] == data.gene_ids).all() and 0 < dropped.sum() <= _MAX_DOWNDATE_ROWS:
            mom = ref.moments
            return _DowndatePlan(mom, mom.row_of[dropped], at)
    dropped = data.train & ~fit_train
    if data.leave_one_out and not (fit_train & ~data.train).any() and 0 < dropped.sum() <= _MAX_DOWNDATE_ROWS:
        mom = data.ridge_moments
        return _DowndatePlan(mom, mom.row_of[dropped], np.arange(g))
    return None


def _fit_predict_downdate(
    data: BaselineData, plan: _DowndatePlan, c: NDArray[np.intp], d: NDArray[np.intp], seed: int
) -> NDArray[np.float64]:
    """PCA + ridge without the plan's dropped rows, from cached moments (same fit as from scratch)."""
    mom = plan.moments
    keep = np.ones(mom.cells.size, dtype=bool)
    keep[plan.drop] = False
    cov, mean = _downdated_covariance(mom, plan.drop, plan.genes)
    n_keep = int(keep.sum())
    comp = _randomized_components(cov, int(min(_N_COMPONENTS, n_keep - 1, cov.shape[0])), n_keep, seed)
    # PCA coordinates of the kept rows, (centred − observed·diag(δ)) @ componentsᵀ, over the
    # moments' columns (zero weight on those outside the data's genes: no column copy)
    dt = mom.centred.dtype
    weights = np.zeros((mom.centred.shape[1], comp.shape[0]), dtype=dt)
    weights[plan.genes] = comp.T
    shift = np.zeros_like(weights)
    shift[plan.genes] = comp.T * (mean - mom.mean[plan.genes])[:, None]
    scores = mom.centred @ weights - mom.observed @ shift
    design = data.ridge_design
    ridge = RidgeCV(alphas=_RIDGE_ALPHAS).fit(design.features(mom.cells[keep], mom.drugs[keep]), scores[keep])
    return ridge.predict(design.features(c, d)) @ comp + mean[None, :]


def _fit_predict(
    data: BaselineData, fit_train: NDArray[np.bool_], c: NDArray[np.intp], d: NDArray[np.intp], seed: int
) -> NDArray[np.float64]:
    """PCA + ridge fitted on ``fit_train``, predicting (c, d): downdated when cached, else refitted."""
    plan = _downdate_plan(data, fit_train)
    if plan is not None:
        return _fit_predict_downdate(data, plan, c, d, seed)
    return _fit_predict_ridge(data, fit_train, c, d, seed)


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
            pred[members] = _fit_predict(data, train, c[members], d[members], seed)
    else:
        pred[:] = _fit_predict(data, data.train, c, d, seed)
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
