"""CORE-Learned: a gradient-boosted model over the evidence of a pair, fitted by CV inside train.

For a query (p, g) the features are, from TRAINING labels only (see :func:`FEATURE_LABELS`):

- per relation r (unweighted, each scaled to mean row sum 1): the positive, negative and
  unmeasured evidence masses and the positive fraction pos / (pos + neg);
- the fitted CORE-Voting kernel's vote (shrunk, and its lift over the prior) and evidence size;
- the gene prior (logit of g's training rate) and how many training pairs measured g;
- related perturbations' strength: the kernel-weighted response rate of the related
  training perturbations over all their labelled genes;
- gene-side smoothing: related perturbations' outcomes on the genes whose training response
  profiles are closest to g's (cosine of the positive indicators, ``gene_neighbours`` per gene),
  as a positive mass and a positive fraction;
- with cross-line evidence: the ``co_response`` relation's masses (above) and
  :func:`perturb_core.evidence._crossline.crossline_pair_features`.

Fitting (``fit_core_learned``): training perturbations are split into the CORE-Voting folds;
for each fold the features of its training pairs are computed with the other folds' labels
as evidence (out-of-fold rows, as a test pair sees only training evidence). The boosting
settings are chosen from a small grid by the mean over folds of the macro per-gene AUROC of
a model trained on the other folds' rows; the final model is trained on all out-of-fold rows.

A query pair is scored the way the model was trained: its features are computed once per
fold with that fold's evidence (the training labels of the other folds) and the model's
probabilities under the five evidence sets are averaged. Features computed with every training label instead would hold
5/4 of the evidence a training row saw (masses, counts and smoothing all shift), a mismatch
that cost 0.007-0.011 macro per-gene AUROC in a nested check on training perturbations only
(docs/core.md). A prediction is explained by each feature's contribution: the change in the
model's log-odds when that feature is set to its median over the training rows, averaged
over the folds' evidence sets.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from numpy.typing import NDArray

from perturb_core.data.registry import LabelSet
from perturb_core.errors import ValidationError
from perturb_core.evidence._crossline import crossline_pair_features
from perturb_core.evidence._fit import _codes, _folds, _GeneAUROC
from perturb_core.evidence._index import CROSSLINE_MAX_ROUNDS, CoreIndex, core_index
from perturb_core.evidence._labels import _EPS, _combine, _evidence_sums, _gatherable, _Labels, _logit
from perturb_core.evidence._options import VotingOptions
from perturb_core.kg import KnowledgeGraph
from perturb_core.memo import Memo

__all__ = ["CoreLearned", "LearnedOptions", "core_learned", "fit_core_learned", "learned_index"]

_SIDES = ("positive mass", "negative mass", "unmeasured mass", "positive fraction")


@dataclass(frozen=True)
class LearnedOptions:
    """How CORE-Learned is fitted.

    Attributes:
        grid: candidate boosting settings ``(learning rate, iterations, max leaf nodes)``;
            the CV-best is used.
        gene_neighbours: genes per gene in the gene-side smoothing.
        l2: L2 regularisation of the boosting.
        threads: OpenMP threads of the boosting.
    """

    grid: tuple[tuple[float, int, int], ...] = ((0.1, 100, 15), (0.1, 200, 31))
    gene_neighbours: int = 20
    l2: float = 1.0
    threads: int = 1

    def __post_init__(self) -> None:
        if not self.grid:
            raise ValidationError("grid must hold at least one (learning rate, iterations, leaves) setting")
        if self.gene_neighbours < 1:
            raise ValidationError(f"gene_neighbours = {self.gene_neighbours} must be >= 1")


def _gene_neighbours(lab: _Labels, k: int) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
    """(G x k indices, G x k cosine weights) of each gene's closest genes by training co-response."""
    y = lab.pos.tocsc().astype(np.float64)
    n = np.sqrt(np.asarray(y.multiply(y).sum(axis=0)).ravel())
    n[n == 0] = 1.0
    yn = y @ sp.diags(1.0 / n)
    c = (yn.T @ yn).tocsr()
    c.setdiag(0.0)
    c.eliminate_zeros()
    g = c.shape[0]
    idx = np.zeros((g, k), dtype=np.intp)
    w = np.zeros((g, k))
    for r in range(g):
        lo, hi = c.indptr[r], c.indptr[r + 1]
        if hi == lo:
            continue
        vals, cols = c.data[lo:hi], c.indices[lo:hi]
        top = np.argsort(-vals, kind="stable")[:k]
        idx[r, : len(top)] = cols[top]
        w[r, : len(top)] = vals[top]
    return idx, w


