"""The drug table: every drug of every signature dataset with structure, targets, mechanism.

Sources, in order of preference: Tahoe-100M's drug metadata, then LINCS compound
annotations (signatureSearch). Names are matched through :func:`drug_keys` (case,
punctuation, salt words and parenthesised aliases ignored). Unmatched drugs stay in the
table with ``source = "unmatched"`` and are listed by ``data info``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from perturb_core.data.names import drug_keys, slug
from perturb_core.data.rda import read_rda

__all__ = ["build_drug_table", "load_lincs", "split_targets"]

_UNCLEAR = {"", "unclear", "none", "nan", "unknown"}


def split_targets(text: object) -> list[str]:
    """``'PSMB1, PSMB2; PSMB5'`` -> ``['PSMB1', 'PSMB2', 'PSMB5']`` (upper case, unique, ordered)."""
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return []
    out: list[str] = []
    for t in re.split(r"[,;|/]\s*|\s+", str(text)):
        t = t.strip().upper()
        if t and t.lower() not in _UNCLEAR and t not in out and re.fullmatch(r"[A-Z0-9][A-Z0-9.\-]*", t):
            out.append(t)
    return out


def _broad_from_text(moa: str) -> str:
    m = moa.lower()
    if any(w in m for w in ("inhibitor", "antagonist", "blocker", "degrader")):
        return "inhibitor/antagonist"
    if any(w in m for w in ("agonist", "activator", "stimulant", "inducer")):
        return "activator/agonist"
    return "unclear"


def load_lincs(path: Path) -> pd.DataFrame:
    """LINCS compound annotations: name, aliases, SMILES, MOA, targets, DrugBank id."""
    top = next(iter(read_rda(path).values())).to_dict()
    cols = [
        "pert_iname",
        "compound_aliases",
        "canonical_smiles",
        "MOA",
        "mergeMOA",
        "mergeTargets",
        "DrugBank_ID",
    ]
    return pd.DataFrame({c: top[c] for c in cols})


def _index(names: Iterable[object], aliases: Iterable[object] | None = None) -> dict[str, int]:
    idx: dict[str, int] = {}
    aliases = list(aliases) if aliases is not None else None
    for i, name in enumerate(names):
        keys = drug_keys(str(name)) if name else []
        if aliases is not None and aliases[i]:
            keys += drug_keys(str(aliases[i]))
        for k in keys:
            idx.setdefault(k, i)
    return idx


def _lookup(name: str, index: Mapping[str, int]) -> int | None:
    for k in drug_keys(name):
        if k in index:
            return index[k]
    return None


def build_drug_table(
    drugs_by_dataset: Mapping[str, Iterable[str]],
    *,
    tahoe_metadata: pd.DataFrame,
    lincs: pd.DataFrame,
    hetionet_compounds: pd.DataFrame,
) -> pd.DataFrame:
    """One row per distinct drug id over all datasets.

    Args:
        drugs_by_dataset: dataset name -> drug display names.
        tahoe_metadata: Tahoe's ``drug_metadata.parquet``.
        lincs: :func:`load_lincs` output.
        hetionet_compounds: Hetionet Compound nodes (``id``, ``name``).

    Returns:
        DataFrame indexed by ``drug_id`` with name, datasets, smiles (raw, not yet
        validated), targets (list), moa_fine, moa_broad, source, pubchem_cid,
        hetionet_id.
    """
    names: dict[str, str] = {}
    datasets: dict[str, list[str]] = {}
    for ds, ds_names in drugs_by_dataset.items():
        for n in ds_names:
            did = slug(n)
            names.setdefault(did, str(n).strip())
            datasets.setdefault(did, [])
            if ds not in datasets[did]:
                datasets[did].append(ds)
    t_idx = _index(tahoe_metadata["drug"])
    l_idx = _index(lincs["pert_iname"], lincs["compound_aliases"])
    h_idx = _index(hetionet_compounds["name"])
    rows = []
    for did, name in names.items():
        row: dict[str, object] = {
            "drug_id": did,
            "name": name,
            "datasets": ",".join(datasets[did]),
            "smiles": None,
            "targets": [],
            "moa_fine": "unclear",
            "moa_broad": "unclear",
            "source": "unmatched",
            "pubchem_cid": None,
            "hetionet_id": None,
        }
        ti, li, hi = _lookup(name, t_idx), _lookup(name, l_idx), _lookup(name, h_idx)
        if ti is not None:
            m = tahoe_metadata.iloc[ti]
            row.update(
                smiles=m["canonical_smiles"] or None,
                targets=split_targets(m["targets"]),
                moa_fine=str(m["moa-fine"] or "unclear"),
                moa_broad=str(m["moa-broad"] or "unclear"),
                source="tahoe_metadata",
                pubchem_cid=None if pd.isna(m["pubchem_cid"]) else str(int(m["pubchem_cid"])),
            )
        if li is not None:
            m = lincs.iloc[li]
            if row["source"] == "unmatched":
                row["source"] = "lincs"
            if not row["smiles"] and m["canonical_smiles"]:
                row["smiles"] = m["canonical_smiles"]
            if not row["targets"]:
                row["targets"] = split_targets(m["mergeTargets"])
            moa = m["MOA"] or m["mergeMOA"]
            if str(row["moa_fine"]).lower() in _UNCLEAR and moa:
                row["moa_fine"] = str(moa).split("|")[0]
                if str(row["moa_broad"]).lower() in _UNCLEAR:
                    row["moa_broad"] = _broad_from_text(str(moa))
            if not row["hetionet_id"] and m["DrugBank_ID"]:
                row["hetionet_id"] = str(m["DrugBank_ID"]).split("|")[0]
        if hi is not None:
            row["hetionet_id"] = str(hetionet_compounds.iloc[hi]["id"]).removeprefix("Compound::")
        rows.append(row)
    table = pd.DataFrame(rows).set_index("drug_id")
    return table
