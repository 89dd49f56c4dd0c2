"""Cross-line evidence: the other cell lines' TRAINING labels of the same knock-downs.

Most test knock-downs of one PerturbQA line are training knock-downs of another (207 of
K562's 267). Two knock-downs whose TRAINING response profiles agree in the other lines are
related in the query's line too: the ``co_response`` relation is a P x P matrix over the
query line's perturbations,

    S[p, p'] = sum over other lines L of cos(profile_L(p), profile_L(p'))

where ``profile_L(p)`` is p's row of L's training labels (task ``de``: 1 where the gene
responded; task ``dir``: +1 up, -1 down), only for p, p' that are TRAINING perturbations of
L. Negative similarities are dropped, each row keeps its ``top_k`` strongest entries (fitted
by CV), the diagonal is zero and the matrix is scaled to mean row sum 1 like every relation.

The same knock-down measured in another line is evidence too (:class:`SameKnockdown`, the
``same_knockdown`` source of the vote): for a query (p, g), each other line L where p is a
TRAINING perturbation gives one item, positive if g responded (went up) under p in L, negative
if g was measured and did not (went down), unmeasured if g is labelled in L's training rows but
not under p (PerturbQA lists every responder, so that is weak evidence of no response). The
items are scaled like a relation (mean over the query line's perturbations of the number of
lines giving items is 1) and weighted by a fitted weight.

Only rows with ``split == "train"`` of the other lines are read, so no test label of any
line is evidence; the query line's own labels are never read here. Perturbations and genes
are matched across lines by symbol. The learned model reads the same pairs as its own
features (:func:`crossline_pair_features`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from numpy.typing import NDArray

from perturb_core.config import Settings
from perturb_core.data.registry import LabelSet
from perturb_core.errors import ValidationError
from perturb_core.evidence._relations import RelationMatrix

__all__ = [
    "CROSSLINE_LABEL",
    "CROSSLINE_RELATION",
    "CROSSLINE_SAME",
    "CROSSLINE_SAME_LABEL",
    "CROSSLINE_TOP_K_GRID",
    "SameKnockdown",
    "check_crossline",
    "crossline_labels",
    "crossline_pair_features",
    "crossline_relation",
]

CROSSLINE_RELATION = "co_response"
"""Name of the cross-line relation (two knock-downs that respond alike in other lines)."""

CROSSLINE_LABEL = "cross-line co-response"
"""Its human label (legend of the Evidence page, ``relation_label`` of explain items)."""

CROSSLINE_SAME = "same_knockdown"
"""Name of the second cross-line source: the query's own knock-down measured in another line."""

CROSSLINE_SAME_LABEL = "same knock-down, other line"
"""Its human label."""

CROSSLINE_TOP_K_GRID: tuple[int, ...] = (20, 50, 100, 0)
"""Candidate neighbours kept per perturbation (0 = all); chosen per line by CV inside train."""

_FAMILY = "perturbqa-"


def crossline_labels(labels: LabelSet, settings: Settings | None = None) -> tuple[LabelSet, ...]:
    """The other PerturbQA lines' label sets of the same task (the cross-line evidence sources).

    Raises:
        ValidationError: ``labels`` is not a PerturbQA line (cross-line evidence is defined for
            the four PerturbQA CRISPRi lines only).
    """
    from perturb_core.data.registry import label_dataset_names, load_labels

    if not labels.name.startswith(_FAMILY):
        raise ValidationError(
            f"cross-line evidence is defined for the PerturbQA lines only; {labels.name!r} is not one"
        )
    names = [n for n in label_dataset_names(settings) if n.startswith(_FAMILY) and n != labels.name]
    return tuple(load_labels(n, labels.task, settings) for n in names)


def check_crossline(labels: LabelSet, others: Sequence[LabelSet]) -> tuple[LabelSet, ...]:
    """Validate cross-line sources: knock-downs, the same task, never the query line itself."""
    out = tuple(others)
    if not out:
        raise ValidationError("cross-line evidence needs at least one other line's label set")
    for o in out:
        if o is labels or o.name == labels.name:
            raise ValidationError(f"{labels.name!r} cannot be its own cross-line evidence")
        if o.task != labels.task:
            raise ValidationError(f"cross-line label set {o.name!r} is task {o.task!r}, not {labels.task!r}")
        if o.perturbation_kind != "knockdown" or labels.perturbation_kind != "knockdown":
            raise ValidationError("cross-line evidence is defined for knock-down label sets only")
    return out


