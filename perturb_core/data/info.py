"""Summaries of every dataset, the drug table and the graph (``data info``)."""

from __future__ import annotations

import numpy as np

from perturb_core.config import Settings, get_settings
from perturb_core.data.artifacts import read_json_object
from perturb_core.data.registry import list_datasets, load_drugs, load_labels, load_signatures
from perturb_core.errors import NotBuiltError

__all__ = ["data_info"]


def data_info(settings: Settings | None = None) -> dict:
    """Counts per dataset (cell lines, drugs, signatures, genes; label pairs per split and
    positive rates), the drug table (with SMILES, fingerprints, unmatched names) and the
    graph (nodes per kind, edges per relation).

    Raises:
        NotBuiltError: nothing is built yet.
    """
    from perturb_core.kg import load_graph

    settings = settings or get_settings()
    if not (settings.processed_dir / "build.json").exists():
        raise NotBuiltError(
            "no processed data yet; run `python -m perturb_core data fetch` and `python -m perturb_core data build`"
        )
    out: dict = {"data_dir": str(settings.data_dir), "datasets": {}}
    for info in list_datasets(settings):
        if not info.path.exists():
            out["datasets"][info.name] = {"kind": info.kind, "built": False}
            continue
        if info.kind == "signatures":
            ds = load_signatures(info.name, settings)
            X = ds.adata.X
            out["datasets"][info.name] = {
                "kind": "signatures",
                "description": info.description,
                "user": info.user,
                "cell_lines": len(ds.cell_lines),
                "drugs": len(ds.drugs()),
                "signatures": int(ds.adata.n_obs),
                "genes": int(ds.adata.n_vars),
                "measured_fraction": float(np.isfinite(X).mean()),
            }
        else:
            entry: dict = {"kind": "labels", "description": info.description}
            for task in ("de", "dir"):
                ls = load_labels(info.name, task, settings)
                t = ls.table
                entry["cell_line"] = ls.cell_line
                entry[task] = {
                    split: {
                        "pairs": int((t["split"] == split).sum()),
                        "perturbations": int(t.loc[t["split"] == split, "pert"].nunique()),
                        "genes": int(t.loc[t["split"] == split, "gene"].nunique()),
                        "positive_rate": float(t.loc[t["split"] == split, "label"].mean()),
                    }
                    for split in ("train", "test")
                }
            out["datasets"][info.name] = entry
    drugs = load_drugs(settings)
    t = drugs.table
    out["drugs"] = {
        "drugs": len(t),
        "with_smiles": int(t["smiles"].notna().sum()),
        "with_fingerprint": int(drugs.valid.sum()),
        "with_targets": int(t["targets"].map(len).gt(0).sum()),
        "by_source": {str(k): int(v) for k, v in t["source"].value_counts().items()},
        "unmatched": sorted(t.loc[t["source"] == "unmatched", "name"]),
    }
    g = load_graph(settings)
    out["graph"] = g.counts()
    dropped = settings.processed_dir / "kg_dropped.json"
    if dropped.exists():
        out["graph"]["dropped_edges"] = read_json_object(dropped)
    return out
