"""Explaining one CORE-Voting prediction: its evidence items with graph paths, vote, prior, score, drawing.

For a query (perturbation p, gene g) the evidence is every TRAINING perturbation p' related
to p in the knowledge graph (never p itself, never a test label), split by what g did under
p': positive (g responded / went up), negative (g was measured and did not respond / went
down) and unmeasured (p' is a training perturbation but g was not among its measured genes).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from perturb_core.data.registry import LabelSet
from perturb_core.errors import check_int_range
from perturb_core.evidence._crossline import (
    CROSSLINE_LABEL,
    CROSSLINE_RELATION,
    CROSSLINE_SAME,
    CROSSLINE_SAME_LABEL,
)
from perturb_core.evidence._index import CoreIndex, core_index
from perturb_core.evidence._items import (
    EvidenceGraph,
    EvidenceItem,
    GeneFrequency,
    GraphEdge,
    GraphNode,
    Role,
    Side,
)
from perturb_core.evidence._labels import _combine
from perturb_core.evidence._options import CoreVoting, VotingOptions
from perturb_core.evidence._relations import RELATION_SPECS, PathKind, Relation, RelationMatrix
from perturb_core.kg import KnowledgeGraph

__all__ = ["EvidenceExplanation", "explain"]

_UNMEASURED_SHOWN = 20  # unmeasured related perturbations listed in an explanation
MAX_BUDGET = 100_000  # labelled evidence items in one explanation (far above any relation set)


@dataclass(frozen=True)
class EvidenceExplanation:
    """The evidence behind one (perturbation, gene) prediction (frozen).

    ``to_dict()`` is what ``python -m perturb_core core explain --json`` prints. ``positive``
    and ``negative`` hold every kept labelled item, strongest first; ``unmeasured`` the
    strongest unmeasured related perturbations (at most 20 of ``n_unmeasured``).

    ``mass`` holds the terms of the vote: ``positive`` (P) and ``negative`` (N) relation mass of
    the labelled evidence, ``unmeasured`` (U) of the related perturbations not measured on g,
    ``unmeasured_weight`` (u: an unmeasured relative counts as u of a negative vote), ``total``
    = P + N + u·U and ``shrinkage`` (m): ``vote = P / total``, and the score shrinks it toward the
    gene's prior with weight m.
    """

    dataset: str
    task: str
    cell_line: str
    perturbation_kind: str
    perturbation: str
    gene: str
    split: str | None
    label: int | None
    positive: tuple[EvidenceItem, ...]
    negative: tuple[EvidenceItem, ...]
    unmeasured: tuple[EvidenceItem, ...]
    n_positive: int
    n_negative: int
    n_unmeasured: int
    vote: float | None
    prior: float
    score: float
    mass: dict[str, float]
    gene_frequency: GeneFrequency
    model: dict[str, Any]
    relations_used: tuple[str, ...]
    budget: int | None
    gene_auroc: float | None
    gene_auroc_n: int
    context: dict[str, Any]
    graph: EvidenceGraph
    note: str

    @property
    def positive_means(self) -> str:
        """What a positive label means for this task."""
        return "went up" if self.task == "dir" else "responded (differentially expressed)"

    def all_items(self) -> tuple[tuple[Side, EvidenceItem], ...]:
        """Every listed evidence item with its side: positive, then negative, then unmeasured."""
        sides: tuple[tuple[Side, tuple[EvidenceItem, ...]], ...] = (
            ("positive", self.positive),
            ("negative", self.negative),
            ("unmeasured", self.unmeasured),
        )
        return tuple((side, it) for side, items in sides for it in items)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (NaN -> None)."""

        def clean(v: Any) -> Any:
            if isinstance(v, float) and not math.isfinite(v):
                return None
            return v

        return {
            "dataset": self.dataset,
            "task": self.task,
            "cell_line": self.cell_line,
            "perturbation_kind": self.perturbation_kind,
            "perturbation": self.perturbation,
            "gene": self.gene,
            "split": self.split,
            "label": self.label,
            "positive_means": self.positive_means,
            "positive": [it.to_dict() for it in self.positive],
            "negative": [it.to_dict() for it in self.negative],
            "unmeasured": [it.to_dict() for it in self.unmeasured],
            "n_positive": self.n_positive,
            "n_negative": self.n_negative,
            "n_unmeasured": self.n_unmeasured,
            "vote": clean(self.vote),
            "prior": self.prior,
            "score": self.score,
            "mass": self.mass,
            "gene_frequency": self.gene_frequency.to_dict(),
            "model": self.model,
            "relations_used": list(self.relations_used),
            "budget": self.budget,
            "gene_auroc": clean(self.gene_auroc),
            "gene_auroc_n": self.gene_auroc_n,
            "context": self.context,
            "graph": self.graph.to_dict(),
            "note": self.note,
        }


