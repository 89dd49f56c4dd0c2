"""Typed parts of an explained CORE prediction: evidence items, the gene's training frequency, the drawn graph.

Each is a frozen dataclass whose ``to_dict()`` is its part of the ``core explain --json``
document (DESIGN.md). :class:`EvidenceItem` and :class:`GeneFrequency` also read as read-only
mappings of those JSON fields (``item["path"]`` is ``item.to_dict()["path"]``), so code
written against the dict form keeps working; new code reads the attributes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "EvidenceGraph",
    "EvidenceItem",
    "GeneFrequency",
    "GraphEdge",
    "GraphNode",
    "Role",
    "Side",
]

Side = Literal["positive", "negative", "unmeasured"]
"""Which side of the evidence an item is on (what the gene did under the related perturbation)."""
Role = Literal["query", "gene", "positive", "negative", "unmeasured", "intermediate"]
"""Role of a node of the evidence graph: the query p, the gene g, an evidence side, or a path node."""


@dataclass(frozen=True)
class EvidenceItem:
    """One related training perturbation p' and what the gene did under it.

    Attributes:
        perturbation: the related perturbation p'.
        relation: its strongest relation to the query (a key of ``RELATION_SPECS``).
        relation_label: that relation's human label.
        relations: every relation of the model that links it to the query.
        path: graph node ids from the query to p' over ``relation`` (query first, p' last).
        path_names: the names of those nodes.
        path_detail: what the path summarises (``"3 shared"``, ``"Tanimoto 0.41"``), or ``None``.
        label: the gene's training label under p' (1 = positive, 0 = negative), ``None`` if unmeasured.
        weight: relation weight of p' to the query.
        vote_weight: its weight in the vote (an unmeasured item counts ``u`` times its weight).
    """

    perturbation: str
    relation: str
    relation_label: str
    relations: tuple[str, ...]
    path: tuple[str, ...]
    path_names: tuple[str, ...]
    path_detail: str | None
    label: int | None
    weight: float
    vote_weight: float

    @property
    def node(self) -> str:
        """The graph node id of the related perturbation (the last node of its path)."""
        return self.path[-1]

    @property
    def path_text(self) -> str:
        """The path as names joined by arrows: ``"AARS2 → mitochondrial … → TFAM"``."""
        return " → ".join(self.path_names)

    def to_dict(self) -> dict[str, Any]:
        """The item as in ``core explain --json``."""
        return {
            "perturbation": self.perturbation,
            "relation": self.relation,
            "relation_label": self.relation_label,
            "relations": list(self.relations),
            "path": list(self.path),
            "path_names": list(self.path_names),
            "path_detail": self.path_detail,
            "label": self.label,
            "weight": self.weight,
            "vote_weight": self.vote_weight,
        }


@dataclass(frozen=True)
class GeneFrequency:
    """The gene's training response rate: the prior of the vote.

    Attributes:
        rate: ``n_responded / n_measured`` (NaN when no training perturbation measured it).
        n_responded: training perturbations under which the gene responded (went up).
        n_measured: training perturbations that measured the gene.
    """

    rate: float
    n_responded: int
    n_measured: int

    def to_dict(self) -> dict[str, Any]:
        """As in ``core explain --json`` (``gene_frequency``)."""
        return {"rate": self.rate, "n_responded": self.n_responded, "n_measured": self.n_measured}


@dataclass(frozen=True)
class GraphNode:
    """A node of the evidence graph.

    Attributes:
        id: graph node id (``gene:TFAM``, ``go:GO:0033108``, ``drug:…``).
        name: its display name.
        kind: node kind (``gene``, ``drug``, ``pathway``, ``go_term``, ...; ``term`` if unknown).
        role: its :data:`Role` in this explanation.
    """

    id: str
    name: str
    kind: str
    role: Role

    def to_dict(self) -> dict[str, Any]:
        """As in ``core explain --json`` (``graph.nodes``)."""
        return {"id": self.id, "name": self.name, "kind": self.kind, "role": self.role}


@dataclass(frozen=True)
class GraphEdge:
    """An edge of the evidence graph: a graph relation on a path, or an outcome edge to the gene.

    Attributes:
        source: node id.
        target: node id.
        relation: the graph relation (``interacts_with``, ``annotated_with``, ...) or the training
            outcome on the gene (``responded_in_training``, ``no_response_in_training``,
            ``up_in_training``, ``down_in_training``).
    """

    source: str
    target: str
    relation: str

    def to_dict(self) -> dict[str, Any]:
        """As in ``core explain --json`` (``graph.edges``)."""
        return {"source": self.source, "target": self.target, "relation": self.relation}


@dataclass(frozen=True)
class EvidenceGraph:
    """The evidence subgraph of one (perturbation, gene) pair, ready to draw.

    Attributes:
        nodes: unique nodes in drawing order: the query, the gene, then every item's path nodes.
        edges: unique edges in order of appearance.
    """

    nodes: tuple[GraphNode, ...]
    edges: tuple[GraphEdge, ...]

    def node(self, node_id: str) -> GraphNode:
        """The node with id ``node_id``.

        Raises:
            KeyError: no such node in this graph.
        """
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(f"node {node_id!r} is not in this evidence graph")

    def to_dict(self) -> dict[str, list[dict[str, Any]]]:
        """As in ``core explain --json`` (``graph``)."""
        return {"nodes": [n.to_dict() for n in self.nodes], "edges": [e.to_dict() for e in self.edges]}
