"""Gene-level perturbation outcome labels for CORE: PerturbQA knock-downs and Tahoe drugs.

A label table has one row per (perturbation, gene) with ``label`` (0/1) and ``split``
(train/test). Task ``de``: 1 = the gene is differentially expressed under the
perturbation. Task ``dir``: only DE pairs, 1 = up, 0 = down.

Tahoe drug labels are derived from the ranked signatures, per cell line (rule documented
in ``data/README.md``): a gene ranked in the top or bottom ``TAIL`` (100) of a drug's list
is a responder (up or down); a gene in the middle half of the list (ranks between the
25th and 75th percentile) is a non-responder; anything in between is left out as
ambiguous. Genes are those tested in at least 90% of the line's drugs that respond to at
least two TRAINING drugs. Drugs are split once, for every line alike: 20% of the drug
panel is held out (seeded permutation of the sorted drug ids, seed 0).
"""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from perturb_core.errors import DataError

__all__ = ["TAIL", "read_perturbqa", "split_drugs", "tahoe_drug_labels"]

TAIL = 100
TEST_FRACTION = 0.2
MIN_TESTED_FRACTION = 0.9
MIN_TRAIN_RESPONSES = 2


def read_perturbqa(path: Path) -> pd.DataFrame:
    """Read a PerturbQA ``{line}-{de,dir}.csv`` into ``pert, gene, label, split``.

    Raises:
        DataError: missing columns, labels other than 0/1 or splits other than train/test.
    """
    try:
        df = pd.read_csv(path, dtype={"pert": str, "gene": str, "split": str})
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(
            f"cannot read {path}: {exc}; re-fetch it with `python -m perturb_core data fetch`"
        ) from exc
    missing = {"pert", "gene", "label", "split"} - set(df.columns)
    if missing:
        raise DataError(f"{path}: missing columns {sorted(missing)} (expected pert, gene, label, split)")
    if not df["label"].isin([0, 1]).all():
        bad = df.loc[~df["label"].isin([0, 1]), "label"].unique()[:5]
        raise DataError(f"{path}: labels must be 0/1, found {list(bad)}")
    if not df["split"].isin(["train", "test"]).all():
        bad = df.loc[~df["split"].isin(["train", "test"]), "split"].unique()[:5]
        raise DataError(f"{path}: split must be train/test, found {list(bad)}")
    out = df[["pert", "gene", "label", "split"]].copy()
    out["label"] = out["label"].astype(np.int8)
    for c in ("pert", "gene", "split"):
        out[c] = out[c].astype("category")
    return out


def split_drugs(drug_ids: list[str], *, test_fraction: float = TEST_FRACTION, seed: int = 0) -> set[str]:
    """The held-out drug ids: a seeded permutation of the sorted ids, first ``test_fraction``."""
    ids = sorted(set(drug_ids))
    order = np.random.default_rng(seed).permutation(len(ids))
    n_test = round(test_fraction * len(ids))
    return {ids[i] for i in order[:n_test]}


def tahoe_drug_labels(adata: ad.AnnData, *, seed: int = 0) -> pd.DataFrame:
    """Derive per-cell-line DE/direction labels from a signature AnnData.

    Returns:
        DataFrame with cell_line, pert (drug display name), gene, de (0/1), direction
        (1 up, 0 down, -1 for non-DE), split.
    """
    ranks = adata.layers["rank"]
    n_tested = adata.obs["n_genes_tested"].to_numpy()
    test_ids = split_drugs(list(adata.obs["drug_id"].astype(str)), seed=seed)
    is_test = adata.obs["drug_id"].astype(str).isin(test_ids).to_numpy()
    genes = np.asarray(adata.var_names)
    parts = []
    for cell_line, rows in adata.obs.groupby("cell_line", observed=True).indices.items():
        r = ranks[rows].astype(np.int64)
        n = n_tested[rows][:, None]
        tested = r > 0
        up = tested & (r <= TAIL)
        down = tested & (r > n - TAIL)
        middle = tested & (r > 0.25 * n) & (r <= 0.75 * n)
        responds_train = ((up | down) & ~is_test[rows][:, None]).sum(axis=0)
        keep = (tested.mean(axis=0) >= MIN_TESTED_FRACTION) & (responds_train >= MIN_TRAIN_RESPONSES)
        cols = np.flatnonzero(keep)
        lab = np.full((len(rows), len(cols)), -1, dtype=np.int8)
        lab[middle[:, cols]] = 0
        lab[(up | down)[:, cols]] = 1
        ii, jj = np.nonzero(lab >= 0)
        parts.append(
            pd.DataFrame(
                {
                    "cell_line": cell_line,
                    "pert": adata.obs["drug"].to_numpy()[rows][ii],
                    "gene": genes[cols][jj],
                    "de": lab[ii, jj],
                    "direction": np.where(
                        up[:, cols][ii, jj], 1, np.where(down[:, cols][ii, jj], 0, -1)
                    ).astype(np.int8),
                    "split": np.where(is_test[rows][ii], "test", "train"),
                }
            )
        )
    if not parts:
        raise DataError("no signatures to derive labels from")
    out = pd.concat(parts, ignore_index=True)
    for c in ("cell_line", "pert", "gene", "split"):
        out[c] = out[c].astype("category")
    return out