Path = tuple[list[int], str | None, float]  # graph node indices i -> ... -> j, detail, raw value


def _direct_paths(rel: RelationMatrix, nodes: NDArray[np.int64], i: int, js: NDArray[np.intp]) -> list[Path]:
    """A direct edge i -> j."""
    return [([int(nodes[i]), int(nodes[j])], None, 1.0) for j in js]


def _similarity_paths(
    rel: RelationMatrix, nodes: NDArray[np.int64], i: int, js: NDArray[np.intp]
) -> list[Path]:
    """A similarity edge i -> j labelled with the Tanimoto similarity."""
    vals = rel.values[i].toarray().ravel() if rel.values is not None else np.zeros(len(nodes))
    what = "co-response (sum of cosines over other lines)" if rel.name == CROSSLINE_RELATION else "Tanimoto"
    return [([int(nodes[i]), int(nodes[j])], f"{what} {vals[j]:.2f}", float(vals[j])) for j in js]


def _relation_label(name: str) -> str:
    return CROSSLINE_LABEL if name == CROSSLINE_RELATION else RELATION_SPECS[name].label


def _shared_paths(rel: RelationMatrix, nodes: NDArray[np.int64], i: int, js: NDArray[np.intp]) -> list[Path]:
    """i -> the heaviest shared term -> j, with the number of shared terms."""
    inc = rel.incidence
    assert inc is not None and rel.term_weight is not None and rel.term_nodes is not None
    mine = inc[i].toarray().ravel() > 0
    out: list[Path] = []
    sub = inc[js].toarray()[:, mine] * rel.term_weight[mine][None, :]
    terms = np.flatnonzero(mine)
    best = sub.argmax(axis=1) if sub.shape[1] else np.zeros(len(js), dtype=int)
    n_shared = (sub > 0).sum(axis=1)
    for row, j in enumerate(js):
        if n_shared[row] == 0:
            out.append(([int(nodes[i]), int(nodes[j])], None, 0.0))
            continue
        t = terms[best[row]]
        extra = f"{n_shared[row]} shared" if n_shared[row] > 1 else None
        out.append(([int(nodes[i]), int(rel.term_nodes[t]), int(nodes[j])], extra, float(sub[row].sum())))
    return out


def _adjacent_paths(
    rel: RelationMatrix, nodes: NDArray[np.int64], i: int, js: NDArray[np.intp]
) -> list[Path]:
    """i -> a target of i -> a linked target of j -> j, with the number of target links."""
    inc = rel.incidence
    assert inc is not None and rel.term_weight is not None and rel.term_nodes is not None
    mine = inc[i].toarray().ravel() > 0
    out: list[Path] = []
    links = rel.term_links
    assert links is not None
    mine_t = np.flatnonzero(mine)
    for j in js:
        theirs = np.flatnonzero(inc[j].toarray().ravel() > 0)
        block = links[mine_t][:, theirs].tocoo() if len(mine_t) and len(theirs) else sp.coo_matrix((0, 0))
        if block.nnz == 0:
            out.append(([int(nodes[i]), int(nodes[j])], None, 0.0))
            continue
        a, b = mine_t[block.row[0]], theirs[block.col[0]]
        extra = f"{block.nnz} target links" if block.nnz > 1 else None
        out.append(
            (
                [int(nodes[i]), int(rel.term_nodes[a]), int(rel.term_nodes[b]), int(nodes[j])],
                extra,
                float(block.nnz),
            )
        )
    return out