@dataclass(frozen=True, eq=False)
class _Evidence:
    """One evidence set (training labels) with the gene-side neighbours derived from it."""

    lab: _Labels
    neighbours: NDArray[np.intp]  # G x k
    weights: NDArray[np.float64]  # G x k

    @classmethod
    def of(cls, lab: _Labels, k: int) -> _Evidence:
        return cls(lab, *_gene_neighbours(lab, k))


def _fold_evidence(index: CoreIndex, k: int) -> list[tuple[NDArray[np.bool_], _Evidence]]:
    """Per CORE-Voting fold: (mask of its training pairs, the evidence set of the other folds)."""
    pert, gene, y, train = _codes(index.labels)
    model = index.model
    shape = (len(index.perturbations), len(index.genes))
    fmap = _folds(np.unique(pert[train]), model.n_folds, model.seed)
    fold_of = np.full(shape[0], -1)
    fold_of[list(fmap)] = list(fmap.values())
    fold = fold_of[pert]
    out = []
    for f in range(model.n_folds):
        ev, q = train & (fold != f), train & (fold == f)
        if q.any() and ev.any():
            out.append((q, _Evidence.of(_Labels.build(pert[ev], gene[ev], y[ev], shape), k)))
    return out


def _feature_names(index: CoreIndex) -> tuple[str, ...]:
    names = [f"{r}: {s}" for r in index.relation_set.relations for s in _SIDES]
    names += [
        "voting: shrunk vote (lift over prior)",
        "voting: evidence size",
        "gene prior (logit of training rate)",
        "gene: training pairs measured",
        "related perturbations: response rate",
        "gene-side smoothing: positive mass",
        "gene-side smoothing: positive fraction",
    ]
    if index.crossline:
        names += [
            "cross-line: same pair measured (lines)",
            "cross-line: same pair responded (lines)",
            "cross-line: gene rate in other lines",
            "cross-line: knock-down strength in other lines",
        ]
    return tuple(names)


@dataclass(frozen=True, eq=False)
class _PairInputs:
    """What the features of a set of pairs need whatever the evidence set: built once per call."""

    relations: list[Any]  # gather-ready relation matrices
    row: NDArray[np.intp]  # each pair's row in k_rows
    k_rows: NDArray[np.float64]  # the voting kernel's rows of the pairs' unique perturbations
    crossline: list[NDArray[np.float64]]  # the cross-line pair features (empty: single-line)

    @classmethod
    def of(
        cls,
        index: CoreIndex,
        pert: NDArray[np.intp],
        gene: NDArray[np.intp],
        relations: list[Any] | None = None,
    ) -> _PairInputs:
        """``relations``: :func:`_relations` of the index, when several pair sets share them."""
        kern = index.memo.get("gather", lambda: _gatherable([index._kernel]))[0]
        uniq, row = np.unique(pert, return_inverse=True)
        k_rows = kern[uniq] if isinstance(kern, np.ndarray) else kern[uniq].toarray()
        xl: list[NDArray[np.float64]] = []
        if index.crossline:
            f = crossline_pair_features(index.labels, index.crossline, pert, gene)
            xl = [f[c] for c in ("xl_same_measured", "xl_same_pos", "xl_gene_rate", "xl_pert_strength")]
        return cls(relations or _relations(index), row.astype(np.intp), k_rows, xl)


