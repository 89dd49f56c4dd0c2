"""Training label matrices and the vectorised vote: evidence sums per pair, combination, calibration.

For every query pair at once (gathers of the kernel ``K`` at the gene's labelled training
entries and bincounts, no per-pair loop)::

    pos = K[p] . Y+[:, g]        neg = K[p] . Y0[:, g]        unm = K[p] . (1 - M[:, g])
    tot = pos + neg + u * unm                     vote = pos / tot
    v   = (pos + m * pi_g) / (tot + m)            (shrunk toward the gene's prior)
    score = sigmoid(logit f_g + logit v - logit pi_g)
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

_EPS = 1e-6  # probabilities are clipped to [_EPS, 1 - _EPS] before a logit
_CHUNK_CELLS = 4_000_000  # (pair, training entry) expansions per chunk of the vote
_DENSE_MAX = 5000  # kernels over at most this many perturbations are gathered densely


@dataclass(frozen=True, eq=False)
class _Labels:
    """Training label matrices, the labelled entries grouped by gene, and gene statistics."""

    pos: sp.csr_matrix  # P x G, 1 where the gene responded (task dir: went up)
    meas: sp.csr_matrix  # P x G, 1 where the pair is labelled
    evidence: NDArray[np.float64]  # (P,) 1 for perturbations whose labels are evidence
    n_pos: NDArray[np.float64]  # (G,) positives per gene
    n_meas: NDArray[np.float64]  # (G,) labelled pairs per gene
    n_evidence: float  # number of evidence perturbations
    entry_pert: NDArray[np.intp]  # labelled entries sorted by gene: perturbation
    entry_y: NDArray[np.float64]  # ... and label
    gene_ptr: NDArray[np.intp]  # (G + 1,) entries of gene g are gene_ptr[g]:gene_ptr[g + 1]

    @classmethod
    def build(
        cls, p: NDArray[np.intp], g: NDArray[np.intp], y: NDArray[np.float64], shape: tuple[int, int]
    ) -> _Labels:
        pos = sp.csr_matrix((y, (p, g)), shape=shape)
        meas = sp.csr_matrix((np.ones_like(y), (p, g)), shape=shape)
        ev = np.zeros(shape[0])
        ev[np.unique(p)] = 1.0
        order = np.argsort(g, kind="stable")
        n_meas = np.bincount(g, minlength=shape[1])
        return cls(
            pos,
            meas,
            ev,
            np.bincount(g, weights=y, minlength=shape[1]).astype(np.float64),
            n_meas.astype(np.float64),
            float(ev.sum()),
            p[order].astype(np.intp),
            y[order].astype(np.float64),
            np.concatenate([[0], np.cumsum(n_meas)]).astype(np.intp),
        )

    def rates(self, u: float, a: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(f_g, pi_g): training rate of each gene, and the same rate on the vote's scale."""
        total_pos, total_meas = self.n_pos.sum(), self.n_meas.sum()
        base = total_pos / total_meas if total_meas else 0.5
        f = (self.n_pos + a * base) / (self.n_meas + a)
        scaled = self.n_meas + u * (self.n_evidence - self.n_meas)
        base_u = total_pos / max(total_meas + u * (self.n_evidence * len(self.n_meas) - total_meas), _EPS)
        pi = (self.n_pos + a * base_u) / (scaled + a)
        return np.clip(f, _EPS, 1 - _EPS), np.clip(pi, _EPS, 1 - _EPS)


Kernel = NDArray[np.float64] | sp.csr_matrix


def _gatherable(kernels: Sequence[Kernel]) -> list[Kernel]:
    """Kernels ready for element gathers: dense (C order) up to ``_DENSE_MAX`` perturbations."""
    out: list[Kernel] = []
    for k in kernels:
        if sp.issparse(k) and k.shape[0] <= _DENSE_MAX:
            out.append(np.ascontiguousarray(k.toarray()))
        else:
            out.append(k)
    return out


