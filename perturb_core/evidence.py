"""CORE evidence: related perturbations from the knowledge graph, their training outcomes on a gene, and CORE-Voting.

For a query (perturbation p, gene g) the evidence is every TRAINING perturbation p' related
to p in the knowledge graph (never p itself, never a test label), split by what g did under
p': positive (g responded / went up), negative (g was measured and did not respond / went
down) and unmeasured (p' is a training perturbation but g was not among its measured genes).

Each relation r gives a sparse P x P weight matrix ``W_r`` over the dataset's perturbations
(zero diagonal), scaled so that its mean row sum is 1. CORE-Voting combines them with fitted
relation weights ``w_r`` into ``K = sum_r w_r W_r`` and, for every query pair at once
(gathers of K at the gene's labelled training entries and bincounts, no per-pair loop)::

    pos = K[p] . Y+[:, g]        neg = K[p] . Y0[:, g]        unm = K[p] . (1 - M[:, g])
    tot = pos + neg + u * unm                     vote = pos / tot
    v   = (pos + m * pi_g) / (tot + m)            (shrunk toward the gene's prior)
    score = sigmoid(logit f_g + logit v - logit pi_g)

``f_g`` is the gene's training response rate (pseudo-count ``a`` toward the global rate),
``pi_g`` the same rate on the vote's scale (unmeasured pairs counted with weight ``u``), ``m``
the shrinkage strength and ``u`` the weight of an unmeasured related perturbation as a
negative vote. ``w_r``, ``m`` and ``u`` are fitted on the training split only, by
cross-validation over training perturbations (coordinate ascent on a grid maximising the
mean over folds of the macro per-gene AUROC). See ``docs/core.md``.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from numpy.typing import NDArray

from perturb_core.data.names import slug
from perturb_core.data.registry import DrugTable, LabelSet
from perturb_core.errors import DataError, ValidationError, unknown_name
from perturb_core.kg import LEAKY_RELATIONS, KnowledgeGraph
from perturb_core.metrics import macro_gene_auroc

__all__ = [
    "DRUG_RELATIONS",
    "KNOCKDOWN_RELATIONS",
    "RELATION_SPECS",
    "CoreIndex",
    "CoreVoting",
    "EvidenceExplanation",
    "Relation",
    "RelationSpec",
    "VotingOptions",
    "build_relations",
    "clear_core_cache",
    "core_index",
    "default_relations",
    "explain",
    "fit_core_voting",
    "gene_frequency",
    "predict_core_voting",
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
Role = Literal["query", "gene", "positive", "negative", "unmeasured", "intermediate"]

_EPS = 1e-6
_CHUNK_CELLS = 4_000_000  # (pair, training entry) expansions per chunk of the vote
_DENSE_MAX = 5000  # kernels over at most this many perturbations are gathered densely
_UNMEASURED_SHOWN = 20  # unmeasured related perturbations listed in an explanation
_CONTEXT_TERMS = 5  # pathways / processes described per perturbation or gene


# --------------------------------------------------------------------------- options and models


@dataclass(frozen=True)
class VotingOptions:
    """How relation matrices are built and CORE-Voting is fitted.

    Attributes:
        n_folds: cross-validation folds over training perturbations.
        seed: seed of the fold assignment.
        n_rounds: passes of coordinate ascent over weights, shrinkage and unmeasured weight.
        weight_grid: candidate relation weights (0 switches a relation off).
        shrinkage_grid: candidate shrinkage strengths ``m`` (in units of relation mass).
        unmeasured_grid: candidate weights ``u`` of an unmeasured related perturbation as a
            negative vote (direction task: always 0).
        shrinkage: fix ``m`` instead of fitting it (0 = no shrinkage).
        unmeasured: fix ``u`` instead of fitting it (0 = strict CORE evidence).
        weights: fix the relation weights instead of fitting them.
        prior_pseudocount: pseudo-count ``a`` pulling a gene's rate toward the global rate.
        max_term_size: shared pathways / GO terms with more genes are ignored.
        chem_threshold: minimum Tanimoto similarity of a chemical-similarity relation.
        calibrate: fit the final logistic calibration of (prior, lift) on out-of-fold pairs.
    """

    n_folds: int = 5
    seed: int = 0
    n_rounds: int = 1
    weight_grid: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
    shrinkage_grid: tuple[float, ...] = (0.1, 0.3, 1.0, 3.0, 10.0)
    unmeasured_grid: tuple[float, ...] = (0.0, 0.01, 0.03, 0.1, 0.3, 1.0)
    shrinkage: float | None = None
    unmeasured: float | None = None
    weights: tuple[tuple[str, float], ...] | None = None
    prior_pseudocount: float = 0.5
    max_term_size: int = 2000
    chem_threshold: float = 0.3
    calibrate: bool = True

    def __post_init__(self) -> None:
        if self.n_folds < 2:
            raise ValidationError(f"n_folds = {self.n_folds} must be >= 2 (cross-validation inside train)")
        if self.n_rounds < 1:
            raise ValidationError(f"n_rounds = {self.n_rounds} must be >= 1")
        for name in ("weight_grid", "shrinkage_grid", "unmeasured_grid"):
            grid = getattr(self, name)
            if not grid or min(grid) < 0:
                raise ValidationError(f"{name} = {grid!r} must be a non-empty tuple of values >= 0")
        for name in ("shrinkage", "unmeasured"):
            v = getattr(self, name)
            if v is not None and v < 0:
                raise ValidationError(f"{name} = {v!r} must be >= 0 (or None to fit it)")
        if self.prior_pseudocount <= 0:
            raise ValidationError(f"prior_pseudocount = {self.prior_pseudocount} must be > 0")
        if not 0 < self.chem_threshold <= 1:
            raise ValidationError(f"chem_threshold = {self.chem_threshold} must be in (0, 1]")


@dataclass(frozen=True)
class CoreVoting:
    """A fitted CORE-Voting model (frozen): relation weights, shrinkage and unmeasured weight.

    Attributes:
        dataset: label dataset it was fitted on.
        task: ``de`` or ``dir``.
        relations: relations considered, in order.
        weights: fitted weight of each relation (same order; 0 = not used).
        shrinkage: shrinkage strength ``m``.
        unmeasured: weight ``u`` of an unmeasured related training perturbation as a negative vote.
        prior_pseudocount: pseudo-count ``a`` of the gene prior.
        cv_macro_gene_auroc: cross-validated objective at the fitted values (mean over folds).
        cv_baseline: the same objective with all weights 1, ``m`` = 1 and ``u`` = 0 (start point).
        n_folds: folds used.
        seed: fold seed.
        calibration: ``(c0, c1, c2)`` of ``score = sigmoid(c0 + c1 logit f + c2 lift)``, fitted by
            logistic regression on out-of-fold training pairs (identity ``(0, 1, 1)`` when off).
    """

    dataset: str
    task: str
    relations: tuple[str, ...]
    weights: tuple[float, ...]
    shrinkage: float
    unmeasured: float
    prior_pseudocount: float
    cv_macro_gene_auroc: float
    cv_baseline: float
    n_folds: int
    seed: int
    calibration: tuple[float, float, float] = (0.0, 1.0, 1.0)

    @property
    def relations_used(self) -> tuple[str, ...]:
        """Relations with a non-zero weight."""
        return tuple(r for r, w in zip(self.relations, self.weights, strict=True) if w > 0)

    def weight(self, relation: str) -> float:
        """The fitted weight of ``relation`` (0 if not considered)."""
        return dict(zip(self.relations, self.weights, strict=True)).get(relation, 0.0)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {
            "dataset": self.dataset,
            "task": self.task,
            "weights": dict(zip(self.relations, self.weights, strict=True)),
            "shrinkage": self.shrinkage,
            "unmeasured_weight": self.unmeasured,
            "prior_pseudocount": self.prior_pseudocount,
            "cv_macro_gene_auroc": self.cv_macro_gene_auroc,
            "cv_baseline": self.cv_baseline,
            "n_folds": self.n_folds,
            "seed": self.seed,
            "calibration": {
                "intercept": self.calibration[0],
                "prior": self.calibration[1],
                "lift": self.calibration[2],
            },
        }


# --------------------------------------------------------------------------- relations


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


RELATION_SPECS: dict[str, RelationSpec] = {
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
"""Every relation by name."""

KNOCKDOWN_RELATIONS: tuple[str, ...] = tuple(n for n, s in RELATION_SPECS.items() if s.kind == "knockdown")
DRUG_RELATIONS: tuple[str, ...] = tuple(n for n, s in RELATION_SPECS.items() if s.kind == "drug")


def _has_complexes(graph: KnowledgeGraph) -> bool:
    return bool((graph.edges["relation"] == "in_complex").any())


def default_relations(
    labels: LabelSet, graph: KnowledgeGraph, *, include_leaky: bool = False
) -> tuple[str, ...]:
    """Relations used when none are named: every non-leaky relation of the dataset's kind.

    ``shared_complex`` is included only when the graph holds CORUM complexes; ``regulates``
    only with ``include_leaky=True``.
    """
    names = KNOCKDOWN_RELATIONS if labels.perturbation_kind == "knockdown" else DRUG_RELATIONS
    out = [n for n in names if include_leaky or not RELATION_SPECS[n].leaky]
    if "shared_complex" in out and not _has_complexes(graph):
        out.remove("shared_complex")
    return tuple(out)


def _check_relations(
    labels: LabelSet, graph: KnowledgeGraph, relations: Sequence[str] | None, include_leaky: bool
) -> tuple[str, ...]:
    if relations is None:
        return default_relations(labels, graph, include_leaky=include_leaky)
    rels = tuple(dict.fromkeys(relations))
    if not rels:
        raise ValidationError("relations is empty; name at least one, or pass None for the defaults")
    valid = KNOCKDOWN_RELATIONS if labels.perturbation_kind == "knockdown" else DRUG_RELATIONS
    for r in rels:
        if r not in valid:
            raise unknown_name(f"relation for {labels.perturbation_kind} perturbations", r, valid)
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
    return rels


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


# --------------------------------------------------------------------------- label matrices


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


# --------------------------------------------------------------------------- fitting


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
    rs: RelationSet, labels: LabelSet, options: VotingOptions
) -> tuple[NDArray[np.float64], float, float, float, float]:
    """Coordinate ascent of (weights, m, u) on the CV objective; returns them and the objective."""
    pert, gene, y, train = _codes(labels)
    names = list(rs.relations)
    kernels = _gatherable([rs.relations[r].matrix for r in names])
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
        pieces.append((lab, _evidence_sums(kernels, lab, pert[q], gene[q]), y[q], gene[q]))
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

    fixed_w = dict(options.weights) if options.weights is not None else None
    if fixed_w is not None:
        unknown = sorted(set(fixed_w) - set(names))
        if unknown:
            raise ValidationError(
                f"weights name relation(s) {unknown} that are not used here; relations: {', '.join(names)}"
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

    Returns:
        The fitted :class:`CoreVoting`.
    """
    options = options or VotingOptions()
    rs = relation_set or build_relations(
        labels, graph, relations=relations, include_leaky=include_leaky, options=options
    )
    w, m, u, best, base, calibration = _fit(rs, labels, options)
    return CoreVoting(
        dataset=labels.name,
        task=labels.task,
        relations=tuple(rs.relations),
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


# --------------------------------------------------------------------------- the index


@dataclass(frozen=True, eq=False)
class CoreIndex:
    """Everything needed to score and explain one label set: relations, training labels, model.

    Build it with :func:`core_index` (cached per process). Read-only; safe to share (e.g. in
    Streamlit's ``st.cache_resource``).

    Attributes:
        labels: the label set.
        graph: the knowledge graph.
        relation_set: relation matrices over the label set's perturbations.
        model: the fitted :class:`CoreVoting`.
        train: training label matrices (evidence for every query).
        genes: the label set's genes (column order).
    """

    labels: LabelSet
    graph: KnowledgeGraph
    relation_set: RelationSet
    model: CoreVoting
    train: _Labels
    genes: pd.Index
    _kernel: sp.csr_matrix = field(repr=False)
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

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
        if "gather" not in self._cache:
            self._cache["gather"] = _gatherable([self._kernel])
        sums = _evidence_sums(self._cache["gather"], self.train, pert, gene)
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
        kind = "drug" if self.labels.perturbation_kind == "drug" else "gene"
        return {"perturbation": _describe(self, node, kind), "gene": _describe(self, f"gene:{gene}", "gene")}

    def test_scores(self) -> pd.DataFrame:
        """CORE-Voting of every test pair (cached): ``pert, gene, label`` plus :meth:`score` columns."""
        if "test" not in self._cache:
            t = self.labels.table
            test = (t["split"] == "test").to_numpy()
            sub = t.loc[test, ["pert", "gene", "label"]].reset_index(drop=True)
            s = self.score(
                sub["pert"].cat.codes.to_numpy().astype(np.intp),
                sub["gene"].cat.codes.to_numpy().astype(np.intp),
            )
            self._cache["test"] = pd.concat([sub, s], axis=1)
        return self._cache["test"]

    def gene_auroc(self) -> pd.DataFrame:
        """Per-gene AUROC of CORE-Voting over test perturbations: ``auroc`` (NaN if one class), ``n``."""
        if "gene_auroc" not in self._cache:
            ts = self.test_scores()
            if len(ts):
                res = macro_gene_auroc(
                    ts["label"].to_numpy(), ts["score"].to_numpy(), ts["gene"].astype(str).to_numpy()
                )
                n = ts.groupby(ts["gene"].astype(str)).size()
                self._cache["gene_auroc"] = pd.DataFrame(
                    {"auroc": res.per_group, "n": n.reindex(res.per_group.index)}
                )
            else:
                self._cache["gene_auroc"] = pd.DataFrame({"auroc": [], "n": []})
        return self._cache["gene_auroc"]


_INDEX_CACHE: dict[tuple[Any, ...], CoreIndex] = {}
_INDEX_CACHE_SIZE = 16
_INDEX_LOCK = threading.Lock()  # Streamlit serves sessions from several threads


def clear_core_cache() -> None:
    """Forget every cached :class:`CoreIndex`."""
    _INDEX_CACHE.clear()


def core_index(
    labels: LabelSet,
    graph: KnowledgeGraph,
    *,
    relations: Sequence[Relation] | None = None,
    include_leaky: bool = False,
    options: VotingOptions | None = None,
    drugs: DrugTable | None = None,
) -> CoreIndex:
    """Build (or fetch from the per-process cache) the :class:`CoreIndex` of a label set.

    The cache is keyed by the label set (name, task, table identity), the graph identity, the
    relations, ``include_leaky`` and the options, so a second call costs microseconds.

    Args:
        labels: the label set.
        graph: the knowledge graph.
        relations: relation names (default :func:`default_relations`).
        include_leaky: allow ``regulates`` (ablation).
        options: fitting options.
        drugs: drug table for drug datasets (loaded when needed).

    Returns:
        The index with its fitted model.
    """
    options = options or VotingOptions()
    rels = _check_relations(labels, graph, relations, include_leaky)
    key = (labels.name, labels.task, id(labels.table), id(graph), rels, include_leaky, options)
    with _INDEX_LOCK:
        hit = _INDEX_CACHE.get(key)
    if hit is not None and hit.labels.table is labels.table and hit.graph is graph:
        return hit
    rs = build_relations(
        labels, graph, relations=rels, include_leaky=include_leaky, options=options, drugs=drugs
    )
    model = fit_core_voting(labels, graph, options=options, relation_set=rs)
    pert, gene, y, train = _codes(labels)
    genes = pd.Index(labels.table["gene"].cat.categories)
    lab = _Labels.build(pert[train], gene[train], y[train], (len(rs.perturbations), len(genes)))
    kernel = _kernel(rs, model)
    index = CoreIndex(labels, graph, rs, model, lab, genes, kernel)
    with _INDEX_LOCK:
        while len(_INDEX_CACHE) >= _INDEX_CACHE_SIZE:
            _INDEX_CACHE.pop(next(iter(_INDEX_CACHE)), None)
        _INDEX_CACHE[key] = index
    return index


def _kernel(rs: RelationSet, model: CoreVoting) -> sp.csr_matrix:
    p = len(rs.perturbations)
    k = sp.csr_matrix((p, p))
    for r, w in zip(model.relations, model.weights, strict=True):
        if w > 0:
            k = k + w * rs.relations[r].matrix
    return sp.csr_matrix(k)


# --------------------------------------------------------------------------- batch API


def _pair_codes(
    labels: LabelSet, pairs: pd.DataFrame | None
) -> tuple[pd.DataFrame, NDArray[np.intp], NDArray[np.intp]]:
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


# --------------------------------------------------------------------------- explain


@dataclass(frozen=True)
class EvidenceExplanation:
    """The evidence behind one (perturbation, gene) prediction (frozen).

    ``to_dict()`` is what ``python -m perturb_core core explain --json`` prints.
    """

    dataset: str
    task: str
    cell_line: str
    perturbation_kind: str
    perturbation: str
    gene: str
    split: str | None
    label: int | None
    positive: tuple[dict[str, Any], ...]
    negative: tuple[dict[str, Any], ...]
    unmeasured: tuple[dict[str, Any], ...]
    n_positive: int
    n_negative: int
    n_unmeasured: int
    vote: float | None
    prior: float
    score: float
    mass: dict[str, float]
    gene_frequency: dict[str, float | int]
    model: dict[str, Any]
    relations_used: tuple[str, ...]
    budget: int | None
    gene_auroc: float | None
    gene_auroc_n: int
    context: dict[str, Any]
    graph: dict[str, list[dict[str, Any]]]
    note: str

    @property
    def positive_means(self) -> str:
        """What a positive label means for this task."""
        return "went up" if self.task == "dir" else "responded (differentially expressed)"

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
            "positive": list(self.positive),
            "negative": list(self.negative),
            "unmeasured": list(self.unmeasured),
            "n_positive": self.n_positive,
            "n_negative": self.n_negative,
            "n_unmeasured": self.n_unmeasured,
            "vote": clean(self.vote),
            "prior": self.prior,
            "score": self.score,
            "mass": self.mass,
            "gene_frequency": self.gene_frequency,
            "model": self.model,
            "relations_used": list(self.relations_used),
            "budget": self.budget,
            "gene_auroc": clean(self.gene_auroc),
            "gene_auroc_n": self.gene_auroc_n,
            "context": self.context,
            "graph": self.graph,
            "note": self.note,
        }


