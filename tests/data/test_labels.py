"""Label readers and the Tahoe drug label rule."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from perturb_core.data import labels as labels_mod
from perturb_core.data.labels import read_perturbqa, split_drugs, tahoe_drug_labels
from perturb_core.errors import DataError


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("pert,gene,label\nA,B,1\n", "missing columns \\['split'\\]"),
        ("pert,gene,label,split\nA,B,2,train\n", "labels must be 0/1"),
        ("pert,gene,label,split\nA,B,1,dev\n", "split must be train/test"),
    ],
)
def test_perturbqa_errors(tmp_path: Path, text: str, match: str) -> None:
    p = tmp_path / "x.csv"
    p.write_text(text)
    with pytest.raises(DataError, match=match):
        read_perturbqa(p)


def test_split_drugs_is_seeded_and_sized() -> None:
    ids = [f"d{i}" for i in range(50)]
    a = split_drugs(ids, seed=0)
    assert a == split_drugs(list(reversed(ids)), seed=0)
    assert len(a) == 10
    assert a != split_drugs(ids, seed=1)


def test_tahoe_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(labels_mod, "TAIL", 1)
    monkeypatch.setattr(labels_mod, "MIN_TRAIN_RESPONSES", 1)
    # 4 drugs x 8 genes, each drug ranks all genes 1..8
    ranks = np.array([np.roll(np.arange(1, 9), i) for i in range(4)], dtype=np.uint16)
    obs = pd.DataFrame(
        {
            "cell_line": "L",
            "drug": [f"D{i}" for i in range(4)],
            "drug_id": [f"d{i}" for i in range(4)],
            "n_genes_tested": 8,
        },
        index=[f"s{i}" for i in range(4)],
    )
    a = ad.AnnData(X=np.zeros((4, 8), np.float32), obs=obs, layers={"rank": ranks})
    a.var_names = [f"G{j}" for j in range(8)]
    lab = tahoe_drug_labels(a, seed=0)
    row = lab[(lab["pert"] == "D0")].set_index("gene")
    assert row.loc["G0", "de"] == 1 and row.loc["G0", "direction"] == 1  # rank 1: top
    assert row.loc["G7", "de"] == 1 and row.loc["G7", "direction"] == 0  # rank 8: bottom
    assert row.loc["G3", "de"] == 0  # rank 4 of 8: middle half
    assert "G1" not in row.index  # rank 2: ambiguous zone, left out
    assert set(lab["split"]) <= {"train", "test"}
    assert lab.groupby("pert", observed=True)["split"].nunique().max() == 1  # drug-level split
