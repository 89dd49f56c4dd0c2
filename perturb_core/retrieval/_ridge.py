"""PCA + ridge machinery of the ``pca_ridge`` baseline: fits from scratch or downdated from cached cross-products.

A ``pca_ridge`` fit that leaves out a few pairs of a larger cached set (one explained query:
its own pair in the open world, its drug's or line's pairs in the other regimes) does not
refit from the data: the cross-products of the cached pairs are computed once
(:class:`RidgeMoments`, shared through a :class:`RidgeReference`), the left-out rows are
subtracted exactly, and scikit-learn's randomized PCA is replayed on the resulting
covariance with the same random matrix. The result equals a fresh fit without those pairs
up to float rounding (tests/retrieval/test_baselines.py); the left-out pairs never enter it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray
from scipy import linalg
from sklearn.decomposition import PCA
from sklearn.linear_model import RidgeCV

if TYPE_CHECKING:
    from perturb_core.retrieval.baselines import BaselineData

_N_COMPONENTS = 50
_PCA_OVERSAMPLES = 10  # scikit-learn's PCA default
_PCA_DTYPE: type[np.floating] = np.float32  # PCA in single precision is plenty and 2x faster
_RIDGE_ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0)
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
class Design:
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


def divide(num: NDArray[np.float64], den: NDArray[np.float64]) -> NDArray[np.float64]:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def fit_design(data: BaselineData, train: NDArray[np.bool_]) -> Design:
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
    return Design((fp @ basis.T) * data.fp_valid[:, None], line_pos, int(lines.size))


def _imputed_mean(total: NDArray[np.float64], count: NDArray[np.float64]) -> NDArray[np.float64]:
    """Gene means of the measured values; 0 for a gene measured nowhere (as the imputation uses)."""
    mean = divide(total, count)
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
    design = fit_design(data, train)
    pca = PCA(n_components=n_comp, svd_solver="randomized", random_state=seed).fit(y)
    ridge = RidgeCV(alphas=_RIDGE_ALPHAS).fit(design.features(rows_c, rows_d), pca.transform(y))
    return pca.inverse_transform(ridge.predict(design.features(c, d))).astype(np.float64)


def split_moments(data: BaselineData) -> RidgeMoments:
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


def fit_predict(
    data: BaselineData, fit_train: NDArray[np.bool_], c: NDArray[np.intp], d: NDArray[np.intp], seed: int
) -> NDArray[np.float64]:
    """PCA + ridge fitted on ``fit_train``, predicting (c, d): downdated when cached, else refitted."""
    plan = _downdate_plan(data, fit_train)
    if plan is not None:
        return _fit_predict_downdate(data, plan, c, d, seed)
    return _fit_predict_ridge(data, fit_train, c, d, seed)