_PATHS: Mapping[
    PathKind, Callable[[RelationMatrix, NDArray[np.int64], int, NDArray[np.intp]], list[Path]]
] = MappingProxyType(
    {
        "direct": _direct_paths,
        "similarity": _similarity_paths,
        "shared": _shared_paths,
        "adjacent": _adjacent_paths,
    }
)


def _paths(index: CoreIndex, i: int, js: NDArray[np.intp], relation: str) -> list[Path]:
    """Graph path (node indices) from perturbation i to each j over ``relation``, with a label.

    Returns one ``(node indices, detail, raw value)`` per j; the node list starts at i's node
    and ends at j's; detail is the number of shared terms or the similarity, as text.
    """
    rel = index.relation_set.relations[relation]
    return _PATHS[rel.path_kind](rel, index.relation_set.nodes, i, js)


@dataclass(frozen=True, eq=False)
class _Selection:
    """The evidence of one query kept for the vote: labelled items and unmeasured ones.

    An item is a perturbation index j >= 0 of the label set, or a negative key -(1 + k) for the
    k-th other line's ``same_knockdown`` item (the query's own knock-down measured there).
    """

    row: NDArray[np.float64]  # relation weight of every perturbation to the query (0 = unrelated)
    labelled: list[int]  # kept labelled evidence, strongest first
    unmeasured: list[int]  # counted unmeasured related perturbations, strongest first
    positive: NDArray[np.bool_]  # per perturbation: the gene responded (went up) under it
    pos_mass: float
    neg_mass: float
    unm_mass: float
    same: Mapping[int, tuple[str, int | None]]  # key -> (other line, label or None if unmeasured)
    same_weight: float  # weight of each same_knockdown item

    def is_positive(self, j: int) -> bool:
        """g responded (went up) under item j."""
        return bool(self.positive[j]) if j >= 0 else self.same[j][1] == 1


def _same_items(index: CoreIndex, i: int, gi: int) -> tuple[dict[int, tuple[str, int | None]], float]:
    """The query's ``same_knockdown`` items by key, and their common weight (none when unfitted)."""
    w = index.model.weight(CROSSLINE_SAME)
    if index.same is None or w <= 0:
        return {}, 0.0
    return {-(1 + k): o for k, o in enumerate(index.same.outcomes(i, gi))}, w / index.same.scale


def _select(index: CoreIndex, i: int, gi: int, budget: int | None) -> _Selection:
    """Related training perturbations of query i with their outcome on gene gi, ranked."""
    lab = index.train
    row = index._kernel[i].toarray().ravel() * lab.evidence
    row[i] = 0.0
    related = np.flatnonzero(row > 0)
    positive = lab.pos[:, gi].toarray().ravel() > 0
    measured_col = lab.meas[:, gi].toarray().ravel() > 0
    names = np.asarray(index.perturbations, dtype=object)
    same, same_w = _same_items(index, i, gi)

    def weight(j: int) -> float:
        return float(row[j]) if j >= 0 else same_w

    def ranked(js: Sequence[int]) -> list[int]:
        return sorted(
            js, key=lambda j: (-weight(j), str(names[j]) if j >= 0 else f"{names[i]} ({same[j][0]})")
        )

    labelled = ranked(
        [*related[measured_col[related]].tolist(), *(k for k, o in same.items() if o[1] is not None)]
    )
    unmeasured = [*related[~measured_col[related]].tolist(), *(k for k, o in same.items() if o[1] is None)]
    if budget is not None:
        labelled = labelled[:budget]
        floor = weight(labelled[-1]) if labelled else np.inf
        unmeasured = [j for j in unmeasured if weight(j) >= floor]
    # masses as array sums over perturbations (as the batch vote sums them), plus the same-knock-down items
    kept = np.array([j for j in labelled if j >= 0], dtype=np.intp)
    unm = np.array([j for j in unmeasured if j >= 0], dtype=np.intp)
    same_kept = [same[j][1] for j in labelled if j < 0]
    return _Selection(
        row=row,
        labelled=labelled,
        unmeasured=ranked(unmeasured),
        positive=positive,
        pos_mass=float((row[kept] * positive[kept]).sum() + same_w * same_kept.count(1)),
        neg_mass=float((row[kept] * ~positive[kept]).sum() + same_w * same_kept.count(0)),
        unm_mass=float(row[unm].sum() + same_w * (len(unmeasured) - len(unm))),
        same=same,
        same_weight=same_w,
    )