def _paths(
    index: CoreIndex, i: int, js: NDArray[np.intp], relation: str
) -> list[tuple[list[int], str | None, float]]:
    """Graph path (node indices) from perturbation i to each j over ``relation``, with a label.

    Returns one ``(node indices, detail, raw value)`` per j; the node list starts at i's node
    and ends at j's; detail is the number of shared terms or the similarity, as text.
    """
    rel = index.relation_set.relations[relation]
    nodes = index.relation_set.nodes
    out: list[tuple[list[int], str | None, float]] = []
    if rel.path_kind == "direct":
        return [([int(nodes[i]), int(nodes[j])], None, 1.0) for j in js]
    if rel.path_kind == "similarity":
        vals = rel.values[i].toarray().ravel() if rel.values is not None else np.zeros(len(nodes))
        return [([int(nodes[i]), int(nodes[j])], f"Tanimoto {vals[j]:.2f}", float(vals[j])) for j in js]
    inc = rel.incidence
    assert inc is not None and rel.term_weight is not None and rel.term_nodes is not None
    mine = inc[i].toarray().ravel() > 0
    if rel.path_kind == "shared":
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
    # adjacent: a target of i linked to a target of j
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


def _describe(index: CoreIndex, node_id: str, kind: str) -> dict[str, Any]:
    """What a perturbation or gene is, from the graph: targets and mechanism of a drug; the
    most specific pathways and GO processes (at least 5 genes) of a gene. Cached per node."""
    cache = index._cache.setdefault("describe", {})
    if node_id in cache:
        return cache[node_id]
    g = index.graph
    info: dict[str, Any] = {"id": node_id}
    i = int(g.idx(node_id)[0])
    if i < 0:
        info["in_graph"] = False
        cache[node_id] = info
        return info
    info["in_graph"] = True
    info["name"] = str(g.nodes["name"].iat[i])
    kinds = g.nodes["kind"].to_numpy()
    details = g.nodes["detail"].to_numpy()
    names = g.nodes["name"].to_numpy()

    def terms(relation: str, kind_: str, detail: str | None = None, *, by_size: bool = True) -> list[str]:
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

    if kind == "drug":
        info["targets"] = terms("targets", "gene", by_size=False)
        info["mechanism"] = terms("has_mechanism", "mechanism", by_size=False)
    else:
        info["pathways"] = terms("in_pathway", "pathway")
        info["processes"] = terms("annotated_with", "go_term", "biological_process")
    cache[node_id] = info
    return info


