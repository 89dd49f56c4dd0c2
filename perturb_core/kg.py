"""The knowledge graph: typed nodes and edges, sparse adjacency per relation, neighbours.

Built by ``python -m perturb_core data build`` into two parquet tables (see
:mod:`perturb_core.data.graph` for node ids and relation semantics). Loading takes well
under a second; adjacency matrices are built on first use per relation set and kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import scipy.sparse as sp

from perturb_core.config import Settings, get_settings
from perturb_core.data.artifacts import REBUILD, check_table
from perturb_core.data.graph import RELATIONS
from perturb_core.errors import (
    DataError,
    NotBuiltError,
    ValidationError,
    check_choice,
    name_key,
    unknown_name,
)

__all__ = ["LEAKY_RELATIONS", "RELATIONS", "KnowledgeGraph", "load_graph"]

#: Relations built from perturbation outcomes themselves (Hetionet's Gene-regulates-Gene
#: comes from LINCS knock-down/over-expression signatures): off by default in evidence.
LEAKY_RELATIONS = ("regulates",)


@dataclass(frozen=True)
class KnowledgeGraph:
    """A typed multigraph over integer node indices.

    Attributes:
        nodes: ``id, name, kind, detail``; row i is node i.
        edges: ``src, dst`` (node indices), ``relation``, ``source``.
    """

    nodes: pd.DataFrame
    edges: pd.DataFrame
    _index: pd.Index = field(repr=False, compare=False, default=None)  # type: ignore[assignment]
    _adj: dict[tuple[tuple[str, ...], bool], sp.csr_matrix] = field(
        default_factory=dict, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", pd.Index(self.nodes["id"]))

    @classmethod
    def from_tables(cls, nodes: pd.DataFrame, edges: pd.DataFrame) -> KnowledgeGraph:
        """Build from node ids and edges given as node ids (``src``, ``dst`` strings)."""
        nodes = nodes.reset_index(drop=True)
        idx = pd.Index(nodes["id"])
        if not idx.is_unique:
            raise ValidationError(f"duplicate node ids: {list(idx[idx.duplicated()][:5])}")
        src, dst = idx.get_indexer(edges["src"]), idx.get_indexer(edges["dst"])
        if (src < 0).any() or (dst < 0).any():
            bad = edges.loc[(src < 0) | (dst < 0), ["src", "dst"]].head(3).to_dict("records")
            raise ValidationError(f"edges reference unknown nodes, e.g. {bad}")
        e = pd.DataFrame(
            {
                "src": src.astype(np.int32),
                "dst": dst.astype(np.int32),
                "relation": edges["relation"].astype("category"),
                "source": edges.get("source", pd.Series("", index=edges.index)).astype("category"),
            }
        )
        return cls(nodes=nodes, edges=e)

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return len(self.nodes)

    def counts(self) -> dict[str, dict[str, int]]:
        """Node counts per kind and edge counts per relation."""
        return {
            "nodes": {str(k): int(v) for k, v in self.nodes["kind"].value_counts().items()},
            "edges": {str(k): int(v) for k, v in self.edges["relation"].value_counts().items() if v},
        }

    def has(self, node_id: str) -> bool:
        """Whether ``node_id`` is in the graph."""
        return node_id in self._index

    def idx(self, node_ids: str | Iterable[str]) -> np.ndarray:
        """Indices of node ids (-1 for unknown ones)."""
        ids = [node_ids] if isinstance(node_ids, str) else list(node_ids)
        return self._index.get_indexer(ids)

    def ids(self, idx: Iterable[int] | np.ndarray) -> np.ndarray:
        """Node ids of indices."""
        return self.nodes["id"].to_numpy()[np.asarray(list(idx) if not isinstance(idx, np.ndarray) else idx)]

    def find(self, name: str, kind: str) -> str:
        """The id of the ``kind`` node called ``name`` (id, name or symbol; case-insensitive).

        Raises:
            UnknownNameError: with the closest names of that kind.
        """
        if f"{kind}:{name}" in self._index:
            return f"{kind}:{name}"
        sub = self.nodes[self.nodes["kind"] == kind]
        key = name_key(name)
        hit = sub[
            (sub["name"].map(name_key) == key) | (sub["id"].map(name_key) == name_key(f"{kind}:{name}"))
        ]
        if len(hit):
            return str(hit["id"].iloc[0])
        raise unknown_name(f"{kind} in the knowledge graph", name, sub["name"].astype(str))

    def adjacency(self, relations: Sequence[str] | None = None, *, symmetric: bool = True) -> sp.csr_matrix:
        """Sparse n x n adjacency (entry = number of parallel edges) over ``relations``.

        Args:
            relations: relation names (default: all but :data:`LEAKY_RELATIONS`).
            symmetric: add the transpose (treat edges as undirected).

        Raises:
            ValidationError: an unknown relation name.
        """
        rels = (
            tuple(sorted({check_choice("relation", r, RELATIONS) for r in relations}))
            if relations is not None
            else tuple(r for r in RELATIONS if r not in LEAKY_RELATIONS)
        )
        key = (rels, symmetric)
        if key not in self._adj:
            e = self.edges[self.edges["relation"].isin(rels)]
            n = self.n_nodes
            m = sp.csr_matrix(
                (np.ones(len(e), dtype=np.float32), (e["src"].to_numpy(), e["dst"].to_numpy())), shape=(n, n)
            )
            if symmetric:
                m = (m + m.T).tocsr()
            self._adj[key] = m
        return self._adj[key]

    def neighbors(self, node_id: str, relations: Sequence[str] | None = None) -> pd.DataFrame:
        """Direct neighbours of a node: ``id, name, kind, relation, direction`` (out/in).

        Raises:
            UnknownNameError: ``node_id`` is not in the graph.
        """
        i = self.idx(node_id)[0]
        if i < 0:
            kind = node_id.partition(":")[0]
            raise unknown_name("node", node_id, self.nodes.loc[self.nodes["kind"] == kind, "id"].astype(str))
        e = self.edges
        if relations is not None:
            e = e[e["relation"].isin(relations)]
        out = e[e["src"] == i]
        inc = e[e["dst"] == i]
        other = np.concatenate([out["dst"].to_numpy(), inc["src"].to_numpy()])
        res = self.nodes.iloc[other][["id", "name", "kind"]].reset_index(drop=True)
        res["relation"] = np.concatenate([out["relation"].astype(str), inc["relation"].astype(str)])
        res["direction"] = ["out"] * len(out) + ["in"] * len(inc)
        return res

    def subgraph(self, node_ids: Iterable[str], relations: Sequence[str] | None = None) -> nx.MultiGraph:
        """The induced subgraph as a networkx MultiGraph (node attributes name, kind)."""
        idx = self.idx(list(node_ids))
        idx = idx[idx >= 0]
        e = self.edges[self.edges["src"].isin(idx) & self.edges["dst"].isin(idx)]
        if relations is not None:
            e = e[e["relation"].isin(relations)]
        g = nx.MultiGraph()
        for i in idx:
            row = self.nodes.iloc[i]
            g.add_node(row["id"], name=row["name"], kind=row["kind"])
        ids = self.nodes["id"].to_numpy()
        for s, d, r in zip(e["src"], e["dst"], e["relation"].astype(str), strict=True):
            g.add_edge(ids[s], ids[d], relation=r)
        return g


@lru_cache(maxsize=4)
def _load(nodes_path: Path, edges_path: Path, mtime: float) -> KnowledgeGraph:
    del mtime
    tables = []
    for path in (nodes_path, edges_path):
        try:
            tables.append(pd.read_parquet(path))
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise DataError(f"{path} is unreadable ({exc}); {REBUILD}") from exc
    nodes = check_table(tables[0], nodes_path, {"id": "text", "name": "text", "kind": "category"})
    edges = check_table(
        tables[1],
        edges_path,
        {"src": "text", "dst": "text", "relation": "any"},
        values={"relation": frozenset(RELATIONS)},
    )
    try:
        return KnowledgeGraph.from_tables(nodes, edges)
    except ValidationError as exc:
        raise DataError(f"{nodes_path} / {edges_path} do not fit together ({exc}); {REBUILD}") from exc


def load_graph(settings: Settings | None = None) -> KnowledgeGraph:
    """Load the built graph (cached per process; reloaded when the files change).

    Raises:
        NotBuiltError: the graph has not been built yet.
    """
    settings = settings or get_settings()
    nodes = settings.processed_dir / "kg_nodes.parquet"
    edges = settings.processed_dir / "kg_edges.parquet"
    if not (nodes.exists() and edges.exists()):
        raise NotBuiltError(
            f"the knowledge graph is not built ({nodes} missing); run `python -m perturb_core data fetch` "
            "and `python -m perturb_core data build`"
        )
    return _load(nodes, edges, max(nodes.stat().st_mtime, edges.stat().st_mtime))
