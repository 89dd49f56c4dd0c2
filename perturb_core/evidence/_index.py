"""The CORE index of a label set (relations, training labels, fitted model) and batch scoring.

:func:`core_index` builds the :class:`CoreIndex` once per (label set, graph, relations,
options, drug table): it is kept in the label set's ``memo``, so it lives and dies with the
label set it was fitted on. Tables derived from an index (test scores, per-gene AUROC, node
descriptions) are kept in the index's own ``memo``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from numpy.typing import NDArray

from perturb_core.data.registry import DrugTable, LabelSet
from perturb_core.errors import ValidationError
from perturb_core.evidence._crossline import (
    CROSSLINE_RELATION,
    CROSSLINE_SAME,
    CROSSLINE_TOP_K_GRID,
    SameKnockdown,
    check_crossline,
    crossline_relation,
    crossline_similarity,
)
from perturb_core.evidence._fit import _codes, fit_core_voting
from perturb_core.evidence._labels import _combine, _evidence_sums, _gatherable, _Labels
from perturb_core.evidence._options import CoreVoting, VotingOptions
from perturb_core.evidence._relations import Relation, RelationSet, _check_relations, build_relations
from perturb_core.kg import KnowledgeGraph
from perturb_core.memo import Memo
from perturb_core.metrics import macro_gene_auroc

__all__ = ["CoreIndex", "core_index", "gene_frequency", "predict_core_voting"]

_CONTEXT_TERMS = 5  # pathways / processes described per perturbation or gene

NodeKind = Literal["drug", "gene"]

CROSSLINE_MAX_ROUNDS = 3
"""Coordinate-ascent passes allowed for the cross-line fit (it stops earlier when a pass changes nothing)."""

# what describes a node of each kind: (key, graph relation, term node kind, term detail, smallest first)
_CONTEXT_SPECS: Mapping[NodeKind, tuple[tuple[str, str, str, str | None, bool], ...]] = MappingProxyType(
    {
        "drug": (
            ("targets", "targets", "gene", None, False),
            ("mechanism", "has_mechanism", "mechanism", None, False),
        ),
        "gene": (
            ("pathways", "in_pathway", "pathway", None, True),
            ("processes", "annotated_with", "go_term", "biological_process", True),
        ),
    }
)


@dataclass(frozen=True, eq=False)
class CoreIndex:
    """Everything needed to score and explain one label set: relations, training labels, model.

    Build it with :func:`core_index` (kept in the label set's ``memo``). Read-only; safe to
    share (e.g. in Streamlit's ``st.cache_resource``).

    Attributes:
        labels: the label set.
        graph: the knowledge graph.
        relation_set: relation matrices over the label set's perturbations.
        model: the fitted :class:`CoreVoting`.
        train: training label matrices (evidence for every query).
        genes: the label set's genes (column order).
        crossline: the other lines' label sets whose TRAINING labels build the ``co_response``
            relation (empty: single-line evidence).
        same: the same knock-down's labels in those lines (the ``same_knockdown`` source;
            ``None`` when it is not part of the model).
        memo: tables derived from this index (gather-ready kernel, test scores, per-gene
            AUROC, node descriptions), each built once.
    """

    labels: LabelSet
    graph: KnowledgeGraph
    relation_set: RelationSet
    model: CoreVoting
    train: _Labels
    genes: pd.Index
    _kernel: sp.csr_matrix = field(repr=False)
    crossline: tuple[LabelSet, ...] = field(default=(), repr=False)
    same: SameKnockdown | None = field(default=None, repr=False)
    memo: Memo = field(default_factory=Memo, init=False, repr=False, compare=False)

    @property
    def perturbations(self) -> pd.Index:
        """The label set's perturbations (row order of the relation matrices)."""
        return self.relation_set.perturbations

    def score(self, pert: NDArray[np.intp], gene: NDArray[np.intp]) -> pd.DataFrame:
        """Vectorised CORE-Voting of pairs given as perturbation and gene codes.

        Returns:
            DataFrame with ``pos``, ``neg``, ``unmeasured`` (relation mass of positive,
            negative and unmeasured evidence), ``tot``, ``vote`` (NaN without evidence),
            ``prior`` (f_g) and ``score``.
        """
        model = self.model
        pert, gene = np.asarray(pert, dtype=np.intp), np.asarray(gene, dtype=np.intp)
        gather = self.memo.get("gather", lambda: _gatherable([self._kernel]))
        sums = _evidence_sums(gather, self.train, pert, gene)
        w_same = model.weight(CROSSLINE_SAME)
        if self.same is not None and w_same > 0:
            sums = sums + w_same * self.same.sums(pert, gene)[None]
        f, pi = self.train.rates(model.unmeasured, model.prior_pseudocount)
        pos, tot, vote, score = _combine(
            sums, np.ones(1), f[gene], pi[gene], model.shrinkage, model.unmeasured, model.calibration
        )
        return pd.DataFrame(
            {
                "pos": pos,
                "neg": sums[0, 1],
                "unmeasured": sums[0, 2],
                "tot": tot,
                "vote": vote,
                "prior": f[gene],
                "score": score,
            }
        )

    def context(self, perturbation: str, gene: str) -> dict[str, dict[str, Any]]:
        """What a perturbation and a gene are, from the graph (cached per node).

        A knocked-down gene or a gene: its most specific pathways and GO biological processes
        (terms with at least 5 genes, smallest first); a drug: its targets and mechanism.

        Args:
            perturbation: a perturbation of the label set (exact name).
            gene: a gene (exact symbol).

        Returns:
            ``{"perturbation": {...}, "gene": {...}}``, each with ``id``, ``in_graph``, ``name``
            and the annotation lists.
        """
        node = self.relation_set.node_ids[int(self.perturbations.get_loc(perturbation))]
        kind: NodeKind = "drug" if self.labels.perturbation_kind == "drug" else "gene"
        return {"perturbation": self._describe(node, kind), "gene": self._describe(f"gene:{gene}", "gene")}

    def test_scores(self) -> pd.DataFrame:
        """CORE-Voting of every test pair (cached): ``pert, gene, label`` plus :meth:`score` columns."""
        return self.memo.get("test", self._test_scores)

    def _test_scores(self) -> pd.DataFrame:
        t = self.labels.table
        test = (t["split"] == "test").to_numpy()
        sub = t.loc[test, ["pert", "gene", "label"]].reset_index(drop=True)
        s = self.score(
            sub["pert"].cat.codes.to_numpy().astype(np.intp),
            sub["gene"].cat.codes.to_numpy().astype(np.intp),
        )
        return pd.concat([sub, s], axis=1)

    def gene_auroc(self) -> pd.DataFrame:
        """Per-gene AUROC of CORE-Voting over test perturbations: ``auroc`` (NaN if one class), ``n``."""
        return self.memo.get("gene_auroc", self._gene_auroc)

    def _gene_auroc(self) -> pd.DataFrame:
        ts = self.test_scores()
        if not len(ts):
            return pd.DataFrame({"auroc": [], "n": []})
        res = macro_gene_auroc(
            ts["label"].to_numpy(), ts["score"].to_numpy(), ts["gene"].astype(str).to_numpy()
        )
        n = ts.groupby(ts["gene"].astype(str)).size()
        return pd.DataFrame({"auroc": res.per_group, "n": n.reindex(res.per_group.index)})

    def _describe(self, node_id: str, kind: NodeKind) -> dict[str, Any]:
        """What a perturbation or gene is, from the graph (cached per node): targets and
        mechanism of a drug; the most specific pathways and GO processes (at least 5 genes)
        of a gene."""
        return self.memo.get(("describe", node_id), lambda: _describe(self.graph, node_id, kind))


def _describe(g: KnowledgeGraph, node_id: str, kind: NodeKind) -> dict[str, Any]:
    info: dict[str, Any] = {"id": node_id}
    i = int(g.idx(node_id)[0])
    if i < 0:
        info["in_graph"] = False
        return info
    info["in_graph"] = True
    info["name"] = str(g.nodes["name"].iat[i])
    kinds = g.nodes["kind"].to_numpy()
    details = g.nodes["detail"].to_numpy()
    names = g.nodes["name"].to_numpy()

    def terms(relation: str, kind_: str, detail: str | None, by_size: bool) -> list[str]:
        adj = g.adjacency([relation])
        cols = adj[i].indices
        cols = cols[kinds[cols] == kind_]
        if detail is not None:
            cols = cols[details[cols] == detail]
        if not len(cols):
            return []
        if not by_size:
            return sorted(str(names[c]) for c in cols)[: 2 * _CONTEXT_TERMS]
        size = np.diff(adj.indptr)[cols]
        keep = cols[size >= 5] if (size >= 5).any() else cols
        size = np.diff(adj.indptr)[keep]
        return [str(names[c]) for c in keep[np.argsort(size, kind="stable")][:_CONTEXT_TERMS]]

    for key, relation, term_kind, detail, by_size in _CONTEXT_SPECS[kind]:
        info[key] = terms(relation, term_kind, detail, by_size)
    return info


class _Same:
    """A memo key part equal only to the same object (hashed by identity).

    It holds a reference, so the object's id cannot be reused while the memo entry lives:
    an equal key always means the very same graph or drug table.
    """

    __slots__ = ("obj",)

    def __init__(self, obj: object) -> None:
        self.obj = obj

    def __hash__(self) -> int:
        return id(self.obj)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Same) and other.obj is self.obj


