"""Relations between perturbations from the knowledge graph: one sparse P x P weight matrix each.

Each relation r gives a matrix ``W_r`` over a label set's perturbations (zero diagonal),
scaled so that its mean row sum is 1. Knock-downs are related by interactions, co-variation,
shared pathways, GO terms and complexes (and, as a leaky ablation only, ``regulates``);
drugs by shared targets, shared mechanism, chemical similarity and adjacent targets.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from numpy.typing import NDArray

from perturb_core.data.names import slug
from perturb_core.data.registry import DrugTable, LabelSet
from perturb_core.errors import DataError, ValidationError, check_choice
from perturb_core.evidence._options import VotingOptions
from perturb_core.kg import LEAKY_RELATIONS, KnowledgeGraph

__all__ = [
    "DRUG_RELATIONS",
    "KNOCKDOWN_RELATIONS",
    "RELATION_SPECS",
    "PathKind",
    "Relation",
    "RelationMatrix",
    "RelationSet",
    "RelationSpec",
    "build_relations",
    "default_relations",
]

Relation = Literal[
    "interacts",
    "covaries",
    "shared_pathway",
    "shared_go_process",
    "shared_go_component",
    "shared_go_function",
    "shared_complex",
    "regulates",
    "shared_target",
    "shared_mechanism",
    "chemical_similarity",
    "adjacent_targets",
]
PathKind = Literal["direct", "shared", "adjacent", "similarity"]


@dataclass(frozen=True, eq=False)
class RelationMatrix:
    """One relation over the dataset's perturbations.

    Attributes:
        name: relation name.
        matrix: P x P non-negative weights (zero diagonal), scaled to mean row sum 1.
        path_kind: how a path between two related perturbations is drawn.
        edge_relation: graph relation of a direct link (``interacts``, ...).
        incidence: P x T membership of perturbations in terms (shared / adjacent relations).
        term_weight: weight of each term (1 / its size), shape (T,).
        term_nodes: graph node index of each term, shape (T,).
        term_links: T x T links between terms (``adjacent_targets``: target interactions).
        values: raw similarity values (``chemical_similarity``: Tanimoto) before scaling.
    """

    name: str
    matrix: sp.csr_matrix
    path_kind: PathKind
    edge_relation: str
    incidence: sp.csr_matrix | None = None
    term_weight: NDArray[np.float64] | None = None
    term_nodes: NDArray[np.int64] | None = None
    term_links: sp.csr_matrix | None = None
    values: sp.csr_matrix | None = None


@dataclass(frozen=True)
class RelationSpec:
    """A relation between perturbations: its name, what it means and how it is built."""

    name: str
    kind: Literal["knockdown", "drug"]
    label: str
    description: str
    build: Callable[[_Context], RelationMatrix]
    leaky: bool = False


@dataclass(frozen=True, eq=False)
class _Context:
    """What relation builders need: the graph, the perturbations' graph nodes, options."""

    graph: KnowledgeGraph
    nodes: NDArray[np.int64]  # graph node index per perturbation (-1 unknown)
    options: VotingOptions
    drugs: DrugTable | None = None
    drug_ids: tuple[str, ...] = ()


def _finish(m: sp.spmatrix) -> sp.csr_matrix:
    """Zero diagonal, drop zeros, scale to mean row sum 1 (an all-zero relation stays zero)."""
    m = sp.csr_matrix(m, dtype=np.float64)
    m = m - sp.diags(m.diagonal())
    m = sp.csr_matrix(m)
    m.eliminate_zeros()
    mean = m.sum() / max(m.shape[0], 1)
    return (m / mean).tocsr() if mean > 0 else m


def _node_rows(ctx: _Context, cols: NDArray[np.int64], relation: str) -> sp.csr_matrix:
    """P x len(cols) 0/1 matrix: perturbation node -> ``cols`` nodes over ``relation`` edges."""
    adj = ctx.graph.adjacency([relation])
    ok = ctx.nodes >= 0
    sub = adj[ctx.nodes[ok]][:, cols].tocsr()
    rows = np.repeat(np.flatnonzero(ok), np.diff(sub.indptr))
    return sp.csr_matrix(
        (np.ones(sub.nnz), (rows, sub.indices)), shape=(len(ctx.nodes), len(cols)), dtype=np.float64
    )