@dataclass(frozen=True, eq=False)
class _Profiles:
    """One other line's training labels as a matrix over its training perturbations."""

    perts: pd.Index  # all perturbations of the line (row order)
    genes: pd.Index
    train: NDArray[np.bool_]  # (P_L,) training perturbation of that line
    signed: sp.csr_matrix  # P_L x G_L: de 1/0; dir +1/-1 (training rows only)
    label: sp.csr_matrix  # P_L x G_L: label + 1 on training pairs (0 = unlabelled)


def _profiles(other: LabelSet) -> _Profiles:
    t = other.table
    tr = (t["split"] == "train").to_numpy()
    p = t["pert"].cat.codes.to_numpy()[tr]
    g = t["gene"].cat.codes.to_numpy()[tr]
    y = t["label"].to_numpy().astype(np.float64)[tr]
    perts, genes = pd.Index(t["pert"].cat.categories), pd.Index(t["gene"].cat.categories)
    shape = (len(perts), len(genes))
    v = y if other.task == "de" else 2 * y - 1
    train = np.zeros(len(perts), dtype=bool)
    train[np.unique(p)] = True
    return _Profiles(
        perts,
        genes,
        train,
        sp.csr_matrix((v, (p, g)), shape=shape),
        sp.csr_matrix((y + 1, (p, g)), shape=shape),
    )


def _line_profiles(other: LabelSet) -> _Profiles:
    return other.memo.get("crossline_profiles", lambda: _profiles(other))


def _mapping(perts: pd.Index, prof: _Profiles) -> sp.csr_matrix:
    """P x P_L 0/1: the query line's perturbation -> the same symbol among L's TRAINING perturbations."""
    idx = prof.perts.get_indexer(perts)
    ok = idx >= 0
    ok[ok] = prof.train[idx[ok]]
    return sp.csr_matrix(
        (np.ones(int(ok.sum())), (np.flatnonzero(ok), idx[ok])), shape=(len(perts), len(prof.perts))
    )


def crossline_similarity(labels: LabelSet, others: Sequence[LabelSet]) -> NDArray[np.float64]:
    """Dense P x P sum over other lines of the cosine of training response profiles (diagonal 0)."""
    perts = pd.Index(labels.table["pert"].cat.categories)
    s = np.zeros((len(perts), len(perts)))
    for o in others:
        prof = _line_profiles(o)
        m = prof.signed
        norm = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
        norm[norm == 0] = 1.0
        a = _mapping(perts, prof) @ sp.diags(1.0 / norm) @ m
        s += (a @ a.T).toarray()
    np.fill_diagonal(s, 0.0)
    return np.maximum(s, 0.0)


def crossline_relation(similarity: NDArray[np.float64], top_k: int) -> RelationMatrix:
    """The ``co_response`` relation: each row's ``top_k`` strongest similarities (0 = all), scaled.

    ``values`` keeps the raw similarity (sum of cosines over lines) for explanations.
    """
    s = similarity
    if 0 < top_k < s.shape[1]:
        thr = -np.partition(-s, top_k - 1, axis=1)[:, top_k - 1 : top_k]
        s = np.where(s >= np.maximum(thr, 1e-12), s, 0.0)
    raw = sp.csr_matrix(s)
    raw.eliminate_zeros()
    mean = raw.sum() / max(raw.shape[0], 1)
    matrix = (raw / mean).tocsr() if mean > 0 else raw
    return RelationMatrix(CROSSLINE_RELATION, matrix, "similarity", CROSSLINE_RELATION, values=raw)