def core_index(
    labels: LabelSet,
    graph: KnowledgeGraph,
    *,
    relations: Sequence[Relation] | None = None,
    include_leaky: bool = False,
    options: VotingOptions | None = None,
    drugs: DrugTable | None = None,
    crossline: Sequence[LabelSet] | None = None,
    crossline_same: bool = True,
) -> CoreIndex:
    """Build (or fetch from the label set's ``memo``) the :class:`CoreIndex` of a label set.

    The index is kept on ``labels`` (``labels.memo``), keyed by the graph (identity), the
    relations, ``include_leaky``, the options and the drug table (identity), so a second call
    with the same arguments returns the same object in microseconds; a new label set object
    (e.g. ``dataclasses.replace(labels, table=...)``) gets its own index.

    Args:
        labels: the label set.
        graph: the knowledge graph.
        relations: relation names (default :func:`default_relations`).
        include_leaky: allow ``regulates`` (ablation).
        options: fitting options.
        drugs: drug table for drug datasets (loaded when needed).
        crossline: other lines' label sets (same task, e.g. :func:`crossline_labels`): adds the
            ``co_response`` relation built from their TRAINING labels, its neighbour count
            chosen by CV inside train (``core_voting_crossline``). ``None``: single-line.
        crossline_same: with ``crossline``, also the ``same_knockdown`` source (the query's own
            knock-down in those lines' TRAINING labels), its weight fitted by CV like a relation's.

    Returns:
        The index with its fitted model.
    """
    options = options or VotingOptions()
    rels = _check_relations(labels, graph, relations, include_leaky)
    xl = check_crossline(labels, crossline) if crossline is not None else ()
    key = (
        "core_index",
        _Same(graph),
        rels,
        include_leaky,
        options,
        _Same(drugs),
        tuple(_Same(o) for o in xl),
        bool(xl) and crossline_same,
    )
    return labels.memo.get(
        key, lambda: _build_index(labels, graph, rels, include_leaky, options, drugs, xl, crossline_same)
    )


