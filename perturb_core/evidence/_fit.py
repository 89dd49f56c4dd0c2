"""Fitting CORE-Voting: relation weights, shrinkage and unmeasured weight by CV inside train.

``w_r``, ``m`` and ``u`` are fitted on the training split only, by cross-validation over
training perturbations (coordinate ascent on a grid maximising the mean over folds of the
macro per-gene AUROC); a final logistic calibration of (prior, lift) is fitted on the
out-of-fold pairs. See ``docs/core.md``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray

from perturb_core.data.registry import LabelSet
from perturb_core.errors import ValidationError, check_choice
from perturb_core.evidence._labels import _EPS, _calibrate, _evidence_sums, _gatherable, _Labels, _logit
from perturb_core.evidence._options import CoreVoting, VotingOptions
from perturb_core.evidence._relations import Relation, RelationSet, build_relations
from perturb_core.kg import KnowledgeGraph

__all__ = ["ExtraSource", "fit_core_voting"]

ExtraSource = tuple[str, Callable[[NDArray[np.intp], NDArray[np.intp]], NDArray[np.float64]]]
"""An evidence source that is no relation of the label set: its name and the (3, n) masses
(positive, negative, unmeasured) of pairs given as codes; its weight is fitted like a relation's.
It must read no label of the label set it is fitted on (e.g. the same knock-down in other lines)."""


def _codes(
    labels: LabelSet,
) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.float64], NDArray[np.bool_]]:
    t = labels.table
    return (
        t["pert"].cat.codes.to_numpy().astype(np.intp),
        t["gene"].cat.codes.to_numpy().astype(np.intp),
        t["label"].to_numpy().astype(np.float64),
        (t["split"] == "train").to_numpy(),
    )


def _folds(train_perts: NDArray[np.intp], n_folds: int, seed: int) -> dict[int, int]:
    order = np.random.default_rng(seed).permutation(len(train_perts))
    return dict(zip(train_perts[order].tolist(), (np.arange(len(order)) % n_folds).tolist(), strict=True))


class _GeneAUROC:
    """Macro per-gene AUROC of many score vectors over fixed labels and genes (one sort per call).

    Equals :func:`perturb_core.metrics.macro_gene_auroc` for scores in [0, 1] (ties get the
    average rank); used in the fitting loop where it is called hundreds of times.
    """

    def __init__(self, y: NDArray[np.float64], genes: NDArray[np.intp]) -> None:
        _, codes = np.unique(genes, return_inverse=True)
        self.codes = codes.astype(np.int64)
        self.y = y
        n_groups = int(self.codes.max()) + 1 if len(self.codes) else 0
        size = np.bincount(self.codes, minlength=n_groups).astype(np.float64)
        self.offset = np.cumsum(size) - size
        self.n_pos = np.bincount(self.codes, weights=y, minlength=n_groups)
        self.n_neg = size - self.n_pos
        self.both = (self.n_pos > 0) & (self.n_neg > 0)
        self.n_groups = n_groups

    def mean(self, score: NDArray[np.float64]) -> float:
        if not self.both.any():
            return float("nan")
        key = self.codes * 4.0 + np.clip(score, 0.0, 1.0)
        order = np.argsort(key)
        ks = key[order]
        new = np.empty(len(ks), dtype=bool)
        new[0] = True
        np.not_equal(ks[1:], ks[:-1], out=new[1:])
        first = np.flatnonzero(new)
        length = np.diff(np.append(first, len(ks)))
        avg = first + (length + 1) / 2.0
        rank = avg[np.cumsum(new) - 1]
        c = self.codes[order]
        rank_sum = np.bincount(c, weights=(rank - self.offset[c]) * self.y[order], minlength=self.n_groups)
        b = self.both
        auc = (rank_sum[b] - self.n_pos[b] * (self.n_pos[b] + 1) / 2) / (self.n_pos[b] * self.n_neg[b])
        return float(auc.mean())


def _fit(
    rs: RelationSet, labels: LabelSet, options: VotingOptions, extra: ExtraSource | None = None
) -> tuple[NDArray[np.float64], float, float, float, float, tuple[float, float, float]]:
    """Coordinate ascent of (weights, m, u) on the CV objective (``extra``: a last weighted source).

    Returns:
        ``(weights, m, u, objective, start objective, calibration)``.
    """
    pert, gene, y, train = _codes(labels)
    names = list(rs.relations) + ([extra[0]] if extra else [])
    kernels = _gatherable([rs.relations[r].matrix for r in rs.relations])
    shape = (len(rs.perturbations), len(labels.table["gene"].cat.categories))
    train_perts = np.unique(pert[train])
    fold_of = np.full(shape[0], -1)
    fmap = _folds(train_perts, options.n_folds, options.seed)
    fold_of[list(fmap)] = list(fmap.values())
    fold = fold_of[pert]
    a = options.prior_pseudocount
    pieces = []
    for k in range(options.n_folds):
        ev, q = train & (fold != k), train & (fold == k)
        if not q.any() or not ev.any():
            continue
        lab = _Labels.build(pert[ev], gene[ev], y[ev], shape)
        sums = _evidence_sums(kernels, lab, pert[q], gene[q])
        if extra:
            sums = np.concatenate([sums, extra[1](pert[q], gene[q])[None]])
        pieces.append((lab, sums, y[q], gene[q]))
    if not pieces:
        raise ValidationError(f"{labels.name}: too few training perturbations to cross-validate")

    prior_cache: dict[float, list[NDArray[np.float64]]] = {}
    scorers = [_GeneAUROC(yy, gg) for _, _, yy, gg in pieces]

    def objective(w: NDArray[np.float64], m: float, u: float) -> float:
        if u not in prior_cache:
            prior_cache[u] = [lab.rates(u, a)[1][g] for lab, _, _, g in pieces]
        vals = []
        for (_, sums, _, _), pi, scorer in zip(pieces, prior_cache[u], scorers, strict=True):
            s = np.einsum("r,rkn->kn", w, sums)
            tot = s[0] + s[1] + u * s[2]
            with np.errstate(divide="ignore", invalid="ignore"):
                v = np.where(tot + m > 0, (s[0] + m * pi) / (tot + m), pi)
            # the ranking within a gene of v equals that of the final score (monotone in v)
            r = scorer.mean(v)
            if not math.isnan(r):
                vals.append(r)
        return float(np.mean(vals)) if vals else 0.5

    fixed_w = (
        {check_choice("relation in weights", r, names): v for r, v in options.weights}
        if options.weights is not None
        else None
    )
    w = np.array([fixed_w.get(r, 0.0) for r in names] if fixed_w else [1.0] * len(names))
    m = options.shrinkage if options.shrinkage is not None else 1.0
    u_grid = (0.0,) if labels.task == "dir" else options.unmeasured_grid
    u = options.unmeasured if options.unmeasured is not None and labels.task != "dir" else 0.0
    base = objective(w, m, u)
    best = base
    for _ in range(options.n_rounds):
        changed = False
        if fixed_w is None:
            for j in range(len(names)):
                for v in options.weight_grid:
                    if v == w[j]:
                        continue
                    w2 = w.copy()
                    w2[j] = v
                    if w2.sum() <= 0:
                        continue
                    o = objective(w2, m, u)
                    if o > best + 1e-6:
                        best, w, changed = o, w2, True
        if options.shrinkage is None:
            for v in options.shrinkage_grid:
                o = objective(w, v, u)
                if o > best + 1e-6:
                    best, m, changed = o, v, True
        if options.unmeasured is None:
            for v in u_grid:
                o = objective(w, m, v)
                if o > best + 1e-6:
                    best, u, changed = o, v, True
        if not changed:
            break
    calibration = (0.0, 1.0, 1.0)
    if options.calibrate:
        ys, lf, lifts = [], [], []
        for lab, sums, yy, gg in pieces:
            f, pi = lab.rates(u, a)
            s = np.einsum("r,rkn->kn", w, sums)
            tot = s[0] + s[1] + u * s[2]
            with np.errstate(divide="ignore", invalid="ignore"):
                v = np.where(tot + m > 0, (s[0] + m * pi[gg]) / (tot + m), pi[gg])
            ys.append(yy)
            lf.append(_logit(f[gg]))
            lifts.append(_logit(np.clip(v, _EPS, 1 - _EPS)) - _logit(pi[gg]))
        calibration = _calibrate(np.concatenate(ys), np.concatenate(lf), np.concatenate(lifts))
    return w, float(m), float(u), best, base, calibration


def fit_core_voting(
    labels: LabelSet,
    graph: KnowledgeGraph,
    *,
    relations: Sequence[Relation] | None = None,
    include_leaky: bool = False,
    options: VotingOptions | None = None,
    relation_set: RelationSet | None = None,
    extra: ExtraSource | None = None,
) -> CoreVoting:
    """Fit CORE-Voting's relation weights, shrinkage and unmeasured weight on the training split.

    Training perturbations are split into ``options.n_folds`` folds (seeded). For each fold,
    the evidence is the training labels of the other folds and the queries are the fold's
    training pairs. Coordinate ascent over the option grids (one pass by default; a second
    pass raises the CV objective slightly, costs a third more time and did not carry over to
    held-out perturbations, see ``docs/core.md``) maximises the mean over folds of the macro
    per-gene AUROC. Test labels are never read.

    Args:
        labels: the label set.
        graph: the knowledge graph.
        relations: relation names (default :func:`default_relations`).
        include_leaky: allow ``regulates`` (ablation).
        options: fitting options (grids, folds, fixed values).
        relation_set: prebuilt relation matrices (from :func:`build_relations`).
        extra: one more evidence source, named after the relations in the model (e.g.
            ``same_knockdown`` of ``core_voting_crossline``); its weight is fitted the same way.

    Returns:
        The fitted :class:`CoreVoting`.
    """
    options = options or VotingOptions()
    rs = relation_set or build_relations(
        labels, graph, relations=relations, include_leaky=include_leaky, options=options
    )
    w, m, u, best, base, calibration = _fit(rs, labels, options, extra)
    return CoreVoting(
        dataset=labels.name,
        task=labels.task,
        relations=(*rs.relations, *([extra[0]] if extra else [])),
        weights=tuple(float(x) for x in w),
        shrinkage=m,
        unmeasured=u,
        prior_pseudocount=options.prior_pseudocount,
        cv_macro_gene_auroc=best,
        cv_baseline=base,
        calibration=calibration,
        n_folds=options.n_folds,
        seed=options.seed,
    )
