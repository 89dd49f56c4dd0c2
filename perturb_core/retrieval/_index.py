"""The dataset-level LGR index: axes, fingerprints, mechanism annotation, graph evidence (built once per dataset)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from numpy.typing import NDArray

from perturb_core.chem import tanimoto_matrix
from perturb_core.config import Settings, get_settings
from perturb_core.errors import UnknownNameError, ValidationError
from perturb_core.memo import Memo
from perturb_core.retrieval.mechanism import annotate_drugs, is_adme_gene

if TYPE_CHECKING:
    from perturb_core.data.registry import DrugTable, SignatureDataset
    from perturb_core.kg import KnowledgeGraph

_PATHWAY_MAX_GENES = 200  # pathways larger than this are too broad to count as proximity
_MAX_CACHED_SPLITS = 8  # split data, tensors and baseline inputs kept per index
_MAX_CACHED_REFERENCES = 4  # pca_ridge reference cross-products kept per index


@contextmanager
def blas_threads(n: int = 1) -> Iterator[None]:
    """Limit BLAS/LAPACK threads inside the block (restored after).

    The matrices here are small (thousands x 2,000); measured on the 2-core development
    machine, threaded OpenBLAS made PCA, SVD and batched products 5-20x slower than one
    thread, so evaluation and explanation run single-threaded BLAS by default.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=n, user_api="blas"):
        yield


def as_dataset(ds: SignatureDataset | str, settings: Settings | None) -> SignatureDataset:
    """A SignatureDataset from a dataset or its name."""
    if isinstance(ds, str):
        from perturb_core.data.registry import load_signatures

        return load_signatures(ds, settings)
    if not all(hasattr(ds, a) for a in ("adata", "resolve_drug", "memo")):
        raise ValidationError(f"ds must be a SignatureDataset or a dataset name; got {type(ds).__name__}")
    return ds


def dataset_axes(ds: SignatureDataset) -> tuple[tuple[str, ...], tuple[str, ...], NDArray[np.intp]]:
    """Cell lines and drugs (sorted case-insensitively) and the (C, D) row matrix (-1 = absent).

    Kept in ``ds.memo`` (computed once per dataset object).
    """
    return ds.memo.get(("lgr_axes",), lambda: _build_axes(ds))


def _build_axes(ds: SignatureDataset) -> tuple[tuple[str, ...], tuple[str, ...], NDArray[np.intp]]:
    obs = ds.adata.obs
    cells = tuple(ds.cell_lines)
    drugs = tuple(ds.drugs())
    ci = pd.Index(cells).get_indexer(obs["cell_line"].astype(str))
    di = pd.Index(drugs).get_indexer(obs["drug"].astype(str))
    rows = np.full((len(cells), len(drugs)), -1, dtype=np.intp)
    rows[ci, di] = np.arange(len(obs))
    rows.flags.writeable = False
    return cells, drugs, rows


@dataclass(frozen=True, eq=False)
class KGEvidence:
    """Pairwise mechanism evidence between the drugs of a dataset (rule-based, from the graph).

    All matrices are (D, D) over the dataset's drugs. ``score`` is the ``kg_mechanism`` score
    including the chemistry tie-breaker (1e-4 × Tanimoto).
    """

    score: NDArray[np.float64]
    overlap: NDArray[np.float64]
    same_mechanism: NDArray[np.bool_]
    tag_jaccard: NDArray[np.float64]
    program_jaccard: NDArray[np.float64]
    proximity: NDArray[np.float64]
    opposite: NDArray[np.bool_]
    available: NDArray[np.bool_]
    target_genes: tuple[str, ...]
    targets: NDArray[np.bool_]  # (D, Gt)
    gene_proximity: NDArray[np.float64]  # (Gt, Gt)
    gene_ppi: NDArray[np.bool_]  # (Gt, Gt)
    gene_pathways: sp.csr_matrix  # (Gt, P) bool incidence of pathways with <= 200 genes
    pathway_names: tuple[str, ...]
    pathway_sizes: NDArray[np.int64]
    mechanism_nodes: tuple[str | None, ...]