def _direct(relation: str) -> Callable[[_Context], RelationMatrix]:
    def build(ctx: _Context) -> RelationMatrix:
        m = _node_rows(ctx, np.where(ctx.nodes >= 0, ctx.nodes, 0), relation)
        m = m.multiply((ctx.nodes >= 0)[None, :].astype(np.float64)).tocsr()
        m.data[:] = 1.0
        return RelationMatrix(relation, _finish(m), "direct", relation)

    return build


def _shared(relation: str, kind: str, detail: str | None, name: str) -> Callable[[_Context], RelationMatrix]:
    """Perturbations sharing a term (pathway, GO term, complex, mechanism): sum of 1/|term|."""

    def build(ctx: _Context) -> RelationMatrix:
        g = ctx.graph
        mask = (g.nodes["kind"] == kind).to_numpy()
        if detail is not None:
            mask &= (g.nodes["detail"] == detail).to_numpy()
        cols = np.flatnonzero(mask)
        adj = g.adjacency([relation])
        size = np.asarray((adj[:, cols] > 0).sum(axis=0)).ravel().astype(np.float64)
        keep = (size > 1) & (size <= ctx.options.max_term_size)
        cols, size = cols[keep], size[keep]
        inc = _node_rows(ctx, cols, relation)
        used = np.flatnonzero(np.asarray(inc.sum(axis=0)).ravel() > 0)
        inc, cols, size = inc[:, used].tocsr(), cols[used], size[used]
        weight = 1.0 / size
        m = inc @ sp.diags(weight) @ inc.T
        return RelationMatrix(name, _finish(m), "shared", relation, inc, weight, cols.astype(np.int64))

    return build


def _drug_shared(relation: str, kind: str, name: str) -> Callable[[_Context], RelationMatrix]:
    """Drugs sharing a target gene or a mechanism node; term weight 1 / (drugs of the panel on it)."""

    def build(ctx: _Context) -> RelationMatrix:
        g = ctx.graph
        cols = np.flatnonzero((g.nodes["kind"] == kind).to_numpy())
        inc = _node_rows(ctx, cols, relation)
        count = np.asarray(inc.sum(axis=0)).ravel()
        used = np.flatnonzero(count > 1)
        inc, cols = inc[:, used].tocsr(), cols[used]
        weight = 1.0 / count[used]
        m = inc @ sp.diags(weight) @ inc.T
        return RelationMatrix(name, _finish(m), "shared", relation, inc, weight, cols.astype(np.int64))

    return build


def _adjacent_targets(ctx: _Context) -> RelationMatrix:
    """Drugs whose (different) targets interact in the graph; weight = number of such links."""
    g = ctx.graph
    cols = np.flatnonzero((g.nodes["kind"] == "gene").to_numpy())
    inc_all = _node_rows(ctx, cols, "targets")
    used = np.flatnonzero(np.asarray(inc_all.sum(axis=0)).ravel() > 0)
    inc, cols = inc_all[:, used].tocsr(), cols[used]
    links = g.adjacency(["interacts"])[cols][:, cols].tocsr()
    links.data[:] = 1.0
    links = links - sp.diags(links.diagonal())
    links = sp.csr_matrix(links)
    links.eliminate_zeros()
    m = inc @ links @ inc.T
    return RelationMatrix(
        "adjacent_targets",
        _finish(m),
        "adjacent",
        "interacts",
        inc,
        np.ones(len(cols)),
        cols.astype(np.int64),
        links,
    )


def _chemical_similarity(ctx: _Context) -> RelationMatrix:
    """Tanimoto similarity of Morgan fingerprints (radius 2, 2048 bits) at or above a threshold."""
    from perturb_core.chem import tanimoto_matrix

    if ctx.drugs is None:
        raise DataError("chemical_similarity needs the drug table; run `python -m perturb_core data build`")
    rows = ctx.drugs.rows(list(ctx.drug_ids))
    ok = (rows >= 0) & np.where(rows >= 0, ctx.drugs.valid[np.maximum(rows, 0)], False)
    p = len(rows)
    sim = np.zeros((p, p))
    if ok.sum() > 1:
        fp = ctx.drugs.fingerprints[rows[ok]]
        sub = np.asarray(tanimoto_matrix(fp), dtype=np.float64)
        idx = np.flatnonzero(ok)
        sim[np.ix_(idx, idx)] = sub
    np.fill_diagonal(sim, 0.0)
    sim[sim < ctx.options.chem_threshold] = 0.0
    values = sp.csr_matrix(sim)
    return RelationMatrix(
        "chemical_similarity", _finish(values), "similarity", "chemical_similarity", values=values
    )