@dataclass(frozen=True, eq=False)
class _Selection:
    """The evidence of one query kept for the vote: labelled items and unmeasured ones."""

    row: NDArray[np.float64]  # relation weight of every perturbation to the query (0 = unrelated)
    labelled: list[int]  # kept labelled evidence, strongest first
    unmeasured: list[int]  # counted unmeasured related perturbations, strongest first
    positive: NDArray[np.bool_]  # per perturbation: the gene responded (went up) under it
    pos_mass: float
    neg_mass: float
    unm_mass: float


def _select(index: CoreIndex, i: int, gi: int, budget: int | None) -> _Selection:
    """Related training perturbations of query i with their outcome on gene gi, ranked."""
    lab = index.train
    row = index._kernel[i].toarray().ravel() * lab.evidence
    row[i] = 0.0
    related = np.flatnonzero(row > 0)
    positive = lab.pos[:, gi].toarray().ravel() > 0
    measured_col = lab.meas[:, gi].toarray().ravel() > 0
    names = np.asarray(index.perturbations, dtype=object)

    def ranked(js: NDArray[np.intp]) -> list[int]:
        return sorted(js.tolist(), key=lambda j: (-row[j], str(names[j])))

    labelled = ranked(related[measured_col[related]])
    unmeasured = related[~measured_col[related]]
    if budget is not None:
        labelled = labelled[:budget]
        floor = row[labelled[-1]] if labelled else np.inf
        unmeasured = unmeasured[row[unmeasured] >= floor]
    kept = np.asarray(labelled, dtype=np.intp)
    return _Selection(
        row=row,
        labelled=labelled,
        unmeasured=ranked(unmeasured),
        positive=positive,
        pos_mass=float((row[kept] * positive[kept]).sum()),
        neg_mass=float((row[kept] * ~positive[kept]).sum()),
        unm_mass=float(row[unmeasured].sum()),
    )