def _build_index(
    labels: LabelSet,
    graph: KnowledgeGraph,
    rels: tuple[str, ...],
    include_leaky: bool,
    options: VotingOptions,
    drugs: DrugTable | None,
    crossline: tuple[LabelSet, ...] = (),
    crossline_same: bool = False,
) -> CoreIndex:
    rs = build_relations(
        labels, graph, relations=rels, include_leaky=include_leaky, options=options, drugs=drugs
    )
    same = SameKnockdown.of(labels, crossline) if crossline and crossline_same else None
    if crossline:
        rs, model = _fit_crossline(labels, graph, rs, options, crossline, same)
    else:
        model = fit_core_voting(labels, graph, options=options, relation_set=rs)
    pert, gene, y, train = _codes(labels)
    genes = pd.Index(labels.table["gene"].cat.categories)
    lab = _Labels.build(pert[train], gene[train], y[train], (len(rs.perturbations), len(genes)))
    return CoreIndex(labels, graph, rs, model, lab, genes, _kernel(rs, model), crossline, same)


def _fit_crossline(
    labels: LabelSet,
    graph: KnowledgeGraph,
    rs: RelationSet,
    options: VotingOptions,
    crossline: tuple[LabelSet, ...],
    same: SameKnockdown | None = None,
) -> tuple[RelationSet, CoreVoting]:
    """Add ``co_response`` and fit; its neighbour count is the CV-best of :data:`CROSSLINE_TOP_K_GRID`.

    ``same``: the ``same_knockdown`` source, fitted with its own weight (0 switches it off).

    Coordinate ascent runs until the CV objective stops rising (at most :data:`CROSSLINE_MAX_ROUNDS`
    passes): the number of passes is chosen by CV, not kept at the single-line default of 1.
    """
    sim = crossline_similarity(labels, crossline)
    options = replace(options, n_rounds=max(options.n_rounds, CROSSLINE_MAX_ROUNDS))
    best: tuple[RelationSet, CoreVoting] | None = None
    for k in CROSSLINE_TOP_K_GRID:
        rel = crossline_relation(sim, k)
        rs_k = replace(rs, relations={**rs.relations, CROSSLINE_RELATION: rel})
        extra = (CROSSLINE_SAME, same.sums) if same is not None else None
        model = fit_core_voting(labels, graph, options=options, relation_set=rs_k, extra=extra)
        if best is None or model.cv_macro_gene_auroc > best[1].cv_macro_gene_auroc + 1e-6:
            lines = tuple(o.name for o in crossline)
            best = rs_k, replace(model, crossline_top_k=k, crossline_lines=lines)
    assert best is not None
    return best