RELATION_SPECS: Mapping[str, RelationSpec] = MappingProxyType(
    {
        s.name: s
        for s in (
            RelationSpec(
                "interacts",
                "knockdown",
                "protein interaction",
                "p and p' interact (Hetionet Gene-interacts-Gene)",
                _direct("interacts"),
            ),
            RelationSpec(
                "covaries",
                "knockdown",
                "co-variation",
                "p and p' co-vary across species (Hetionet Gene-covaries-Gene)",
                _direct("covaries"),
            ),
            RelationSpec(
                "shared_pathway",
                "knockdown",
                "shared pathway",
                "p and p' are in a common Reactome/WikiPathways/PID pathway; weight sum of 1/|pathway|",
                _shared("in_pathway", "pathway", None, "shared_pathway"),
            ),
            RelationSpec(
                "shared_go_process",
                "knockdown",
                "shared GO process",
                "p and p' share a GO biological process; weight sum of 1/|term|",
                _shared("annotated_with", "go_term", "biological_process", "shared_go_process"),
            ),
            RelationSpec(
                "shared_go_component",
                "knockdown",
                "shared GO component",
                "p and p' share a GO cellular component (complexes, organelles); weight sum of 1/|term|",
                _shared("annotated_with", "go_term", "cellular_component", "shared_go_component"),
            ),
            RelationSpec(
                "shared_go_function",
                "knockdown",
                "shared GO function",
                "p and p' share a GO molecular function; weight sum of 1/|term|",
                _shared("annotated_with", "go_term", "molecular_function", "shared_go_function"),
            ),
            RelationSpec(
                "shared_complex",
                "knockdown",
                "shared complex",
                "p and p' are subunits of a common CORUM complex (only when CORUM is enabled)",
                _shared("in_complex", "complex", None, "shared_complex"),
            ),
            RelationSpec(
                "regulates",
                "knockdown",
                "regulation (leaky)",
                "Hetionet Gene-regulates-Gene, built from LINCS perturbation outcomes: ablation only",
                _direct("regulates"),
                leaky=True,
            ),
            RelationSpec(
                "shared_target",
                "drug",
                "shared target",
                "the drugs share a target gene; weight sum of 1/(drugs on that target)",
                _drug_shared("targets", "gene", "shared_target"),
            ),
            RelationSpec(
                "shared_mechanism",
                "drug",
                "shared mechanism",
                "the drugs have the same mechanism of action; weight 1/(drugs with it)",
                _drug_shared("has_mechanism", "mechanism", "shared_mechanism"),
            ),
            RelationSpec(
                "chemical_similarity",
                "drug",
                "chemical similarity",
                "Tanimoto similarity of Morgan fingerprints >= chem_threshold; weight = similarity",
                _chemical_similarity,
            ),
            RelationSpec(
                "adjacent_targets",
                "drug",
                "adjacent targets",
                "a target of one drug interacts with a target of the other; weight = number of such links",
                _adjacent_targets,
            ),
        )
    }
)
"""Every relation by name (read-only)."""

KNOCKDOWN_RELATIONS: tuple[str, ...] = tuple(n for n, s in RELATION_SPECS.items() if s.kind == "knockdown")
DRUG_RELATIONS: tuple[str, ...] = tuple(n for n, s in RELATION_SPECS.items() if s.kind == "drug")
_BY_KIND: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {"knockdown": KNOCKDOWN_RELATIONS, "drug": DRUG_RELATIONS}
)


def _has_complexes(graph: KnowledgeGraph) -> bool:
    return bool((graph.edges["relation"] == "in_complex").any())


def default_relations(
    labels: LabelSet, graph: KnowledgeGraph, *, include_leaky: bool = False
) -> tuple[str, ...]:
    """Relations used when none are named: every non-leaky relation of the dataset's kind.

    ``shared_complex`` is included only when the graph holds CORUM complexes; ``regulates``
    only with ``include_leaky=True``.
    """
    out = [n for n in _BY_KIND[labels.perturbation_kind] if include_leaky or not RELATION_SPECS[n].leaky]
    if "shared_complex" in out and not _has_complexes(graph):
        out.remove("shared_complex")
    return tuple(out)


