"""Tiny LGR fixtures built in code: signature datasets, a drug table with structures, a knowledge graph.

Together they run every LGR step (index, splits, selectors including ``kg_mechanism``,
aggregation, baselines, explanation) without the real data::

    ds = tiny_dataset()
    index = lgr_index(ds, drugs=tiny_drugs(), graph=tiny_graph())

- :func:`tiny_dataset`: 3 cell lines x 5 drugs x 6 genes; (C3, Tucidinostat) not profiled;
  ``Mysterium`` is unknown to the drug table (no structure, no mechanism).
- :func:`tiny_eval_dataset`: every pair of the same grid, other values (seeded), for evaluation tests.
- :func:`tiny_drugs`: Afatinib (EGFR/ERBB), Binimetinib and Trametinib (MEK; Trametinib also
  lists the ADME gene CYP3A4), Tucidinostat (HDAC; its table id ``chidamide`` differs from the
  dataset's, so it is found by name), and Aspirin (not in the datasets).
- :func:`tiny_graph`: the drugs' ``targets`` and ``has_mechanism`` edges (both MEK inhibitors
  share one mechanism node), EGFR-ERBB2 ``interacts``, and a pathway holding EGFR, ERBB2,
  MAP2K1, MAP2K2 and BRAF (so EGFR and MEK inhibitors are graph-proximal).

The structures are public SMILES of those drugs; the values of the datasets are random.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd

from perturb_core.chem import morgan_fingerprints
from perturb_core.data.names import slug
from perturb_core.data.registry import DrugTable, SignatureDataset
from perturb_core.kg import KnowledgeGraph

__all__ = [
    "TINY_CELL_LINES",
    "TINY_DRUGS",
    "tiny_dataset",
    "tiny_drugs",
    "tiny_eval_dataset",
    "tiny_graph",
]

TINY_CELL_LINES = ("C1", "C2", "C3")
TINY_DRUGS = ("Afatinib", "Binimetinib", "Trametinib", "Tucidinostat", "Mysterium")
_N_GENES = 6


def _signature_dataset(
    name: str, pairs: list[tuple[str, str]], x: np.ndarray, genes: list[str]
) -> SignatureDataset:
    obs = pd.DataFrame(
        {
            "cell_line": [c for c, _ in pairs],
            "cell_line_id": [slug(c) for c, _ in pairs],
            "drug": [d for _, d in pairs],
            "drug_id": [slug(d) for _, d in pairs],
        },
        index=[f"{slug(c)}|{slug(d)}" for c, d in pairs],
    )
    return SignatureDataset(name, ad.AnnData(X=x, obs=obs, var=pd.DataFrame(index=genes)))


def tiny_dataset() -> SignatureDataset:
    """3 cell lines x 5 drugs x 6 genes (G1..G6); (C3, Tucidinostat) not profiled; one NaN.

    Each line has a shared base response plus noise per drug (seed 7); ``X[0, 5]`` (C1,
    Afatinib, G6) is NaN. A new object on every call (its memo starts empty).
    """
    rng = np.random.default_rng(7)
    pairs, rows = [], []
    for c in TINY_CELL_LINES:
        base = rng.normal(size=_N_GENES)
        for d in TINY_DRUGS:
            if (c, d) != ("C3", "Tucidinostat"):
                pairs.append((c, d))
                rows.append(base + rng.normal(size=_N_GENES))
    x = np.asarray(rows, dtype=np.float32)
    x[0, 5] = np.nan
    return _signature_dataset("tiny", pairs, x, [f"G{i}" for i in range(1, _N_GENES + 1)])


def tiny_eval_dataset() -> SignatureDataset:
    """Every pair of the 3 x 5 grid on 6 genes (G0..G5), standard normal values (seed 11), ``X[3, 2]`` NaN."""
    rng = np.random.default_rng(11)
    pairs = [(c, d) for c in TINY_CELL_LINES for d in TINY_DRUGS]
    x = rng.normal(size=(len(pairs), _N_GENES)).astype(np.float32)
    x[3, 2] = np.nan
    return _signature_dataset("tiny-eval", pairs, x, [f"G{i}" for i in range(_N_GENES)])


_DRUG_ROWS = (
    # id, name, SMILES, targets, fine mechanism
    (
        "afatinib",
        "Afatinib",
        "CN(C)C/C=C/C(=O)NC1=C(C=C2C(=C1)C(=NC=N2)NC3=CC(=C(C=C3)F)Cl)O[C@H]4CCOC4",
        ["EGFR", "ERBB2", "ERBB4"],
        "EGFR/ERBB inhibitor",
    ),
    (
        "binimetinib",
        "Binimetinib",
        "CN1C=NC2=C1C=C(C(=C2F)NC3=C(C=C(C=C3)Br)F)C(=O)NOCCO",
        ["MAP2K1", "MAP2K2"],
        "MEK inhibitor",
    ),
    (
        "trametinib",
        "Trametinib",
        "CC1=C2C(=C(N(C1=O)C)NC3=C(C=C(C=C3)I)F)C(=O)N(C(=O)N2C4=CC=CC(=C4)NC(=O)C)C5CC5",
        ["MAP2K1", "MAP2K2", "CYP3A4"],
        "MEK inhibitor",
    ),
    (
        "chidamide",
        "Tucidinostat",
        "C1=CC(=CN=C1)/C=C/C(=O)NCC2=CC=C(C=C2)C(=O)NC3=C(C=CC(=C3)F)N",
        ["HDAC1", "HDAC2", "HDAC3", "HDAC10"],
        "HDAC inhibitor",
    ),
    ("aspirin", "Aspirin", "CC(=O)OC1=CC=CC=C1C(=O)O", ["PTGS1", "PTGS2"], "COX inhibitor"),
)


def tiny_drugs() -> DrugTable:
    """The drug table of the tiny datasets (Morgan fingerprints r=2, 2048 bits, from the SMILES)."""
    table = pd.DataFrame(
        {
            "name": [r[1] for r in _DRUG_ROWS],
            "smiles": [r[2] for r in _DRUG_ROWS],
            "targets": [list(r[3]) for r in _DRUG_ROWS],
            "moa_fine": [r[4] for r in _DRUG_ROWS],
            "moa_broad": "inhibitor/antagonist",
            "source": "tiny",
        },
        index=pd.Index([r[0] for r in _DRUG_ROWS], name="drug_id"),
    )
    fingerprints, valid = morgan_fingerprints(list(table["smiles"]))
    return DrugTable(table, fingerprints, valid)


def tiny_graph() -> KnowledgeGraph:
    """Drug targets and mechanisms of :func:`tiny_drugs`, one pathway and one interaction."""
    genes = sorted({g for r in _DRUG_ROWS for g in r[3]} | {"BRAF"})
    mechanisms = {
        "EGFR/ERBB inhibitor": "egfr-inhibitor",
        "MEK inhibitor": "mek-inhibitor",
        "HDAC inhibitor": "hdac-inhibitor",
    }
    nodes = pd.DataFrame(
        {
            "id": [f"drug:{r[0]}" for r in _DRUG_ROWS]
            + [f"gene:{g}" for g in genes]
            + [f"mechanism:{m}" for m in mechanisms.values()]
            + ["pathway:MAPK"],
            "name": [r[1] for r in _DRUG_ROWS] + genes + list(mechanisms) + ["MAPK signalling"],
            "kind": ["drug"] * len(_DRUG_ROWS)
            + ["gene"] * len(genes)
            + ["mechanism"] * len(mechanisms)
            + ["pathway"],
        }
    )
    nodes["detail"] = ""
    edges = (
        [(f"drug:{r[0]}", f"gene:{g}", "targets") for r in _DRUG_ROWS for g in r[3]]
        + [
            (f"drug:{r[0]}", f"mechanism:{mechanisms[r[4]]}", "has_mechanism")
            for r in _DRUG_ROWS
            if r[4] in mechanisms
        ]
        + [("gene:EGFR", "gene:ERBB2", "interacts")]
        + [(f"gene:{g}", "pathway:MAPK", "in_pathway") for g in ("EGFR", "ERBB2", "MAP2K1", "MAP2K2", "BRAF")]
    )
    return KnowledgeGraph.from_tables(nodes, pd.DataFrame(edges, columns=["src", "dst", "relation"]))