@dataclass(frozen=True, eq=False)
class LGRIndex:
    """Dataset-level precomputation shared by every split and selector.

    Attributes:
        dataset: dataset name.
        cell_lines: cell lines (axis 0), sorted case-insensitively.
        drugs: drugs (axis 1), sorted case-insensitively.
        drug_ids: id of each drug in the drug table (``""`` when unknown there).
        rows: (C, D) row of each pair in ``adata`` (-1 = not profiled).
        x: the dataset's delta matrix (read-only; NaN = gene not measured).
        genes: gene symbols (columns of ``x``).
        fingerprints: (D, 2048) Morgan fingerprints; ``fp_valid`` marks drugs with a structure.
        tanimoto: (D, D) Tanimoto similarity (0 where a structure is missing).
        mechanism: per drug (rows aligned with ``drugs``): name, targets, mechanism_targets,
            moa, direction, tags, programs, evidence (see :mod:`perturb_core.retrieval.mechanism`).
        gene_count, gene_sum, gene_sumsq: per-gene statistics over all rows (for fast
            top-variable-gene selection of any training subset).
        settings: settings used to load the drug table and the graph.
        graph: the knowledge graph of :attr:`kg` (``None``: loaded from ``settings`` on first use).
        units: what a delta is measured in (the dataset's ``uns["units"]``).

    The index also keeps what splits derive from it (bounded, most recent kept): split data
    and delta tensors by training pairs, baseline inputs, and ``pca_ridge`` reference
    cross-products (see :func:`~perturb_core.retrieval.split_data`).
    """

    dataset: str
    cell_lines: tuple[str, ...]
    drugs: tuple[str, ...]
    drug_ids: tuple[str, ...]
    rows: NDArray[np.intp]
    x: NDArray[np.float32] = field(repr=False)
    genes: pd.Index = field(repr=False)
    fingerprints: NDArray[np.bool_] = field(repr=False)
    fp_valid: NDArray[np.bool_] = field(repr=False)
    tanimoto: NDArray[np.float32] = field(repr=False)
    mechanism: pd.DataFrame = field(repr=False)
    gene_count: NDArray[np.float64] = field(repr=False)
    gene_sum: NDArray[np.float64] = field(repr=False)
    gene_sumsq: NDArray[np.float64] = field(repr=False)
    settings: Settings | None = field(default=None, repr=False)
    graph: KnowledgeGraph | None = field(default=None, repr=False)
    units: str = "inverse-normal rank score"
    split_memo: Memo = field(
        init=False, default_factory=lambda: Memo(_MAX_CACHED_SPLITS), repr=False, compare=False
    )
    """Split id and gene count -> :class:`~perturb_core.retrieval.SplitData`."""
    tensor_memo: Memo = field(
        init=False, default_factory=lambda: Memo(_MAX_CACHED_SPLITS), repr=False, compare=False
    )
    """Training pairs and gene count -> (evaluation genes, delta tensor), shared by equal splits."""
    baseline_memo: Memo = field(
        init=False, default_factory=lambda: Memo(_MAX_CACHED_SPLITS), repr=False, compare=False
    )
    """Delta tensor and leave-one-out -> :class:`~perturb_core.retrieval.BaselineData`."""
    reference_memo: Memo = field(
        init=False, default_factory=lambda: Memo(_MAX_CACHED_REFERENCES), repr=False, compare=False
    )
    """Gene count -> :class:`~perturb_core.retrieval.RidgeReference` over every profiled pair."""

    @property
    def present(self) -> NDArray[np.bool_]:
        """(C, D) True where the pair was profiled."""
        return self.rows >= 0

    @cached_property
    def kg(self) -> KGEvidence:
        """Mechanism evidence from the knowledge graph (the graph is loaded on first use if not given)."""
        graph = self.graph
        if graph is None:
            from perturb_core.kg import load_graph

            graph = load_graph(self.settings)
        return _kg_evidence(self, graph)

    def cell_index(self, name: str) -> int:
        """Axis position of a cell line (display name)."""
        return self.cell_lines.index(name)

    def drug_index(self, name: str) -> int:
        """Axis position of a drug (display name)."""
        return self.drugs.index(name)


def lgr_index(
    ds: SignatureDataset | str,
    *,
    drugs: DrugTable | None = None,
    graph: KnowledgeGraph | None = None,
    settings: Settings | None = None,
) -> LGRIndex:
    """The dataset-level precomputation, kept in ``ds.memo``.

    One index per dataset object, data folder, drug table and graph: a second call with the
    same arguments returns the same object (and with it every split cached on it).

    Args:
        ds: a :class:`~perturb_core.data.registry.SignatureDataset` or a dataset name.
        drugs: the drug table (default: :func:`~perturb_core.data.registry.load_drugs` from ``settings``).
        graph: the knowledge graph of ``kg_mechanism`` (default: loaded from ``settings`` on
            first use of :attr:`LGRIndex.kg`).
        settings: where the data lives (default :func:`get_settings`).

    Returns:
        The :class:`LGRIndex`.

    Raises:
        NotBuiltError: the dataset or drug table is not built.
    """
    settings = settings or get_settings()
    ds = as_dataset(ds, settings)
    key = (
        "lgr_index",
        str(settings.processed_dir),
        None if drugs is None else id(drugs),
        None if graph is None else id(graph),
    )
    # the memo holds drugs and graph with the index, so their ids stay theirs while it is cached
    held, held_graph, index = ds.memo.get(
        key, lambda: (drugs, graph, _build_index(ds, drugs, graph, settings))
    )
    if held is not drugs or held_graph is not graph:  # pragma: no cover - ids of live objects are unique
        raise RuntimeError("lgr_index cache key collision")
    return index