def _items(index: CoreIndex, i: int, sel: _Selection, shown: list[int]) -> dict[int, EvidenceItem]:
    """Evidence items of the shown perturbations, each named by its strongest relation with its path."""
    model = index.model
    rels = [r for r in model.relations_used if r in index.relation_set.relations]
    pert_ids, perts = index.relation_set.node_ids, index.perturbations
    out = {j: _same_item(sel, j, str(pert_ids[i]), str(perts[i]), model.unmeasured) for j in shown if j < 0}
    shown = [j for j in shown if j >= 0]
    if not shown or not rels:
        return out
    contrib = np.array(
        [index.relation_set.relations[r].matrix[i].toarray().ravel()[shown] * model.weight(r) for r in rels]
    )
    strongest = [rels[k] for k in contrib.argmax(axis=0)]
    paths: dict[int, Path] = {}
    for r in dict.fromkeys(strongest):
        js = [j for j, s in zip(shown, strongest, strict=True) if s == r]
        paths.update(zip(js, _paths(index, i, np.asarray(js, dtype=np.intp), r), strict=True))
    g = index.graph
    node_ids, node_names = g.nodes["id"].to_numpy(), g.nodes["name"].to_numpy()
    measured = set(sel.labelled)
    for col, j in enumerate(shown):
        pth, detail, _ = paths[j]
        ends = {0: (pert_ids[i], str(perts[i])), len(pth) - 1: (pert_ids[j], str(perts[j]))}
        ids = [str(node_ids[n]) if n >= 0 else ends[k][0] for k, n in enumerate(pth)]
        names = [str(node_names[n]) if n >= 0 else ends[k][1] for k, n in enumerate(pth)]
        label = (1 if sel.positive[j] else 0) if j in measured else None
        out[j] = EvidenceItem(
            perturbation=str(perts[j]),
            relation=strongest[col],
            relation_label=_relation_label(strongest[col]),
            relations=tuple(r for k, r in enumerate(rels) if contrib[k, col] > 0),
            path=tuple(ids),
            path_names=tuple(names),
            path_detail=detail,
            label=label,
            weight=float(sel.row[j]),
            vote_weight=float(sel.row[j] * (model.unmeasured if label is None else 1.0)),
        )
    return out


def _same_item(sel: _Selection, j: int, query_id: str, query: str, u: float) -> EvidenceItem:
    """The ``same_knockdown`` item j: the query's knock-down measured in another line's training labels."""
    line, label = sel.same[j]
    return EvidenceItem(
        perturbation=query,
        relation=CROSSLINE_SAME,
        relation_label=f"{CROSSLINE_SAME_LABEL} ({line})",
        relations=(CROSSLINE_SAME,),
        path=(query_id, f"{query_id}@{line}"),
        path_names=(query, f"{query} in {line}"),
        path_detail=f"{line} training label" if label is not None else f"not among its {line} genes",
        label=label,
        weight=sel.same_weight,
        vote_weight=sel.same_weight * (u if label is None else 1.0),
    )


