"""The gene view on tiny fixtures: response table, matrix, knock-downs with direction and split, gene sets."""

from __future__ import annotations

import pandas as pd
import pytest

from perturb_core.data.registry import LabelSet
from perturb_core.errors import UnknownNameError
from perturb_core.explore import gene_sets, gene_view


def _labels(task: str, rows: list[tuple[str, str, int, str]]) -> LabelSet:
    t = pd.DataFrame(rows, columns=["pert", "gene", "label", "split"])
    for c in ("pert", "gene", "split"):
        t[c] = t[c].astype("category")
    return LabelSet("perturbqa-k562", task, t, "K562", "knockdown")  # type: ignore[arg-type]


DE = _labels(
    "de",
    [("KD1", "A", 1, "train"), ("KD2", "A", 0, "train"), ("KD3", "A", 1, "test"), ("KD1", "B", 1, "train")],
)
DIR = _labels("dir", [("KD1", "A", 0, "train"), ("KD3", "A", 1, "test"), ("KD1", "B", 1, "train")])


def test_gene_view_tables(tiny_signatures, tiny_kg) -> None:
    v = gene_view("a", ds=tiny_signatures, de_sets=[DE], dir_sets=[DIR], sets=gene_sets(tiny_kg))
    assert v.gene == "A" and v.dataset == "tiny"
    assert v.response["score"].tolist() == [3.0, 1.0, -3.0]  # sorted, most up first
    m = v.matrix()
    assert (
        list(m.index) == ["Mimic", "Reverse"]
        and m.loc["Mimic", "L2"] == 1.0
        and pd.isna(m.loc["Reverse", "L2"])
    )
    bd = v.by_drug().set_index("drug")
    assert (
        bd.loc["Mimic", "mean"] == 2.0 and bd.loc["Mimic", "n_up"] == 1 and bd.loc["Reverse", "n_down"] == 1
    )
    r = v.responding_knockdowns()
    assert r[["perturbation", "direction", "split"]].values.tolist() == [
        ["KD3", "up", "test"],  # per line, test pairs first
        ["KD1", "down", "train"],
    ]
    assert v.gene_sets.empty  # A is not a graph gene
    doc = v.to_dict()
    assert doc["knockdowns"]["n_pairs"] == 3 and doc["knockdowns"]["n_de"] == 2


def test_gene_view_by_ensembl_id_and_graph_only_gene(tiny_signatures, tiny_kg) -> None:
    assert gene_view("ENSG00000000002.5", ds=tiny_signatures).gene == "C"
    v = gene_view("g5", ds=tiny_signatures, sets=gene_sets(tiny_kg))
    assert v.gene == "G5" and v.dataset is None and v.response.empty and v.matrix().empty
    assert set(v.gene_sets["term"]) == {"Pathway two", "go one"}


def test_gene_view_unknown_gene_names_the_closest(tiny_signatures) -> None:
    with pytest.raises(UnknownNameError, match="unknown gene: 'ZZZ'"):
        gene_view("ZZZ", ds=tiny_signatures)