def _relations(index: CoreIndex) -> list[Any]:
    """The index's relation matrices, gather-ready (dense up to a size), in relation order."""
    return _gatherable([rm.matrix for rm in index.relation_set.relations.values()])


def _features(
    index: CoreIndex,
    evidence: _Evidence,
    pert: NDArray[np.intp],
    gene: NDArray[np.intp],
    shared: _PairInputs | None = None,
) -> NDArray[np.float64]:
    """(n, F) feature matrix of pairs with ``evidence`` (column order: :func:`_feature_names`).

    ``shared``: :meth:`_PairInputs.of` the same pairs, when they are scored under several evidence sets.
    """
    lab = evidence.lab
    shared = shared or _PairInputs.of(index, pert, gene)
    kern = index.memo.get("gather", lambda: _gatherable([index._kernel]))[0]
    sums = _evidence_sums(shared.relations, lab, pert, gene)
    cols: list[NDArray[np.float64]] = []
    with np.errstate(divide="ignore", invalid="ignore"):
        for r in range(sums.shape[0]):
            pos, neg, unm = sums[r]
            cols += [pos, neg, unm, np.where(pos + neg > 0, pos / (pos + neg), np.nan)]
        model = index.model
        f, pi = lab.rates(model.unmeasured, model.prior_pseudocount)
        vs = _evidence_sums([kern], lab, pert, gene)
        _, tot, _, _ = _combine(vs, np.ones(1), f[gene], pi[gene], model.shrinkage, model.unmeasured)
        s = vs[0]
        shrunk = np.where(
            tot + model.shrinkage > 0, (s[0] + model.shrinkage * pi[gene]) / (tot + model.shrinkage), pi[gene]
        )
        cols += [_logit(np.clip(shrunk, _EPS, 1 - _EPS)) - _logit(pi[gene]), tot]
        cols += [_logit(f[gene]), lab.n_meas[gene]]
        row, k_rows = shared.row, shared.k_rows  # only the query perturbations' kernel rows
        meas_p = np.asarray(lab.meas.sum(axis=1)).ravel()
        pos_p = np.asarray(lab.pos.sum(axis=1)).ravel()
        strength = np.where(meas_p > 0, pos_p / meas_p, 0.0)
        num, den = k_rows @ (strength * lab.evidence), k_rows @ lab.evidence
        cols.append(np.where(den[row] > 0, num[row] / den[row], np.nan))
        nb, w = evidence.neighbours, evidence.weights
        ky = np.asarray((lab.pos.T @ k_rows.T).T)  # U x G: kernel-weighted positives
        km = np.asarray((lab.meas.T @ k_rows.T).T)
        sp_pos = (ky[row[:, None], nb[gene]] * w[gene]).sum(axis=1)
        sp_meas = (km[row[:, None], nb[gene]] * w[gene]).sum(axis=1)
        cols += [sp_pos, np.where(sp_meas > 0, sp_pos / sp_meas, np.nan)]
    return np.column_stack([*cols, *shared.crossline]).astype(np.float64)


_MISSING = -1e3  # stand-in for "no evidence" (NaN) below every real feature value