def _draw(
    index: CoreIndex,
    i: int,
    gene: str,
    positive: Sequence[EvidenceItem],
    negative: Sequence[EvidenceItem],
    unmeasured: Sequence[EvidenceItem],
) -> EvidenceGraph:
    """Nodes (id, name, kind, role) and edges (source, target, relation) of the evidence graph."""
    g = index.graph
    labels = index.labels
    query_id = index.relation_set.node_ids[i]
    gene_id = f"gene:{gene}"
    kind_of = "gene" if labels.perturbation_kind == "knockdown" else "drug"
    nodes: dict[str, GraphNode] = {}
    edges: dict[GraphEdge, None] = {}  # ordered set

    def add_node(nid: str, name: str, kind: str, role: Role) -> None:
        nodes.setdefault(nid, GraphNode(nid, name, kind, role))

    add_node(query_id, str(index.perturbations[i]), kind_of, "query")
    add_node(gene_id, gene, "gene", "gene")
    outcome = {
        "positive": "up_in_training" if labels.task == "dir" else "responded_in_training",
        "negative": "down_in_training" if labels.task == "dir" else "no_response_in_training",
    }
    kinds = g.nodes["kind"].to_numpy()
    sides: tuple[tuple[Sequence[EvidenceItem], Role], ...] = (
        (positive, "positive"),
        (negative, "negative"),
        (unmeasured, "unmeasured"),
    )
    for items, role in sides:
        for it in items:
            ids, names = it.path, it.path_names
            for k in range(1, len(ids) - 1):
                j = int(g.idx(ids[k])[0])
                add_node(ids[k], names[k], str(kinds[j]) if j >= 0 else "term", "intermediate")
            add_node(ids[-1], names[-1], kind_of, role)
            rels = index.relation_set.relations
            rel_edge = rels[it.relation].edge_relation if it.relation in rels else it.relation
            for a, b in itertools.pairwise(ids):
                edges[GraphEdge(a, b, rel_edge)] = None
            if role in outcome:
                edges[GraphEdge(ids[-1], gene_id, outcome[role])] = None
    return EvidenceGraph(nodes=tuple(nodes.values()), edges=tuple(edges))


def _note(
    model: CoreVoting,
    pert: str,
    gene: str,
    vote: float | None,
    n_pos: int,
    n_neg: int,
    n_unm: int,
    budget: int | None,
    split: str | None,
) -> str:
    """One sentence saying where the score comes from."""
    if vote is None:
        calibrated = ", calibrated" if model.calibration != (0.0, 1.0, 1.0) else ""
        note = (
            f"no related training perturbation of {pert} in the graph has an outcome on {gene}: "
            f"the vote is undefined and the score is the gene's training frequency (prior{calibrated})"
        )
    elif n_pos + n_neg == 0:
        note = (
            f"no related perturbation was measured on {gene}; the vote comes from {n_unm} related "
            f"training perturbations where {gene} was not measured (each counted as "
            f"{model.unmeasured:g} of a negative vote)"
        )
    else:
        support = f"budget {budget}" if budget is not None else "full support"
        note = f"{n_pos} positive and {n_neg} negative evidence items ({support})"
    if split == "test":
        note += "; this is a test pair: its label was not used"
    elif split == "train":
        note += "; this is a training pair: the perturbation's own labels are never evidence for it"
    return note


def _resolve_query(labels: LabelSet, perturbation: str, gene: str) -> tuple[str, str]:
    return labels.resolve_perturbation(perturbation), labels.resolve_gene(gene)