def _kernel(rs: RelationSet, model: CoreVoting) -> sp.csr_matrix:
    p = len(rs.perturbations)
    k = sp.csr_matrix((p, p))
    for r, w in zip(model.relations, model.weights, strict=True):
        if w > 0 and r in rs.relations:  # sources other than relations (same_knockdown) are no kernel
            k = k + w * rs.relations[r].matrix
    return sp.csr_matrix(k)


def _pair_codes(
    labels: LabelSet, pairs: pd.DataFrame | None
) -> tuple[pd.DataFrame, NDArray[np.intp], NDArray[np.intp]]:
    """Pairs (``pert``, ``gene`` as exact names) and their codes; ``None``: the test split.

    Raises:
        ValidationError: a missing column.
        UnknownNameError: an unknown name (closest names in the message).
    """
    t = labels.table
    if pairs is None:
        sub = t.loc[(t["split"] == "test").to_numpy(), ["pert", "gene"]].reset_index(drop=True)
        return (
            sub,
            sub["pert"].cat.codes.to_numpy().astype(np.intp),
            sub["gene"].cat.codes.to_numpy().astype(np.intp),
        )
    missing = {"pert", "gene"} - set(pairs.columns)
    if missing:
        raise ValidationError(f"pairs needs columns pert and gene; missing {sorted(missing)}")
    pc, gc = labels.pair_codes(pairs["pert"], pairs["gene"])
    out = pd.DataFrame(
        {"pert": t["pert"].cat.categories[pc].to_numpy(), "gene": t["gene"].cat.categories[gc].to_numpy()}
    )
    return out, pc, gc


def predict_core_voting(
    labels: LabelSet,
    graph: KnowledgeGraph,
    pairs: pd.DataFrame | None = None,
    *,
    index: CoreIndex | None = None,
    relations: Sequence[Relation] | None = None,
    include_leaky: bool = False,
    options: VotingOptions | None = None,
) -> pd.DataFrame:
    """CORE-Voting scores of pairs (default: every test pair), all at once.

    Args:
        labels: the label set.
        graph: the knowledge graph.
        pairs: DataFrame with ``pert`` and ``gene`` columns (names as in the label set);
            ``None`` scores the test split.
        index: a prebuilt index (otherwise :func:`core_index` with the other arguments).
        relations, include_leaky, options: as for :func:`core_index`.

    Returns:
        DataFrame ``pert, gene, pos, neg, unmeasured, tot, vote, prior, score`` in the order of
        ``pairs``.
    """
    index = index or core_index(
        labels, graph, relations=relations, include_leaky=include_leaky, options=options
    )
    frame, pc, gc = _pair_codes(labels, pairs)
    return pd.concat([frame, index.score(pc, gc)], axis=1)


def gene_frequency(labels: LabelSet) -> pd.Series:
    """Training response rate of every gene: responded / labelled training pairs.

    A gene with no training pair gets the global training rate. Constant within a gene, so
    its macro per-gene AUROC is exactly 0.5.

    Returns:
        Series indexed by gene (category order of ``labels.table``), name ``gene_frequency``.
    """
    t = labels.table
    train = (t["split"] == "train").to_numpy()
    genes = pd.Index(t["gene"].cat.categories)
    codes = t["gene"].cat.codes.to_numpy()[train]
    y = t["label"].to_numpy().astype(np.float64)[train]
    n = np.bincount(codes, minlength=len(genes)).astype(np.float64)
    k = np.bincount(codes, weights=y, minlength=len(genes))
    base = float(y.mean()) if y.size else 0.5
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(n > 0, k / n, base)
    return pd.Series(rate, index=genes, name="gene_frequency")