def _ready(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """Features as the booster sees them: NaN (no evidence of that kind) -> a value below all others."""
    return np.where(np.isnan(x), _MISSING, x)


def _booster(setting: tuple[float, int, int], l2: float) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    lr, n_iter, leaves = setting
    return HistGradientBoostingClassifier(
        learning_rate=lr,
        max_iter=n_iter,
        max_leaf_nodes=leaves,
        l2_regularization=l2,
        early_stopping=False,
        random_state=0,
    )


@dataclass(frozen=True, eq=False)
class CoreLearned:
    """A fitted CORE-Learned model over one :class:`CoreIndex` (single-line or cross-line).

    Attributes:
        index: the CORE index whose relations, voting kernel and training labels feed the features.
        features: feature names (column order).
        model: the fitted scikit-learn ``HistGradientBoostingClassifier``.
        reference: per-feature median over the out-of-fold training rows (contribution baseline).
        setting: the CV-chosen ``(learning rate, iterations, max leaf nodes)``.
        cv: setting -> mean over folds of the macro per-gene AUROC.
        options: the fitting options.
        evidence: the folds' evidence sets (training labels of the other folds) a query is
            scored under; the training rows of fold f had the f-th as their evidence.
        memo: derived tables (test scores).
    """

    index: CoreIndex
    features: tuple[str, ...]
    model: Any = field(repr=False)
    reference: NDArray[np.float64] = field(repr=False)
    setting: tuple[float, int, int]
    cv: dict[tuple[float, int, int], float]
    options: LearnedOptions
    evidence: tuple[_Evidence, ...] = field(repr=False)
    memo: Memo = field(default_factory=Memo, init=False, repr=False, compare=False)

    def feature_matrices(self, pert: NDArray[np.intp], gene: NDArray[np.intp]) -> list[NDArray[np.float64]]:
        """Features of pairs (perturbation and gene codes), one (n, F) matrix per fold's evidence set."""
        p, g = np.asarray(pert, dtype=np.intp), np.asarray(gene, dtype=np.intp)
        shared = _PairInputs.of(self.index, p, g)
        return [_features(self.index, ev, p, g, shared) for ev in self.evidence]

    def score(self, pert: NDArray[np.intp], gene: NDArray[np.intp]) -> pd.DataFrame:
        """``score`` of pairs given as codes: the probability averaged over the folds' evidence sets."""
        ps = [self._predict(x) for x in self.feature_matrices(pert, gene)]
        return pd.DataFrame({"score": np.mean(ps, axis=0)})

    def _predict(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(self.options.threads):
            return np.asarray(self.model.predict_proba(_ready(x))[:, 1], dtype=np.float64)

    def contributions(self, pert: int, gene: int) -> pd.DataFrame:
        """Each feature's value and contribution to one pair's log-odds, largest effect first.

        ``value`` is the feature's mean over the folds' evidence sets (NaN: no evidence of that
        kind in any); ``contribution`` = log-odds of the pair minus log-odds with that feature
        set to its training median (``reference``), averaged over the evidence sets; they need
        not add up exactly (trees interact).
        """
        xs = self.feature_matrices(np.array([pert]), np.array([gene]))
        n = len(self.features)
        rows = np.repeat(np.vstack(xs), n + 1, axis=0)  # per evidence set: the pair, then n edits
        for e in range(len(xs)):
            rows[e * (n + 1) + 1 + np.arange(n), np.arange(n)] = self.reference
        lo = _logit(np.clip(self._predict(rows), _EPS, 1 - _EPS)).reshape(len(xs), n + 1)
        with warnings.catch_warnings():  # a feature missing under every evidence set stays NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            value = np.nanmean(np.vstack(xs), axis=0)
        out = pd.DataFrame(
            {
                "feature": self.features,
                "value": value,
                "reference": self.reference,
                "contribution": (lo[:, :1] - lo[:, 1:]).mean(axis=0),
            }
        )
        return out.reindex(out["contribution"].abs().sort_values(ascending=False).index).reset_index(
            drop=True
        )

    def gene_auroc(self, gene: int) -> tuple[float | None, int]:
        """AUROC of this model over the test perturbations of one gene (``None`` with one class), pairs."""
        t = self.index.labels.table
        sel = ((t["split"] == "test") & (t["gene"].cat.codes == gene)).to_numpy()
        y = t["label"].to_numpy()[sel].astype(np.float64)
        if not len(y) or y.min() == y.max():
            return None, len(y)
        p = t["pert"].cat.codes.to_numpy()[sel].astype(np.intp)
        s = self.score(p, np.full(len(p), gene, dtype=np.intp))["score"].to_numpy()
        return float(_GeneAUROC(y, np.zeros(len(y), dtype=np.intp)).mean(s)), len(y)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON description of the fit (voting parameters underneath)."""
        lr, n_iter, leaves = self.setting
        return {
            "kind": "core_learned",
            "crossline": bool(self.index.crossline),
            "features": list(self.features),
            "setting": {"learning_rate": lr, "max_iter": n_iter, "max_leaf_nodes": leaves},
            "cv_macro_gene_auroc": {f"{a}/{b}/{c}": v for (a, b, c), v in self.cv.items()},
            "scored_under": f"mean probability over the {len(self.evidence)} folds' evidence sets",
            "voting": self.index.model.to_dict(),
        }


def fit_core_learned(index: CoreIndex, options: LearnedOptions | None = None) -> CoreLearned:
    """Fit CORE-Learned on the training split of ``index.labels`` (see the module docstring)."""
    from threadpoolctl import threadpool_limits

    options = options or LearnedOptions()
    labels = index.labels
    pert, gene, y, _ = _codes(labels)
    folds = _fold_evidence(index, options.gene_neighbours)
    xs, ys, gs, fs = [], [], [], []
    rels = _relations(index)
    for k, (q, ev) in enumerate(folds):
        xs.append(_features(index, ev, pert[q], gene[q], _PairInputs.of(index, pert[q], gene[q], rels)))
        ys.append(y[q])
        gs.append(gene[q])
        fs.append(np.full(int(q.sum()), k))
    if len(xs) < 2:
        raise ValidationError(f"{labels.name}: too few training perturbations to fit CORE-Learned")
    x, yy, gg, ff = np.vstack(xs), np.concatenate(ys), np.concatenate(gs), np.concatenate(fs)
    if yy.min() == yy.max():
        raise ValidationError(f"{labels.name}: the out-of-fold training pairs hold one class only")
    with warnings.catch_warnings():  # an all-missing column has a missing reference
        warnings.simplefilter("ignore", RuntimeWarning)
        ref = np.nanmedian(x, axis=0)
    x = _ready(x)
    cv: dict[tuple[float, int, int], float] = {}
    with threadpool_limits(options.threads):
        for setting in options.grid:
            vals = []
            for k in np.unique(ff):
                tr, te = ff != k, ff == k
                if yy[tr].min() == yy[tr].max():
                    continue
                est = _booster(setting, options.l2).fit(x[tr], yy[tr])
                v = _GeneAUROC(yy[te], gg[te]).mean(est.predict_proba(x[te])[:, 1])
                if not np.isnan(v):
                    vals.append(v)
            cv[setting] = float(np.mean(vals)) if vals else 0.5
        best = max(options.grid, key=lambda s: cv[s])
        final = _booster(best, options.l2).fit(x, yy)
    evidence = tuple(ev for _, ev in folds)
    return CoreLearned(index, _feature_names(index), final, ref, best, cv, options, evidence)


def learned_index(
    labels: LabelSet, graph: KnowledgeGraph, *, crossline: Sequence[LabelSet] | None = None
) -> CoreIndex:
    """The CORE index CORE-Learned builds its features on.

    Single-line: CORE-Voting refitted with coordinate ascent run until a pass no longer raises
    the CV objective (at most :data:`CROSSLINE_MAX_ROUNDS` passes), so no setting chosen with a
    test number in view (``core_voting``'s one pass) enters the learned model. Cross-line: the
    ``core_voting_crossline`` index (which already chooses its passes that way) without the
    ``same_knockdown`` source: the learned model reads the same pairs as its own features
    (``xl_same_measured``, ``xl_same_pos``).
    """
    if crossline is not None:
        return core_index(labels, graph, crossline=crossline, crossline_same=False)
    return core_index(labels, graph, options=VotingOptions(n_rounds=CROSSLINE_MAX_ROUNDS))


def core_learned(index: CoreIndex, options: LearnedOptions | None = None) -> CoreLearned:
    """The :class:`CoreLearned` of an index, kept in the index's ``memo`` (fitted once)."""
    options = options or LearnedOptions()
    return index.memo.get(("core_learned", options), lambda: fit_core_learned(index, options))