def _evidence_sums(
    kernels: Sequence[Kernel], lab: _Labels, pert: NDArray[np.intp], gene: NDArray[np.intp]
) -> NDArray[np.float64]:
    """(len(kernels), 3, n) evidence masses (pos, neg, unmeasured) of each pair per kernel.

    Each query pair (p, g) is expanded into the labelled training entries (p', g) of its gene;
    the relation weight K[p, p'] of every entry is gathered at once (dense kernels up to
    ``_DENSE_MAX`` perturbations, see :func:`_gatherable`; sparse element lookup above), and
    the weights are summed per pair with ``bincount``, in chunks of at most ``_CHUNK_CELLS``
    entries: no per-pair loop. The kernel's diagonal is zero, so a perturbation is never
    evidence for itself.
    """
    # codes straight from a categorical are int8/int16: the flat kernel offsets below would overflow
    pert, gene = np.asarray(pert, dtype=np.intp), np.asarray(gene, dtype=np.intp)
    n = len(pert)
    out = np.zeros((len(kernels), 3, n))
    if n == 0:
        return out
    kernels = _gatherable(kernels)
    counts = lab.gene_ptr[gene + 1] - lab.gene_ptr[gene]
    starts = lab.gene_ptr[gene]
    cum = np.cumsum(counts)
    bounds = np.searchsorted(
        cum, np.arange(_CHUNK_CELLS, int(cum[-1]) + _CHUNK_CELLS, _CHUNK_CELLS), side="right"
    )
    edges = np.unique(np.concatenate([[0], np.minimum(bounds, n), [n]]))
    row_sums = [np.asarray(k @ lab.evidence).ravel() for k in kernels]
    n_pert = lab.pos.shape[0]
    for lo, hi in itertools.pairwise(edges):
        if hi <= lo:
            continue
        c = counts[lo:hi]
        rep = np.repeat(np.arange(hi - lo), c)
        first = np.repeat(starts[lo:hi] - (np.cumsum(c) - c), c)
        idx = np.arange(len(rep)) + first
        ep, ey, qp = lab.entry_pert[idx], lab.entry_y[idx], pert[lo:hi][rep]
        flat = qp * n_pert + ep
        for k, kern in enumerate(kernels):
            vals = (
                kern.ravel().take(flat) if isinstance(kern, np.ndarray) else np.asarray(kern[qp, ep]).ravel()
            )
            p = np.bincount(rep, weights=vals * ey, minlength=hi - lo)
            m = np.bincount(rep, weights=vals, minlength=hi - lo)
            out[k, 0, lo:hi] = p
            out[k, 1, lo:hi] = m - p
            out[k, 2, lo:hi] = row_sums[k][pert[lo:hi]] - m
    return np.maximum(out, 0.0)


def _combine(
    sums: NDArray[np.float64],
    weights: NDArray[np.float64],
    f: NDArray[np.float64],
    pi: NDArray[np.float64],
    m: float,
    u: float,
    calibration: tuple[float, float, float] = (0.0, 1.0, 1.0),
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """(pos, tot, vote, score) from per-relation sums; ``f``/``pi`` are per pair.

    ``score = sigmoid(c0 + c1 * logit f + c2 * (logit v - logit pi))`` with
    ``calibration = (c0, c1, c2)``; the identity ``(0, 1, 1)`` is the uncalibrated score.
    """
    s = np.einsum("r,rkn->kn", weights, sums)  # (3, n); einsum avoids BLAS threads
    pos, tot = s[0], s[0] + s[1] + u * s[2]
    with np.errstate(divide="ignore", invalid="ignore"):
        vote = np.where(tot > 0, pos / tot, np.nan)
        shrunk = np.where(tot + m > 0, (pos + m * pi) / (tot + m), pi)
    lift = _logit(np.clip(shrunk, _EPS, 1 - _EPS)) - _logit(pi)
    c0, c1, c2 = calibration
    return pos, tot, vote, 1.0 / (1.0 + np.exp(-(c0 + c1 * _logit(f) + c2 * lift)))


def _logit(p: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.log(p / (1 - p))


def _calibrate(
    y: NDArray[np.float64], logit_f: NDArray[np.float64], lift: NDArray[np.float64]
) -> tuple[float, float, float]:
    """Logistic regression of the label on (logit f, lift) over out-of-fold training pairs.

    Monotone in the lift within a gene when its coefficient is positive, so per-gene AUROC
    is unchanged; returns the identity when the fit is degenerate (one class, or a
    non-positive lift coefficient).
    """
    from sklearn.linear_model import LogisticRegression

    if y.min() == y.max():
        return (0.0, 1.0, 1.0)
    x = np.column_stack([logit_f, lift])
    lr = LogisticRegression(C=1e4, max_iter=500).fit(x, y)
    c1, c2 = (float(v) for v in lr.coef_[0])
    if c2 <= 0 or c1 <= 0:
        return (0.0, 1.0, 1.0)
    return (float(lr.intercept_[0]), c1, c2)
