"""Build the knowledge graph's node and edge tables from the raw sources.

Node ids are ``kind:key``: ``gene:CDK2`` (HGNC symbol; Entrez ids mapped through Hetionet
and GO), ``drug:<drug id>``, ``compound:DB00514`` (Hetionet/DrugBank), ``pathway:<id>``,
``go:GO:0006260``, ``complex:<CORUM id>``, ``disease:DOID:263``, ``mechanism:<slug>``.

Relations (undirected unless noted): interacts, covaries, regulates (gene -> gene,
directed; built by Hetionet from LINCS perturbation outcomes, so it can leak outcome
information: excluded from CORE evidence by default), in_pathway, annotated_with (gene ->
GO term; ``detail`` holds the GO domain on the term node), in_complex (CORUM, only when
enabled), associates (disease - gene), binds (compound - gene), resembles (compound -
compound), treats / palliates (compound - disease), targets (drug - gene, from drug
metadata), has_mechanism (drug - mechanism), same_as (drug - Hetionet compound).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from perturb_core.data.names import slug
from perturb_core.errors import DataError

__all__ = ["HETIONET_EDGE_FILES", "RELATIONS", "build_graph_tables"]

HETIONET_EDGE_FILES = {
    "Gene_Interacts_Gene.tsv": ("gene", "gene", "interacts"),
    "Gene_Covaries_Gene.tsv": ("gene", "gene", "covaries"),
    "Gene_Regulates_Gene.tsv": ("gene", "gene", "regulates"),
    "Compound_Binds_Gene.tsv": ("compound", "gene", "binds"),
    "Compound_Resembles_Compund.tsv": ("compound", "compound", "resembles"),
    "Compound_Treats_Disease.tsv": ("compound", "disease", "treats"),
    "Compound_Palliates_Disease.tsv": ("compound", "disease", "palliates"),
    "Disease_Associates_Gene.tsv": ("disease", "gene", "associates"),
}

RELATIONS = (
    "interacts",
    "covaries",
    "regulates",
    "in_pathway",
    "annotated_with",
    "in_complex",
    "associates",
    "binds",
    "resembles",
    "treats",
    "palliates",
    "targets",
    "has_mechanism",
    "same_as",
)


def _read_tsv(path: Path, **kw: object) -> pd.DataFrame:
    try:
        return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, **kw)  # type: ignore[arg-type]
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(
            f"cannot read {path}: {exc}; re-fetch it with `python -m perturb_core data fetch`"
        ) from exc


def _explode_ids(df: pd.DataFrame, col: str, sep: str) -> pd.DataFrame:
    out = df.assign(**{col: df[col].str.split(sep)}).explode(col)
    return out[out[col].astype(bool)]


def build_graph_tables(
    kg_dir: Path,
    drugs: pd.DataFrame,
    *,
    extra_genes: Iterable[str] = (),
    enable_corum: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """Build ``(nodes, edges, dropped)`` from the raw ``kg/`` folder and the drug table.

    Returns:
        nodes: ``id, name, kind, detail`` (unique ids); edges: ``src, dst, relation,
        source`` (node ids); dropped: per source, edges dropped because an id could not
        be mapped to a gene symbol.
    """
    het = _read_tsv(kg_dir / "hetionet-v1.0-nodes.tsv")
    het_kind = het["kind"].str.lower()
    het_key = het["id"].str.split("::", n=1).str[1]
    entrez2sym = dict(zip(het_key[het_kind == "gene"], het["name"][het_kind == "gene"], strict=True))
    go = _read_tsv(kg_dir / "GO_annotations-9606-direct-allev.tsv")
    for ids, syms in zip(go["gene_ids"], go["gene_symbols"], strict=True):
        for e, s in zip(ids.split("|"), syms.split("|"), strict=False):
            entrez2sym.setdefault(e, s)

    dropped: dict[str, int] = {}
    node_parts: list[pd.DataFrame] = []
    edge_parts: list[pd.DataFrame] = []

    def gene_ids(entrez: pd.Series, source: str) -> pd.Series:
        sym = entrez.map(entrez2sym)
        dropped[source] = dropped.get(source, 0) + int(sym.isna().sum())
        return "gene:" + sym

    def add_edges(src: pd.Series, dst: pd.Series, relation: str, source: str) -> None:
        e = pd.DataFrame({"src": src.to_numpy(), "dst": dst.to_numpy()}).dropna()
        e = e[e["src"] != e["dst"]].drop_duplicates()
        e["relation"] = relation
        e["source"] = source
        edge_parts.append(e)

    # Hetionet nodes (genes, compounds, diseases)
    for kind, prefix in (("gene", "gene:"), ("compound", "compound:"), ("disease", "disease:")):
        m = het_kind == kind
        ident = prefix + (het["name"][m] if kind == "gene" else het_key[m])
        detail = ("entrez:" + het_key[m]) if kind == "gene" else ""
        node_parts.append(pd.DataFrame({"id": ident, "name": het["name"][m], "kind": kind, "detail": detail}))

    het_prefix = {"gene": None, "compound": "compound:", "disease": "disease:"}
    for fname, (a, b, rel) in HETIONET_EDGE_FILES.items():
        df = _read_tsv(kg_dir / "hetionet_edges" / fname)
        df.columns = ["a", "b"]
        ends = []
        for col, kind in (("a", a), ("b", b)):
            ends.append(
                gene_ids(df[col], f"hetionet:{rel}") if kind == "gene" else het_prefix[kind] + df[col]
            )
        add_edges(ends[0], ends[1], rel, "hetionet")

    # pathways (Reactome, WikiPathways, PID)
    pw = _read_tsv(kg_dir / "pathways.tsv")
    node_parts.append(
        pd.DataFrame(
            {
                "id": "pathway:" + pw["identifier"],
                "name": pw["name"],
                "kind": "pathway",
                "detail": pw["source"],
            }
        )
    )
    pe = _explode_ids(pw[["identifier", "genes"]], "genes", "|")
    add_edges(gene_ids(pe["genes"], "pathways"), "pathway:" + pe["identifier"], "in_pathway", "pathways")

    # GO (all evidence, direct annotations)
    node_parts.append(
        pd.DataFrame(
            {"id": "go:" + go["go_id"], "name": go["go_name"], "kind": "go_term", "detail": go["go_domain"]}
        )
    )
    ge = _explode_ids(go[["go_id", "gene_symbols"]], "gene_symbols", "|")
    add_edges("gene:" + ge["gene_symbols"], "go:" + ge["go_id"], "annotated_with", "gene_ontology")

    if enable_corum:
        path = kg_dir / "corum" / "coreComplexes.txt"
        if not path.exists():
            raise DataError(
                f"CORUM is enabled but {path} is missing; run `python -m perturb_core data fetch` first"
            )
        co = _read_tsv(path)
        co = co[co["Organism"] == "Human"]
        node_parts.append(
            pd.DataFrame(
                {
                    "id": "complex:" + co["ComplexID"],
                    "name": co["ComplexName"],
                    "kind": "complex",
                    "detail": "CORUM",
                }
            )
        )
        ce = _explode_ids(co[["ComplexID", "subunits(Entrez IDs)"]], "subunits(Entrez IDs)", ";")
        add_edges(
            gene_ids(ce["subunits(Entrez IDs)"], "corum"), "complex:" + ce["ComplexID"], "in_complex", "corum"
        )

    # drugs: targets, mechanism, Hetionet identity
    d = drugs.reset_index()
    node_parts.append(
        pd.DataFrame({"id": "drug:" + d["drug_id"], "name": d["name"], "kind": "drug", "detail": d["source"]})
    )
    te = d[["drug_id", "targets", "source"]].explode("targets").dropna(subset=["targets"])
    add_edges("drug:" + te["drug_id"], "gene:" + te["targets"], "targets", "drug_metadata")
    moa = d[~d["moa_fine"].str.lower().isin(["unclear", "", "none"])]
    mech_ids = "mechanism:" + moa["moa_fine"].map(slug)
    node_parts.append(
        pd.DataFrame(
            {"id": mech_ids, "name": moa["moa_fine"], "kind": "mechanism", "detail": moa["moa_broad"]}
        )
    )
    add_edges("drug:" + moa["drug_id"], mech_ids, "has_mechanism", "drug_metadata")
    hz = d.dropna(subset=["hetionet_id"])
    add_edges("drug:" + hz["drug_id"], "compound:" + hz["hetionet_id"], "same_as", "name_match")

    nodes = pd.concat(node_parts, ignore_index=True).drop_duplicates("id")
    edges = pd.concat(edge_parts, ignore_index=True)
    # genes seen only in edges (targets, GO symbols) or in label data become nodes too
    known = set(nodes["id"])
    ends = pd.unique(
        np.concatenate([edges["src"].to_numpy(), edges["dst"].to_numpy(), ["gene:" + g for g in extra_genes]])
    )
    new_genes = [g for g in ends if g.startswith("gene:") and g not in known]
    nodes = pd.concat(
        [
            nodes,
            pd.DataFrame({"id": new_genes, "name": [g[5:] for g in new_genes], "kind": "gene", "detail": ""}),
        ],
        ignore_index=True,
    )
    known = set(nodes["id"])
    ok = edges["src"].isin(known) & edges["dst"].isin(known)
    dropped["unknown_node"] = int((~ok).sum())
    edges = edges[ok].reset_index(drop=True)
    return nodes.reset_index(drop=True), edges, dropped