@dataclass(frozen=True, eq=False)
class SameKnockdown:
    """The query line's knock-downs in the other lines' TRAINING labels, as votes on the same gene.

    Build it with :meth:`of`. ``sums`` gives the vote's masses of every pair at once; ``outcomes``
    the items of one pair (for explanations).
    """

    lines: tuple[str, ...]  # the other lines' cell-line names
    rows: NDArray[np.intp]  # (L, P): p's row in line L, -1 unless p is a training perturbation of L
    cols: NDArray[np.intp]  # (L, G): g's column in L, -1 unless g is labelled in L's training rows
    labels: tuple[sp.csr_matrix, ...]  # per line: label + 1 on training pairs (0 = unlabelled)
    scale: float  # mean over the query line's perturbations of the lines where they are training

    @classmethod
    def of(cls, labels: LabelSet, others: Sequence[LabelSet]) -> SameKnockdown:
        """Match the query line's perturbations and genes to each other line (by symbol)."""
        perts = pd.Index(labels.table["pert"].cat.categories)
        genes = pd.Index(labels.table["gene"].cat.categories)
        rows, cols, mats = [], [], []
        for o in others:
            prof = _line_profiles(o)
            r = prof.perts.get_indexer(perts)
            rows.append(np.where((r >= 0) & prof.train[np.maximum(r, 0)], r, -1))
            c = prof.genes.get_indexer(genes)
            labelled = np.asarray((prof.label > 0).sum(axis=0)).ravel() > 0
            cols.append(np.where((c >= 0) & labelled[np.maximum(c, 0)], c, -1))
            mats.append(prof.label)
        r_all = np.array(rows, dtype=np.intp).reshape(len(rows), len(perts))
        mean_lines = float((r_all >= 0).sum(axis=0).mean()) if len(perts) else 0.0
        return cls(
            tuple(o.cell_line for o in others),
            r_all,
            np.array(cols, dtype=np.intp).reshape(len(cols), len(genes)),
            tuple(mats),
            mean_lines if mean_lines > 0 else 1.0,
        )

    def _outcome(self, line: int, pert: NDArray[np.intp], gene: NDArray[np.intp]) -> NDArray[np.float64]:
        """Per pair in one line: -1 no item (p not training there, or g never labelled), else label + 1."""
        r, c = self.rows[line][pert], self.cols[line][gene]
        ok = (r >= 0) & (c >= 0)
        out = np.full(len(pert), -1.0)
        if ok.any():
            out[ok] = np.asarray(self.labels[line][r[ok], c[ok]]).ravel()
        return out

    def sums(self, pert: NDArray[np.intp], gene: NDArray[np.intp]) -> NDArray[np.float64]:
        """(3, n) masses (positive, negative, unmeasured) of each pair, scaled by :attr:`scale`."""
        out = np.zeros((3, len(pert)))
        for line in range(len(self.lines)):
            o = self._outcome(line, pert, gene)
            out[0] += o == 2
            out[1] += o == 1
            out[2] += o == 0
        return out / self.scale

    def outcomes(self, pert: int, gene: int) -> list[tuple[str, int | None]]:
        """The items of one pair: (cell line, label), label ``None`` where g is unmeasured under p there."""
        p, g = np.array([pert], dtype=np.intp), np.array([gene], dtype=np.intp)
        out: list[tuple[str, int | None]] = []
        for line, name in enumerate(self.lines):
            o = float(self._outcome(line, p, g)[0])
            if o >= 0:
                out.append((name, None if o == 0 else int(o) - 1))
        return out


def crossline_pair_features(
    labels: LabelSet, others: Sequence[LabelSet], pert: NDArray[np.intp], gene: NDArray[np.intp]
) -> dict[str, NDArray[np.float64]]:
    """Per pair, from the other lines' TRAINING labels only.

    Returns:
        ``xl_same_measured`` (lines where the same (p, g) is a training pair), ``xl_same_pos``
        (of which g responded / went up), ``xl_gene_rate`` (g's training rate over the other
        lines, NaN if never labelled), ``xl_pert_strength`` (p's responders per labelled
        gene over the other lines, NaN if p is no training perturbation there).
    """
    same = SameKnockdown.of(labels, others)
    n = len(pert)
    same_m, same_p = np.zeros(n), np.zeros(n)
    g_pos, g_meas, p_pos, p_meas = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    for line, mat in enumerate(same.labels):
        o = same._outcome(line, pert, gene)
        same_m += o > 0
        same_p += o == 2
        meas, pos = (mat > 0).astype(np.float64), (mat == 2).astype(np.float64)
        gm, gp = np.asarray(meas.sum(axis=0)).ravel(), np.asarray(pos.sum(axis=0)).ravel()
        pm, pp = np.asarray(meas.sum(axis=1)).ravel(), np.asarray(pos.sum(axis=1)).ravel()
        gi, pi = same.cols[line][gene], same.rows[line][pert]
        okg, okp = gi >= 0, pi >= 0
        g_meas[okg] += gm[gi[okg]]
        g_pos[okg] += gp[gi[okg]]
        p_meas[okp] += pm[pi[okp]]
        p_pos[okp] += pp[pi[okp]]
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "xl_same_measured": same_m,
            "xl_same_pos": same_p,
            "xl_gene_rate": np.where(g_meas > 0, g_pos / g_meas, np.nan),
            "xl_pert_strength": np.where(p_meas > 0, p_pos / p_meas, np.nan),
        }
