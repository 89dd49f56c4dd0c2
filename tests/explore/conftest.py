"""Tiny fixtures for the explore tests: a graph with two pathways and a GO term, a 3 x 8 signature dataset."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from perturb_core.data.registry import SignatureDataset
from perturb_core.kg import KnowledgeGraph

GENES = [f"G{i}" for i in range(1, 11)]  # G1..G10, protein-coding (Entrez ids)


@pytest.fixture
def tiny_kg() -> KnowledgeGraph:
    """Genes G1..G10 (+ LINC01 without an Entrez id); P1 = {G1..G4} (reactome), P2 = {G5..G9}
    (wikipathways), GO1 = {G1, G2, G5} (biological process)."""
    nodes = pd.DataFrame(
        {
            "id": [f"gene:{g}" for g in GENES] + ["gene:LINC01", "pathway:P1", "pathway:P2", "go:GO:1"],
            "name": [*GENES, "LINC01", "Pathway one", "Pathway two", "go one"],
            "kind": ["gene"] * 11 + ["pathway", "pathway", "go_term"],
            "detail": [f"entrez:{i}" for i in range(1, 11)]
            + ["", "reactome", "wikipathways", "biological_process"],
        }
    )
    members = [("P1", g) for g in GENES[:4]] + [("P2", g) for g in GENES[4:9]]
    rows = [(f"gene:{g}", f"pathway:{p}", "in_pathway") for p, g in members]
    rows += [(f"gene:{g}", "go:GO:1", "annotated_with") for g in ("G1", "G2", "G5")]
    rows += [("gene:G1", "gene:G2", "interacts")]
    edges = pd.DataFrame(rows, columns=["src", "dst", "relation"])
    return KnowledgeGraph.from_tables(nodes, edges)


@pytest.fixture
def tiny_signatures() -> SignatureDataset:
    """Three signatures over genes A..F plus H (NaN in row 2); rank layer from the values."""
    genes = ["A", "B", "C", "D", "E", "F", "H"]
    x = np.array(
        [
            [3.0, 2.0, 1.0, -1.0, -2.0, -3.0, 0.5],
            [-3.0, -2.0, -1.0, 1.0, 2.0, 3.0, -0.5],
            [1.0, 3.0, 2.0, -2.0, -1.0, -3.0, np.nan],
        ],
        dtype=np.float32,
    )
    rank = np.zeros(x.shape, dtype=np.uint16)
    for i, row in enumerate(x):
        ok = np.isfinite(row)
        order = np.argsort(-np.where(ok, row, -np.inf), kind="stable")
        rank[i, order[: ok.sum()]] = np.arange(1, ok.sum() + 1)
    obs = pd.DataFrame(
        {
            "cell_line": ["L1", "L1", "L2"],
            "cell_line_id": ["l1", "l1", "l2"],
            "drug": ["Mimic", "Reverse", "Mimic"],
            "drug_id": ["mimic", "reverse", "mimic"],
            "n_genes_tested": np.isfinite(x).sum(axis=1),
        },
        index=["l1|mimic", "l1|reverse", "l2|mimic"],
    )
    var = pd.DataFrame({"gene_id": [f"ENSG0000000000{i}" for i in range(7)]}, index=genes)
    a = ad.AnnData(X=x, obs=obs, var=var, layers={"rank": rank})
    return SignatureDataset("tiny", a)