def explain(
    labels: LabelSet,
    graph: KnowledgeGraph,
    *,
    perturbation: str,
    gene: str,
    budget: int | None = None,
    index: CoreIndex | None = None,
    relations: Sequence[Relation] | None = None,
    include_leaky: bool = False,
    options: VotingOptions | None = None,
    crossline: Sequence[LabelSet] | None = None,
) -> EvidenceExplanation:
    """The evidence, vote, prior and score of one (perturbation, gene) pair, ready to draw.

    With ``budget=None`` (full support) the score equals :func:`predict_core_voting`'s. With
    ``budget=N`` only the N labelled evidence items (positive or negative) with the largest
    relation weight are kept (ties by name), unmeasured related perturbations count only
    down to the weakest kept item's weight, and the vote and score are recomputed from them.

    Args:
        labels: the label set.
        graph: the knowledge graph.
        perturbation: any spelling of a perturbation of the label set.
        gene: any spelling of a gene of the label set.
        budget: at most this many labelled evidence items (``None``: all).
        index: a prebuilt :class:`CoreIndex` (otherwise the cached :func:`core_index`).
        relations, include_leaky, options, crossline: as for :func:`core_index` (``crossline``:
            the cross-line variant, whose ``co_response`` items are cross-line evidence).

    Returns:
        An :class:`EvidenceExplanation`.

    Raises:
        UnknownNameError: the perturbation or gene is unknown (closest names in the message).
        ValidationError: ``budget`` not in ``1..MAX_BUDGET``.
    """
    if budget is not None:
        check_int_range("budget", budget, 1, MAX_BUDGET, hint="evidence items, or None for all")
    index = index or core_index(
        labels, graph, relations=relations, include_leaky=include_leaky, options=options, crossline=crossline
    )
    p_name, g_name = _resolve_query(labels, perturbation, gene)
    i = int(index.perturbations.get_loc(p_name))
    gi = int(index.genes.get_loc(g_name))
    model, lab = index.model, index.train
    sel = _select(index, i, gi, budget)
    f_all, pi_all = lab.rates(model.unmeasured, model.prior_pseudocount)
    sums = np.array([[[sel.pos_mass], [sel.neg_mass], [sel.unm_mass]]])
    _, tot, vote, score = _combine(
        sums, np.ones(1), f_all[[gi]], pi_all[[gi]], model.shrinkage, model.unmeasured, model.calibration
    )
    vote_v = None if math.isnan(float(vote[0])) else float(vote[0])
    shown_unm = sel.unmeasured[:_UNMEASURED_SHOWN]
    items = _items(index, i, sel, [*sel.labelled, *shown_unm])
    positive = tuple(items[j] for j in sel.labelled if sel.is_positive(j))
    negative = tuple(items[j] for j in sel.labelled if not sel.is_positive(j))
    unm_items = tuple(items[j] for j in shown_unm)
    drawn = _draw(index, i, g_name, positive, negative, unm_items)

    t = labels.table
    hit = t[(t["pert"] == p_name) & (t["gene"] == g_name)]
    split = str(hit["split"].iat[0]) if len(hit) else None
    label = int(hit["label"].iat[0]) if len(hit) else None
    ga = index.gene_auroc()
    gene_auc = float(ga["auroc"].get(g_name, np.nan)) if g_name in ga.index else float("nan")
    gene_n = int(ga["n"].get(g_name, 0)) if g_name in ga.index else 0
    n_pos_g, n_meas_g = float(lab.n_pos[gi]), float(lab.n_meas[gi])
    note = _note(
        model, p_name, g_name, vote_v, len(positive), len(negative), len(sel.unmeasured), budget, split
    )
    return EvidenceExplanation(
        dataset=labels.name,
        task=labels.task,
        cell_line=labels.cell_line,
        perturbation_kind=labels.perturbation_kind,
        perturbation=p_name,
        gene=g_name,
        split=split,
        label=label,
        positive=positive,
        negative=negative,
        unmeasured=unm_items,
        n_positive=len(positive),
        n_negative=len(negative),
        n_unmeasured=len(sel.unmeasured),
        vote=vote_v,
        prior=float(f_all[gi]),
        score=float(score[0]),
        mass={
            "positive": sel.pos_mass,
            "negative": sel.neg_mass,
            "unmeasured": sel.unm_mass,
            "unmeasured_weight": model.unmeasured,
            "total": float(tot[0]),
            "shrinkage": model.shrinkage,
        },
        gene_frequency=GeneFrequency(
            rate=n_pos_g / n_meas_g if n_meas_g else float("nan"),
            n_responded=int(n_pos_g),
            n_measured=int(n_meas_g),
        ),
        model=model.to_dict(),
        relations_used=model.relations_used,
        budget=budget,
        gene_auroc=None if math.isnan(gene_auc) else gene_auc,
        gene_auroc_n=gene_n,
        context=index.context(p_name, g_name),
        graph=drawn,
        note=note,
    )
