"""CORE relations: scaled matrices without self-loops, defaults, validation, the leaky ablation, drug relations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from perturb_core.data.registry import DrugTable, LabelSet
from perturb_core.errors import UnknownNameError, ValidationError
from perturb_core.evidence import RELATION_SPECS, build_relations, core_index, default_relations, explain
from perturb_core.kg import KnowledgeGraph
from perturb_core.testing.graphs import tiny_graph, tiny_labels


def test_relation_matrices_are_scaled_and_exclude_self() -> None:
    rs = build_relations(tiny_labels(), tiny_graph(), relations=["interacts", "shared_pathway"])
    pw = rs.relations["shared_pathway"].matrix.toarray()
    it = rs.relations["interacts"].matrix.toarray()
    # raw shared pathway: 1/|P1| = 1/3 between A, B, C; mean row sum over 6 perturbations = 1/3
    expected = np.zeros((6, 6))
    expected[np.ix_([0, 1, 2], [0, 1, 2])] = 1.0
    np.fill_diagonal(expected, 0)
    assert_allclose(pw, expected)
    # interacts A-D raw 1; mean row sum 2/6 -> entries 3
    assert it[0, 3] == it[3, 0] == pytest.approx(3.0)
    assert it.sum() == pytest.approx(6.0)
    for m in (pw, it):
        assert np.all(np.diag(m) == 0)
        assert m.sum(axis=1).mean() == pytest.approx(1.0)


def test_default_relations_exclude_leaky_and_absent_complexes() -> None:
    labels, graph = tiny_labels(), tiny_graph()
    rels = default_relations(labels, graph)
    assert "regulates" not in rels and "shared_complex" not in rels
    assert "shared_go_process" in rels and "interacts" in rels
    assert "regulates" in default_relations(labels, graph, include_leaky=True)


@pytest.mark.parametrize(
    ("relations", "leaky", "error", "match"),
    [
        (["regulates"], False, ValidationError, "include_leaky=True"),
        (["shared_complex"], False, ValidationError, "CORUM"),
        (["shared_patway"], False, UnknownNameError, "shared_pathway"),
        (["shared_target"], False, UnknownNameError, "relation for knockdown"),
        ([], False, ValidationError, "empty"),
    ],
)
def test_bad_relations(relations: list[str], leaky: bool, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        build_relations(tiny_labels(), tiny_graph(), relations=relations, include_leaky=leaky)


def test_regulates_only_as_explicit_ablation() -> None:
    rs = build_relations(tiny_labels(), tiny_graph(), relations=["regulates"], include_leaky=True)
    assert rs.relations["regulates"].matrix[1, 4] > 0  # B regulates E
    assert RELATION_SPECS["regulates"].leaky


def test_drug_relations() -> None:
    names = ["Xdrug", "Ydrug", "Zdrug", "Wdrug"]
    ids = ["xdrug", "ydrug", "zdrug", "wdrug"]
    nodes = pd.DataFrame(
        {
            "id": [f"drug:{i}" for i in ids] + ["gene:T1", "gene:T2", "gene:T3", "gene:R", "mechanism:m1"],
            "name": [*names, "T1", "T2", "T3", "R", "Mech one"],
            "kind": ["drug"] * 4 + ["gene"] * 4 + ["mechanism"],
            "detail": [""] * 9,
        }
    )
    edges = pd.DataFrame(
        {
            "src": [
                "drug:xdrug",
                "drug:ydrug",
                "drug:zdrug",
                "drug:wdrug",
                "gene:T1",
                "drug:xdrug",
                "drug:zdrug",
            ],
            "dst": ["gene:T1", "gene:T1", "gene:T2", "gene:T3", "gene:T2", "mechanism:m1", "mechanism:m1"],
            "relation": ["targets"] * 4 + ["interacts", "has_mechanism", "has_mechanism"],
        }
    )
    graph = KnowledgeGraph.from_tables(nodes, edges)
    fp = np.zeros((4, 2048), dtype=bool)
    fp[0, :40] = fp[3, :40] = True  # X and W identical
    fp[1, 100:140] = True
    fp[2, 200:240] = True
    drugs = DrugTable(
        pd.DataFrame({"name": names}, index=pd.Index(ids, name="drug_id")), fp, np.ones(4, bool)
    )
    table = pd.DataFrame(
        {
            "pert": pd.Categorical(names, categories=names),
            "gene": pd.Categorical(["R"] * 4),
            "label": np.array([1, 0, 1, 0], dtype=np.int8),
            "split": pd.Categorical(["test", "train", "train", "train"]),
        }
    )
    labels = LabelSet("tahoe-tiny", "de", table, "TINY", "drug")  # type: ignore[arg-type]
    rs = build_relations(labels, graph, drugs=drugs)
    assert tuple(rs.relations) == (
        "shared_target",
        "shared_mechanism",
        "chemical_similarity",
        "adjacent_targets",
    )
    nz = {
        r: {tuple(sorted(p)) for p in zip(*m.matrix.nonzero(), strict=True)} for r, m in rs.relations.items()
    }
    assert nz["shared_target"] == {(0, 1)}
    assert nz["shared_mechanism"] == {(0, 2)}
    assert nz["chemical_similarity"] == {(0, 3)}
    assert nz["adjacent_targets"] == {(0, 2), (1, 2)}
    ex = explain(labels, graph, perturbation="xdrug", gene="R", index=core_index(labels, graph, drugs=drugs))
    paths = {it.perturbation: it.path for it in ex.negative + ex.positive}
    assert paths["Ydrug"] == ("drug:xdrug", "gene:T1", "drug:ydrug")
    assert paths["Wdrug"] == ("drug:xdrug", "drug:wdrug")
    assert ex.context["perturbation"]["targets"] == ["T1"]


def test_relation_names_are_case_and_punctuation_insensitive() -> None:
    rs = build_relations(
        tiny_labels(), tiny_graph(), relations=["Shared-Pathway", "INTERACTS", "shared_pathway"]
    )
    assert tuple(rs.relations) == ("shared_pathway", "interacts")


def test_unknown_relation_wording_lists_the_valid_ones() -> None:
    with pytest.raises(
        UnknownNameError,
        match=r"^unknown relation for knockdown perturbations 'shared_patway'; valid: interacts, ",
    ):
        build_relations(tiny_labels(), tiny_graph(), relations=["shared_patway"])


def test_relation_specs_are_read_only() -> None:
    with pytest.raises(TypeError):
        RELATION_SPECS["x"] = RELATION_SPECS["interacts"]  # type: ignore[index]