def _build_index(
    ds: SignatureDataset, drugs: DrugTable | None, graph: KnowledgeGraph | None, settings: Settings
) -> LGRIndex:
    if drugs is None:
        from perturb_core.data.registry import load_drugs

        drugs = load_drugs(settings)
    cells, names, rows = dataset_axes(ds)
    obs = ds.adata.obs
    first_row = np.where(rows >= 0, rows, np.iinfo(np.intp).max).min(0)
    obs_ids = obs["drug_id"].astype(str).to_numpy()[first_row] if "drug_id" in obs else np.array(names)
    table = drugs
    pos = table.rows(list(obs_ids))
    for i in np.flatnonzero(pos < 0):  # imported datasets: try the name against the drug table
        try:
            pos[i] = table.table.index.get_loc(table.resolve(names[i]))
        except UnknownNameError:
            pos[i] = -1
    known = pos >= 0
    fps = np.zeros((len(names), table.fingerprints.shape[1]), dtype=bool)
    fps[known] = table.fingerprints[pos[known]]
    valid = np.zeros(len(names), dtype=bool)
    valid[known] = table.valid[pos[known]]
    fps[~valid] = False
    annotated = annotate_drugs(table.table.iloc[pos[known]])
    mech = pd.DataFrame(
        {
            "name": list(names),
            "targets": [()] * len(names),
            "mechanism_targets": [()] * len(names),
            "moa": [None] * len(names),
            "direction": ["unclear"] * len(names),
            "tags": [()] * len(names),
            "programs": [()] * len(names),
            "evidence": [{} for _ in names],
        }
    )
    if known.any():  # a user dataset may name no drug the drug table knows
        for col in ("targets", "mechanism_targets", "moa", "direction", "tags", "programs", "evidence"):
            mech.loc[known, col] = pd.Series(list(annotated[col]), index=np.flatnonzero(known), dtype=object)
    x = np.asarray(ds.adata.X, dtype=np.float32)
    observed = ~np.isnan(x)
    x0 = np.where(observed, x, np.float32(0.0)).astype(np.float64)
    return LGRIndex(
        dataset=ds.name,
        units=ds.units,
        cell_lines=cells,
        drugs=names,
        drug_ids=tuple(str(table.table.index[p]) if p >= 0 else "" for p in pos),
        rows=rows,
        x=x,
        genes=ds.adata.var_names,
        fingerprints=fps,
        tanimoto=tanimoto_matrix(fps),
        fp_valid=valid,
        mechanism=mech,
        gene_count=observed.sum(0).astype(np.float64),
        gene_sum=x0.sum(0),
        gene_sumsq=(x0 * x0).sum(0),
        settings=settings,
        graph=graph,
    )


def _incidence(items: Sequence[Sequence[str]]) -> tuple[NDArray[np.float64], list[str]]:
    vocab = sorted({t for ts in items for t in ts})
    pos = {t: i for i, t in enumerate(vocab)}
    m = np.zeros((len(items), len(vocab)))
    for i, ts in enumerate(items):
        m[i, [pos[t] for t in ts]] = 1.0
    return m, vocab