def _items(index: CoreIndex, i: int, sel: _Selection, shown: list[int]) -> dict[int, dict[str, Any]]:
    """Evidence items of the shown perturbations, each named by its strongest relation with its path."""
    model = index.model
    rels = list(model.relations_used)
    if not shown or not rels:
        return {}
    contrib = np.array(
        [index.relation_set.relations[r].matrix[i].toarray().ravel()[shown] * model.weight(r) for r in rels]
    )
    strongest = [rels[k] for k in contrib.argmax(axis=0)]
    paths: dict[int, tuple[list[int], str | None, float]] = {}
    for r in dict.fromkeys(strongest):
        js = [j for j, s in zip(shown, strongest, strict=True) if s == r]
        paths.update(zip(js, _paths(index, i, np.asarray(js, dtype=np.intp), r), strict=True))
    g = index.graph
    node_ids, node_names = g.nodes["id"].to_numpy(), g.nodes["name"].to_numpy()
    pert_ids, perts = index.relation_set.node_ids, index.perturbations
    measured = set(sel.labelled)
    out = {}
    for col, j in enumerate(shown):
        pth, detail, _ = paths[j]
        ends = {0: (pert_ids[i], str(perts[i])), len(pth) - 1: (pert_ids[j], str(perts[j]))}
        ids = [str(node_ids[n]) if n >= 0 else ends[k][0] for k, n in enumerate(pth)]
        names = [str(node_names[n]) if n >= 0 else ends[k][1] for k, n in enumerate(pth)]
        label = (1 if sel.positive[j] else 0) if j in measured else None
        out[j] = {
            "perturbation": str(perts[j]),
            "relation": strongest[col],
            "relation_label": RELATION_SPECS[strongest[col]].label,
            "relations": [r for k, r in enumerate(rels) if contrib[k, col] > 0],
            "path": ids,
            "path_names": names,
            "path_detail": detail,
            "label": label,
            "weight": float(sel.row[j]),
            "vote_weight": float(sel.row[j] * (model.unmeasured if label is None else 1.0)),
        }
    return out


