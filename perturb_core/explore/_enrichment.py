"""Gene-set enrichment: hypergeometric test of gene lists against the graph's pathways and GO terms.

Gene sets come from the knowledge graph already built (no new download): Reactome,
WikiPathways and PID pathways (``in_pathway`` edges; the pathway node's ``detail`` names the
source) and GO terms (``annotated_with`` edges from the DIRECT human GO annotations, not
propagated to parent terms; the term node's ``detail`` is its domain).

For a list of ``n`` genes drawn from a universe of ``N`` genes and a set with ``K`` genes in
the universe, ``k`` of which are in the list, the one-sided p-value is
``P(X >= k) = hypergeom.sf(k - 1, N, K, n)`` (over-representation). Sets are first
intersected with the universe and kept when ``min_size <= K <= max_size``; the
Benjamini-Hochberg q-values (``scipy.stats.false_discovery_control``) are over every kept set,
including those with no overlap (p = 1), so they are conservative.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.stats import false_discovery_control, hypergeom

from perturb_core.errors import ValidationError, check_choice, check_int_range
from perturb_core.kg import KnowledgeGraph

__all__ = [
    "DEFAULT_MAX_SIZE",
    "DEFAULT_MIN_SIZE",
    "ENRICHMENT_COLUMNS",
    "GENE_SET_SOURCES",
    "NONCODING_RULE",
    "SOURCE_LABELS",
    "GeneSetSource",
    "GeneSets",
    "check_sources",
    "enrich",
    "gene_sets",
    "protein_coding_genes",
    "significant",
    "to_records",
    "uninformative_genes",
]

GeneSetSource = Literal["reactome", "wikipathways", "pid", "go_bp", "go_mf", "go_cc"]
GENE_SET_SOURCES: tuple[GeneSetSource, ...] = get_args(GeneSetSource)
"""Gene-set collections in the graph: three pathway databases and the three GO domains."""
_GO_DOMAINS = {
    "biological_process": "go_bp",
    "molecular_function": "go_mf",
    "cellular_component": "go_cc",
}
DEFAULT_MIN_SIZE = 5
"""Smallest gene set tested (genes in the universe)."""
DEFAULT_MAX_SIZE = 500
"""Largest gene set tested (genes in the universe): very broad terms say little."""
ENRICHMENT_COLUMNS = ("term_id", "term", "source", "k", "n", "K", "N", "p", "q", "overlap")
"""One row per tested set: id, name, source, overlap k, list size n, set size K, universe N, p, q,
overlap genes (sorted, ``", "``-joined)."""

_RIBOSOMAL = re.compile(r"^RP[LS]\d+(A|AL|L|X|Y)?\d*$|^RPLP\d$|^RPSA$")
_MITOCHONDRIAL = re.compile(r"^MT-")
_ENSEMBL = re.compile(r"^ENS[A-Z]*G\d+(\.\d+)?$")
NONCODING_RULE = (
    "non-coding = not one of the graph's protein-coding genes (Hetionet's gene nodes, which are the "
    "Entrez protein-coding human genes, i.e. graph gene nodes with an Entrez id); a coding gene renamed "
    "after 2017 is hidden too"
)
"""How a gene is called non-coding with the data available (no biotype column is shipped)."""


@dataclass(frozen=True)
class GeneSets:
    """Gene sets as a sparse membership matrix.

    Attributes:
        genes: gene symbols (rows of ``membership``).
        terms: ``term_id``, ``term`` (name), ``source`` (a :data:`GENE_SET_SOURCES` member);
            row j is column j of ``membership``.
        membership: boolean CSC matrix, genes x terms.
    """

    genes: pd.Index
    terms: pd.DataFrame
    membership: sp.csc_matrix = field(repr=False)

    @property
    def n_sets(self) -> int:
        """Number of gene sets."""
        return len(self.terms)

    def of_gene(self, gene: str) -> pd.DataFrame:
        """The sets holding ``gene`` (``term_id, term, source, size``); empty for an unknown gene."""
        i = self.genes.get_indexer([gene])[0]
        if i < 0:
            return pd.DataFrame(columns=["term_id", "term", "source", "size"])
        cols = self.membership.tocsr()[i].indices
        sizes = np.asarray(self.membership.sum(axis=0)).ravel()[cols]
        out = self.terms.iloc[cols].assign(size=sizes.astype(int)).reset_index(drop=True)
        return out.sort_values(["source", "size", "term"]).reset_index(drop=True)


def gene_sets(graph: KnowledgeGraph, sources: Iterable[str] | None = None) -> GeneSets:
    """The graph's gene sets of the chosen sources (default: all of :data:`GENE_SET_SOURCES`).

    Raises:
        UnknownNameError: an unknown source (valid ones listed).
    """
    wanted = set(check_sources(sources))
    nodes, edges = graph.nodes, graph.edges
    kind = nodes["kind"].to_numpy()
    detail = nodes["detail"].astype(str).to_numpy()
    source = np.full(len(nodes), "", dtype=object)
    pw = kind == "pathway"
    source[pw] = detail[pw]
    go = kind == "go_term"
    source[go] = [_GO_DOMAINS.get(d, "") for d in detail[go]]
    e = edges[edges["relation"].isin(("in_pathway", "annotated_with"))]
    src, dst = e["src"].to_numpy(), e["dst"].to_numpy()
    # edges are gene -> set; accept either orientation
    gene_first = kind[src] == "gene"
    g = np.where(gene_first, src, dst)
    t = np.where(gene_first, dst, src)
    keep = (kind[g] == "gene") & np.isin(source[t], list(wanted))
    g, t = g[keep], t[keep]
    g_idx, g_codes = np.unique(g, return_inverse=True)
    t_idx, t_codes = np.unique(t, return_inverse=True)
    m = sp.csc_matrix(
        (np.ones(len(g), dtype=bool), (g_codes, t_codes)), shape=(len(g_idx), len(t_idx)), dtype=bool
    )
    terms = pd.DataFrame(
        {
            "term_id": nodes["id"].to_numpy()[t_idx],
            "term": nodes["name"].astype(str).to_numpy()[t_idx],
            "source": source[t_idx].astype(str),
        }
    )
    return GeneSets(pd.Index(nodes["name"].astype(str).to_numpy()[g_idx]), terms, m)


def protein_coding_genes(graph: KnowledgeGraph) -> set[str]:
    """Symbols of the graph's gene nodes with an Entrez id (Hetionet's protein-coding genes)."""
    n = graph.nodes
    sel = (n["kind"] == "gene") & n["detail"].astype(str).str.startswith("entrez:")
    return set(n.loc[sel, "name"].astype(str))


def uninformative_genes(genes: Sequence[str], coding: set[str] | None = None) -> NDArray[np.bool_]:
    """Which genes the "hide uninformative genes" toggle hides.

    Ribosomal proteins (``RPL*``/``RPS*`` numbered symbols, ``RPLP0-2``, ``RPSA``; not e.g. the
    kinase ``RPS6KA1``), mitochondrially encoded genes (``MT-``), bare Ensembl ids (genes
    without a symbol) and, when ``coding`` is given, non-coding genes (see :data:`NONCODING_RULE`).

    Returns:
        Boolean mask aligned with ``genes`` (True = hidden).
    """
    names = [str(x) for x in genes]
    mask = np.array(
        [bool(_RIBOSOMAL.match(x) or _MITOCHONDRIAL.match(x) or _ENSEMBL.match(x)) for x in names], dtype=bool
    )
    if coding is not None:
        mask |= ~np.isin(np.asarray(names, dtype=object), list(coding))
    return mask


def enrich(
    genes: Iterable[str],
    universe: Iterable[str],
    sets: GeneSets,
    *,
    min_size: int = DEFAULT_MIN_SIZE,
    max_size: int = DEFAULT_MAX_SIZE,
) -> pd.DataFrame:
    """Over-representation of ``genes`` in every gene set (hypergeometric test, BH q-values).

    Args:
        genes: the list (e.g. the top 50 up-regulated genes); genes outside ``universe`` are ignored.
        universe: every gene the list could have been drawn from (here: the measured genes ranked).
        sets: from :func:`gene_sets`.
        min_size: smallest set size K (after intersecting with the universe) to test.
        max_size: largest set size K to test.

    Returns:
        One row per tested set with :data:`ENRICHMENT_COLUMNS`, sorted by p then term.

    Raises:
        ValidationError: empty list or universe, or sizes out of range.
    """
    min_size = check_int_range("min_size", min_size, 1, 100_000, hint="smallest gene set, e.g. 5")
    max_size = check_int_range("max_size", max_size, min_size, 100_000, hint="largest gene set, >= min_size")
    uni = pd.Index(pd.unique(np.asarray([str(g) for g in universe], dtype=object)))
    if not len(uni):
        raise ValidationError("the universe of measured genes is empty; nothing to test against")
    chosen = uni.intersection(pd.Index([str(g) for g in genes]))
    if not len(chosen):
        raise ValidationError(
            "none of the listed genes is in the universe of measured genes; nothing to test"
        )
    rows = sets.genes.get_indexer(uni)
    in_uni = rows >= 0
    sub = sets.membership.tocsr()[rows[in_uni]]  # universe genes with any set x sets
    sub_genes = uni[in_uni]
    big_k = np.asarray(sub.sum(axis=0)).ravel()
    listed = sub_genes.isin(chosen)
    k = np.asarray(sub[listed].sum(axis=0)).ravel()
    keep = (big_k >= min_size) & (big_k <= max_size)
    big_n, n = len(uni), len(chosen)
    cols = np.flatnonzero(keep)
    k, big_k = k[cols], big_k[cols]
    p = hypergeom.sf(k - 1, big_n, big_k, n) if len(cols) else np.zeros(0)
    p = np.clip(p, 0.0, 1.0)
    q = false_discovery_control(p, method="bh") if len(p) else np.zeros(0)
    overlap_m = sub[listed][:, cols].tocsc()
    names = np.asarray(sub_genes[listed], dtype=object)
    overlap = [
        ", ".join(sorted(names[overlap_m.indices[overlap_m.indptr[j] : overlap_m.indptr[j + 1]]]))
        for j in range(len(cols))
    ]
    out = sets.terms.iloc[cols].reset_index(drop=True)
    out = out.assign(k=k.astype(int), n=n, K=big_k.astype(int), N=big_n, p=p, q=q, overlap=overlap)
    return out.sort_values(["p", "term"], kind="stable").reset_index(drop=True)[list(ENRICHMENT_COLUMNS)]


def significant(table: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Rows of an :func:`enrich` table with ``q < alpha`` and at least one overlapping gene."""
    return table[(table["q"] < alpha) & (table["k"] > 0)]


def to_records(table: pd.DataFrame, limit: int | None = None) -> list[dict[str, Any]]:
    """JSON records of an enrichment table (first ``limit`` rows)."""
    t = table if limit is None else table.head(limit)
    return t.to_dict(orient="records")


def check_sources(sources: Iterable[str] | None) -> tuple[str, ...]:
    """Canonical source names (default: all)."""
    if sources is None:
        return GENE_SET_SOURCES
    out = tuple(dict.fromkeys(check_choice("gene-set source", s, GENE_SET_SOURCES) for s in sources))
    if not out:
        raise ValidationError(f"choose at least one gene-set source of {', '.join(GENE_SET_SOURCES)}")
    return out


SOURCE_LABELS: Mapping[str, str] = {
    "reactome": "Reactome",
    "wikipathways": "WikiPathways",
    "pid": "PID (NCI)",
    "go_bp": "GO biological process",
    "go_mf": "GO molecular function",
    "go_cc": "GO cellular component",
}
"""Display names of the gene-set sources."""
