"""The gene view: which perturbations move one gene, and what the graph knows about it.

For a gene (symbol or Ensembl id, any case; unknown names get the closest known ones):

- its response in a signature dataset: the value of the gene in every (cell line, drug)
  signature (rank scores for the Tahoe-format datasets: inverse-normal of the gene's rank, + = up),
  as a long table and a drug x cell line matrix, with a per-drug summary;
- the PerturbQA CRISPRi knock-downs under which it responds: DE label (0/1), direction
  (up/down, for DE pairs) and the split (train/test) of each pair, per line;
- CORE-Voting's AUROC over the gene's TEST pairs in each PerturbQA line (the per-gene AUROC
  the macro metric averages; ``None`` when the test pairs have one class);
- its pathways (Reactome, WikiPathways, PID) and GO terms from the knowledge graph.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from perturb_core.data.registry import DrugTable, LabelSet, SignatureDataset
from perturb_core.errors import name_key, unknown_name
from perturb_core.explore._enrichment import SOURCE_LABELS, GeneSets

__all__ = ["RESPONSE_THRESHOLD", "GeneView", "gene_view", "resolve_gene_name"]

RESPONSE_THRESHOLD = 2.0
"""|rank score| above which a signature counts as moving the gene (z = 2: top or bottom ~2.3% of the list)."""


def resolve_gene_name(name: str, ds: SignatureDataset | None, known: Sequence[str] = ()) -> str:
    """A gene symbol from any spelling of a symbol or an Ensembl id (version suffix ignored).

    Looks in the dataset's genes (symbols and Ensembl ids), then in ``known`` (e.g. graph or
    label genes).

    Raises:
        UnknownNameError: with the closest known symbols.
    """
    key = name_key(str(name).strip().split(".")[0] if str(name).upper().startswith("ENS") else name)
    pool: list[str] = []
    if ds is not None:
        syms = [str(g) for g in ds.genes]
        pool += syms
        by = {name_key(g): g for g in syms}
        if "gene_id" in ds.adata.var:
            ids = {name_key(i): s for s, i in zip(syms, ds.adata.var["gene_id"].astype(str), strict=True)}
            by = {**ids, **by}
        if key in by:
            return by[key]
    other = {name_key(g): str(g) for g in known}
    if key in other:
        return other[key]
    raise unknown_name("gene", str(name), [*pool, *known])


@dataclass(frozen=True)
class GeneView:
    """Everything the gene page shows about one gene (also ``gene --json``).

    Attributes:
        gene: the symbol.
        dataset: the signature dataset (``None`` if the gene is not measured there).
        units: what the response values are.
        response: long table ``cell_line, drug, score, moa, targets`` (measured pairs only).
        knockdowns: ``line, perturbation, de, direction, split`` for every PerturbQA pair of the gene.
        core_auroc: ``line, auroc, n_test`` (CORE-Voting over the gene's test pairs).
        gene_sets: ``term_id, term, source, size`` (pathways and GO terms holding the gene).
    """

    gene: str
    dataset: str | None
    units: str
    response: pd.DataFrame = field(repr=False)
    knockdowns: pd.DataFrame = field(repr=False)
    core_auroc: pd.DataFrame = field(repr=False)
    gene_sets: pd.DataFrame = field(repr=False)

    def matrix(self) -> pd.DataFrame:
        """Drug x cell line matrix of the response (NaN = not measured), drugs by mean response."""
        if self.response.empty:
            return pd.DataFrame()
        m = self.response.pivot_table(index="drug", columns="cell_line", values="score", aggfunc="mean")
        return m.loc[m.mean(axis=1).sort_values(ascending=False).index]

    def by_drug(self) -> pd.DataFrame:
        """Per drug: mean, min, max response, lines measured, lines up (> +2) and down (< -2), MoA, targets."""
        r = self.response
        if r.empty:
            return pd.DataFrame(
                columns=["drug", "mean", "min", "max", "n_lines", "n_up", "n_down", "moa", "targets"]
            )
        g = r.assign(up=r["score"] > RESPONSE_THRESHOLD, down=r["score"] < -RESPONSE_THRESHOLD).groupby(
            "drug", observed=True
        )
        out = g["score"].agg(["mean", "min", "max", "count"]).rename(columns={"count": "n_lines"})
        out["n_up"], out["n_down"] = g["up"].sum(), g["down"].sum()
        out = out.join(g[["moa", "targets"]].first())
        return out.sort_values("mean", ascending=False).reset_index()

    def responding_knockdowns(self) -> pd.DataFrame:
        """The knock-downs under which the gene responded (DE = 1), with direction and split."""
        k = self.knockdowns
        return k[k["de"] == 1].reset_index(drop=True)

    def to_dict(self, limit: int = 25) -> dict[str, Any]:
        """The ``gene --json`` document (``limit`` rows of the per-drug summary each way)."""
        bd = self.by_drug()
        kd = self.knockdowns
        return {
            "gene": self.gene,
            "dataset": self.dataset,
            "units": self.units,
            "n_signatures": len(self.response),
            "response_threshold": RESPONSE_THRESHOLD,
            "drugs_up": bd.head(limit).to_dict(orient="records"),
            "drugs_down": bd.iloc[::-1].head(limit).to_dict(orient="records"),
            "knockdowns": {
                "n_pairs": len(kd),
                "n_de": int((kd["de"] == 1).sum()) if len(kd) else 0,
                "responding": self.responding_knockdowns().to_dict(orient="records"),
            },
            "core_auroc": self.core_auroc.to_dict(orient="records"),
            "core_auroc_definition": "CORE-Voting per-gene AUROC over the gene's TEST pairs (DE task); "
            "null when the test pairs have one class",
            "gene_sets": self.gene_sets.to_dict(orient="records"),
        }


def _response(ds: SignatureDataset, gene: str, drugs: DrugTable | None) -> pd.DataFrame:
    j = ds.genes.get_loc(gene)
    obs = ds.adata.obs
    x = np.asarray(ds.adata.X[:, j], dtype=np.float64).ravel()
    ok = np.isfinite(x)
    t = pd.DataFrame(
        {
            "cell_line": obs["cell_line"].astype(str).to_numpy()[ok],
            "drug": obs["drug"].astype(str).to_numpy()[ok],
            "score": x[ok],
        }
    )
    t["moa"], t["targets"] = "", ""
    if drugs is not None and "drug_id" in obs:
        pos = drugs.rows(list(obs["drug_id"].astype(str).to_numpy()[ok]))
        tab = drugs.table
        t["moa"] = [str(tab["moa_fine"].iat[i] or "") if i >= 0 else "" for i in pos]
        t["targets"] = [", ".join(tab["targets"].iat[i]) if i >= 0 else "" for i in pos]
    return t.sort_values("score", ascending=False).reset_index(drop=True)


def _knockdowns(gene: str, de_sets: Sequence[LabelSet], dir_sets: Sequence[LabelSet]) -> pd.DataFrame:
    parts = []
    dirs = {d.name: d for d in dir_sets}
    for ls in de_sets:
        t = ls.table
        cats = [c for c in t["gene"].cat.categories if name_key(c) == name_key(gene)]
        sub = t[(t["gene"] == cats[0]).to_numpy()] if cats else t.iloc[:0]
        if sub.empty:
            continue
        out = pd.DataFrame(
            {
                "line": ls.cell_line,
                "dataset": ls.name,
                "perturbation": sub["pert"].astype(str).to_numpy(),
                "de": sub["label"].to_numpy().astype(int),
                "split": sub["split"].astype(str).to_numpy(),
            }
        )
        direction = pd.Series("", index=out["perturbation"])
        d = dirs.get(ls.name)
        if d is not None:
            ds_ = d.table[(d.table["gene"] == cats[0]).to_numpy()]
            lab = pd.Series(
                np.where(ds_["label"].to_numpy() == 1, "up", "down"), index=ds_["pert"].astype(str).to_numpy()
            )
            direction = lab.reindex(out["perturbation"]).fillna("")
        out["direction"] = direction.to_numpy()
        parts.append(out)
    cols = ["line", "dataset", "perturbation", "de", "direction", "split"]
    if not parts:
        return pd.DataFrame(columns=cols)
    k = pd.concat(parts, ignore_index=True)[cols]
    return k.sort_values(
        ["de", "line", "split", "perturbation"], ascending=[False, True, True, True]
    ).reset_index(drop=True)


def gene_view(
    gene: str,
    *,
    ds: SignatureDataset | None,
    de_sets: Sequence[LabelSet] = (),
    dir_sets: Sequence[LabelSet] = (),
    core_auroc: pd.DataFrame | None = None,
    sets: GeneSets | None = None,
    drugs: DrugTable | None = None,
) -> GeneView:
    """Build the :class:`GeneView` of one gene from loaded data.

    Args:
        gene: symbol or Ensembl id, any case.
        ds: the signature dataset (``None``: no response table).
        de_sets, dir_sets: PerturbQA label sets (``de`` and ``dir`` tasks) to search.
        core_auroc: precomputed ``line, auroc, n_test`` rows for the gene (see
            :func:`~perturb_core.explore.core_gene_auroc`); ``None``: empty.
        sets: the graph's gene sets (pathways and GO terms).
        drugs: drug table for MoA and targets.

    Raises:
        UnknownNameError: the gene is in none of the sources (closest names given).
    """
    known: list[str] = []
    if sets is not None:
        known += list(sets.genes)
    for ls in de_sets:
        known += ls.genes
    symbol = resolve_gene_name(gene, ds, list(dict.fromkeys(known)))
    measured = ds is not None and symbol in ds.genes
    response = (
        _response(ds, symbol, drugs)
        if measured
        else pd.DataFrame(columns=["cell_line", "drug", "score", "moa", "targets"])
    )
    units = (
        "rank score z = inverse-normal of the gene's rank in the signature (+ = up, - = down; "
        "not a log fold change)"
        if ds is not None and "rank" in ds.adata.layers
        else "delta as stored in the dataset"
    )
    gs = (
        sets.of_gene(symbol)
        if sets is not None
        else pd.DataFrame(columns=["term_id", "term", "source", "size"])
    )
    gs = gs.assign(source_label=gs["source"].map(SOURCE_LABELS))
    auroc = core_auroc if core_auroc is not None else pd.DataFrame(columns=["line", "auroc", "n_test"])
    return GeneView(
        symbol,
        ds.name if measured and ds is not None else None,
        units,
        response,
        _knockdowns(symbol, de_sets, dir_sets),
        auroc.reset_index(drop=True),
        gs,
    )