def _draw(
    index: CoreIndex,
    i: int,
    gene: str,
    positive: Sequence[dict[str, Any]],
    negative: Sequence[dict[str, Any]],
    unmeasured: Sequence[dict[str, Any]],
) -> dict[str, list[dict[str, Any]]]:
    """Nodes (id, name, kind, role) and edges (source, target, relation) of the evidence graph."""
    g = index.graph
    labels = index.labels
    query_id = index.relation_set.node_ids[i]
    gene_id = f"gene:{gene}"
    kind_of = "gene" if labels.perturbation_kind == "knockdown" else "drug"
    nodes: dict[str, dict[str, Any]] = {}
    edges: dict[tuple[str, str, str], None] = {}  # ordered set

    def add_node(nid: str, name: str, kind: str, role: Role) -> None:
        nodes.setdefault(nid, {"id": nid, "name": name, "kind": kind, "role": role})

    add_node(query_id, str(index.perturbations[i]), kind_of, "query")
    add_node(gene_id, gene, "gene", "gene")
    outcome = {
        "positive": "up_in_training" if labels.task == "dir" else "responded_in_training",
        "negative": "down_in_training" if labels.task == "dir" else "no_response_in_training",
    }
    kinds = g.nodes["kind"].to_numpy()
    sides: tuple[tuple[Sequence[dict[str, Any]], Role], ...] = (
        (positive, "positive"),
        (negative, "negative"),
        (unmeasured, "unmeasured"),
    )
    for items, role in sides:
        for it in items:
            ids, names = it["path"], it["path_names"]
            for k in range(1, len(ids) - 1):
                j = int(g.idx(ids[k])[0])
                add_node(ids[k], names[k], str(kinds[j]) if j >= 0 else "term", "intermediate")
            add_node(ids[-1], names[-1], kind_of, role)
            rel_edge = index.relation_set.relations[it["relation"]].edge_relation
            for a, b in itertools.pairwise(ids):
                edges[(a, b, rel_edge)] = None
            if role in outcome:
                edges[(ids[-1], gene_id, outcome[role])] = None
    return {
        "nodes": list(nodes.values()),
        "edges": [{"source": a, "target": b, "relation": r} for a, b, r in edges],
    }


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
        relations, include_leaky, options: as for :func:`core_index`.

    Returns:
        An :class:`EvidenceExplanation`.

    Raises:
        UnknownNameError: the perturbation or gene is unknown (closest names in the message).
        ValidationError: ``budget`` < 1.
    """
    if budget is not None and (isinstance(budget, bool) or budget < 1):
        raise ValidationError(
            f"budget = {budget!r} must be a positive number of evidence items (or None for all)"
        )
    index = index or core_index(
        labels, graph, relations=relations, include_leaky=include_leaky, options=options
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
    positive = tuple(items[j] for j in sel.labelled if sel.positive[j])
    negative = tuple(items[j] for j in sel.labelled if not sel.positive[j])
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
            "total": float(tot[0]),
            "shrinkage": model.shrinkage,
        },
        gene_frequency={
            "rate": n_pos_g / n_meas_g if n_meas_g else float("nan"),
            "n_responded": int(n_pos_g),
            "n_measured": int(n_meas_g),
        },
        model=model.to_dict(),
        relations_used=model.relations_used,
        budget=budget,
        gene_auroc=None if math.isnan(gene_auc) else gene_auc,
        gene_auroc_n=gene_n,
        context=index.context(p_name, g_name),
        graph=drawn,
        note=note,
    )