def _jaccard(m: NDArray[np.float64]) -> NDArray[np.float64]:
    inter = m @ m.T
    size = m.sum(1)
    union = size[:, None] + size[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def _kg_evidence(index: LGRIndex, graph: Any) -> KGEvidence:
    """Build the pairwise mechanism evidence of ``kg_mechanism`` from the graph and the drug table."""
    n_d = len(index.drugs)
    nodes = graph.nodes
    edges = graph.edges
    drug_nodes = graph.idx([f"drug:{i}" if i else "" for i in index.drug_ids])
    node_pos = pd.Series(np.arange(n_d), index=drug_nodes)
    node_pos = node_pos[node_pos.index >= 0]
    ids = nodes["id"].to_numpy()

    def linked(relation: str) -> pd.DataFrame:
        e = edges[(edges["relation"] == relation) & edges["src"].isin(node_pos.index)]
        return pd.DataFrame({"drug": node_pos.loc[e["src"]].to_numpy(), "other": ids[e["dst"].to_numpy()]})

    targets: list[list[str]] = [list(t) for t in index.mechanism["mechanism_targets"]]
    for d, other in linked("targets").itertuples(index=False):
        gene = str(other).removeprefix("gene:")
        if not is_adme_gene(gene) and gene not in targets[d]:
            targets[d].append(gene)
    mech_nodes: list[str | None] = [None] * n_d
    for d, other in linked("has_mechanism").itertuples(index=False):
        mech_nodes[d] = str(other)
    t_mat, genes = _incidence(targets)
    gnodes = graph.idx([f"gene:{g}" for g in genes])
    in_graph = gnodes >= 0
    n_g = len(genes)
    ppi = np.zeros((n_g, n_g), dtype=bool)
    path = sp.csr_matrix((n_g, 0), dtype=np.float64)
    path_names: tuple[str, ...] = ()
    path_sizes = np.zeros(0, dtype=np.int64)
    if in_graph.any():
        sub = gnodes[in_graph]
        a = graph.adjacency(["interacts"])[sub][:, sub]
        ppi[np.ix_(in_graph, in_graph)] = a.toarray() > 0
        pw_nodes = np.flatnonzero(nodes["kind"].to_numpy() == "pathway")
        inc = graph.adjacency(["in_pathway"])[:, pw_nodes]
        gene_nodes = np.flatnonzero(nodes["kind"].to_numpy() == "gene")
        sizes = np.asarray((inc[gene_nodes] > 0).sum(0)).ravel()
        specific = (sizes >= 2) & (sizes <= _PATHWAY_MAX_GENES)
        b = sp.lil_matrix((n_g, int(specific.sum())))
        b[np.flatnonzero(in_graph)] = (inc[sub][:, specific] > 0).astype(np.float64)
        path = b.tocsr()
        path_names = tuple(nodes["name"].to_numpy()[pw_nodes[specific]].astype(str))
        path_sizes = sizes[specific].astype(np.int64)
    shared_path = (path @ path.T).toarray() > 0 if path.shape[1] else np.zeros((n_g, n_g), dtype=bool)
    gene_prox = np.maximum(np.eye(n_g), np.maximum(0.75 * ppi, 0.5 * shared_path))
    n_t = t_mat.sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        overlap = np.where(np.outer(n_t, n_t) > 0, (t_mat @ t_mat.T) / np.sqrt(np.outer(n_t, n_t)), 0.0)
        # best-match average of target proximity
        best = np.zeros((n_g, n_d))
        for d in np.flatnonzero(n_t > 0):
            best[:, d] = gene_prox[:, t_mat[d] > 0].max(1)
        one_way = np.where(n_t[:, None] > 0, (t_mat @ best) / np.where(n_t > 0, n_t, 1.0)[:, None], 0.0)
    proximity = 0.5 * (one_way + one_way.T)
    tag_m, _ = _incidence(list(index.mechanism["tags"]))
    prog_m, _ = _incidence(list(index.mechanism["programs"]))
    tag_j = _jaccard(tag_m)
    prog_j = _jaccard(prog_m)
    mech_codes = pd.factorize(pd.Series(mech_nodes, dtype=object))[0]
    same_mech = (mech_codes[:, None] == mech_codes[None, :]) & (mech_codes[:, None] >= 0)
    direction = (
        index.mechanism["direction"]
        .map({"inhibitor/antagonist": 1, "activator/agonist": -1})
        .fillna(0)
        .to_numpy(dtype=np.int64)
    )
    opposite = np.outer(direction, direction) < 0
    factor = np.where(opposite, -0.5, 1.0)
    primary = 3.0 * overlap * factor + 2.0 * same_mech + 2.0 * tag_j + 1.0 * prog_j + 1.0 * proximity * factor
    score = np.round(primary, 6) + 1e-4 * index.tanimoto.astype(np.float64)
    available = (n_t > 0) | (tag_m.sum(1) > 0) | (mech_codes >= 0)
    return KGEvidence(
        score=score,
        overlap=overlap,
        same_mechanism=same_mech,
        tag_jaccard=tag_j,
        program_jaccard=prog_j,
        proximity=proximity,
        opposite=opposite,
        available=available,
        target_genes=tuple(genes),
        targets=t_mat > 0,
        gene_proximity=gene_prox,
        gene_ppi=ppi,
        gene_pathways=path,
        pathway_names=path_names,
        pathway_sizes=path_sizes,
        mechanism_nodes=tuple(mech_nodes),
    )