def _check_relations(
    labels: LabelSet, graph: KnowledgeGraph, relations: Sequence[str] | None, include_leaky: bool
) -> tuple[str, ...]:
    """The relations to build, validated: names canonical (any case/spacing), duplicates dropped.

    Raises:
        UnknownNameError: a name that is not a relation of the label set's kind.
        ValidationError: no relation, a leaky one without ``include_leaky``, or
            ``shared_complex`` without CORUM complexes in the graph.
    """
    if relations is None:
        return default_relations(labels, graph, include_leaky=include_leaky)
    names = tuple(relations)
    if not names:
        raise ValidationError("relations is empty; name at least one, or pass None for the defaults")
    valid = _BY_KIND[labels.perturbation_kind]
    kind = f"relation for {labels.perturbation_kind} perturbations"
    rels: list[str] = []
    for name in names:
        r = check_choice(kind, name, valid)
        if r in rels:
            continue
        rels.append(r)
        if RELATION_SPECS[r].leaky and not include_leaky:
            raise ValidationError(
                f"relation {r!r} is built from perturbation outcomes (LINCS) and leaks them; "
                f"pass include_leaky=True to use it as an explicit ablation (leaky: {', '.join(LEAKY_RELATIONS)})"
            )
        if r == "shared_complex" and not _has_complexes(graph):
            raise ValidationError(
                "relation 'shared_complex' needs CORUM complexes in the graph; enable them "
                "(enable_corum = true in perturb_core.toml, CC BY-NC licence), then "
                "`python -m perturb_core data fetch --corum` and `python -m perturb_core data build --corum`"
            )
    return tuple(rels)


@dataclass(frozen=True, eq=False)
class RelationSet:
    """Relation matrices over one label set's perturbations.

    Attributes:
        perturbations: the dataset's perturbations (row/column order of every matrix).
        node_ids: graph node id of each perturbation (``gene:SYMBOL`` / ``drug:<id>``).
        nodes: graph node index of each perturbation (-1 when absent from the graph).
        relations: name -> :class:`RelationMatrix`, in order.
    """

    perturbations: pd.Index
    node_ids: tuple[str, ...]
    nodes: NDArray[np.int64]
    relations: dict[str, RelationMatrix]


def _perturbation_nodes(labels: LabelSet, perts: pd.Index) -> tuple[str, ...]:
    if labels.perturbation_kind == "knockdown":
        return tuple(f"gene:{p}" for p in perts)
    return tuple(f"drug:{slug(p)}" for p in perts)


def build_relations(
    labels: LabelSet,
    graph: KnowledgeGraph,
    *,
    relations: Sequence[Relation] | None = None,
    include_leaky: bool = False,
    options: VotingOptions | None = None,
    drugs: DrugTable | None = None,
) -> RelationSet:
    """Build the P x P relation matrices of a label set's perturbations from the graph.

    Args:
        labels: the label set (its perturbations are the rows and columns).
        graph: the knowledge graph.
        relations: relation names (default :func:`default_relations`).
        include_leaky: allow ``regulates`` (built from perturbation outcomes).
        options: term size cap and chemical-similarity threshold.
        drugs: the drug table (drug datasets: fingerprints for ``chemical_similarity``);
            loaded when needed and not given.

    Returns:
        A :class:`RelationSet`.

    Raises:
        ValidationError / UnknownNameError: a bad relation name or a leaky one without the flag.
    """
    options = options or VotingOptions()
    rels = _check_relations(labels, graph, relations, include_leaky)
    perts = pd.Index(labels.table["pert"].cat.categories)
    node_ids = _perturbation_nodes(labels, perts)
    nodes = graph.idx(list(node_ids)).astype(np.int64)
    if drugs is None and "chemical_similarity" in rels:
        from perturb_core.data.registry import load_drugs

        drugs = load_drugs()
    ctx = _Context(graph, nodes, options, drugs, tuple(slug(p) for p in perts))
    return RelationSet(perts, node_ids, nodes, {r: RELATION_SPECS[r].build(ctx) for r in rels})
