"""Explaining one CORE prediction: items, paths, the drawn graph, budgets, no-evidence notes, names, real data."""

from __future__ import annotations

import json
import math
import time

import pytest

from perturb_core.data.registry import load_labels
from perturb_core.errors import UnknownNameError, ValidationError
from perturb_core.evidence import (
    EvidenceGraph,
    EvidenceItem,
    GeneFrequency,
    GraphEdge,
    GraphNode,
    core_index,
    explain,
    predict_core_voting,
)
from perturb_core.kg import load_graph
from perturb_core.testing.graphs import F_G1, F_G3, fixed, tiny_graph, tiny_labels


def test_explain_items_paths_and_graph() -> None:
    labels, graph = tiny_labels(), tiny_graph()
    index = core_index(labels, graph, options=fixed())
    ex = explain(labels, graph, perturbation="a", gene="g1", index=index)
    d = ex.to_dict()
    assert (d["perturbation"], d["gene"], d["split"], d["label"]) == ("A", "G1", "test", 1)
    assert [it["perturbation"] for it in d["positive"]] == ["D", "B"]  # by relation weight
    assert [it["perturbation"] for it in d["negative"]] == ["C"]
    assert d["positive"][0]["relation"] == "interacts" and d["positive"][0]["path"] == ["gene:A", "gene:D"]
    assert d["positive"][1]["path"] == ["gene:A", "pathway:P1", "gene:B"]
    assert d["positive"][1]["path_names"] == ["A", "Pathway one", "B"]
    assert d["positive"][0]["weight"] == pytest.approx(3.0)
    assert d["vote"] == pytest.approx(0.8)
    batch = predict_core_voting(labels, graph, index=index).set_index("gene")
    assert d["score"] == pytest.approx(batch.at["G1", "score"])  # full support = batch score
    assert d["prior"] == pytest.approx(F_G1)
    assert d["gene_auroc"] is None  # one test perturbation for G1
    roles = {n["id"]: n["role"] for n in d["graph"]["nodes"]}
    assert roles == {
        "gene:A": "query",
        "gene:G1": "gene",
        "gene:D": "positive",
        "gene:B": "positive",
        "gene:C": "negative",
        "pathway:P1": "intermediate",
    }
    edges = {(e["source"], e["target"], e["relation"]) for e in d["graph"]["edges"]}
    assert ("gene:A", "gene:D", "interacts") in edges
    assert ("gene:C", "gene:G1", "no_response_in_training") in edges
    assert ("gene:D", "gene:G1", "responded_in_training") in edges
    assert d["relations_used"] == ["interacts", "shared_pathway"]


def test_explain_budget_and_unmeasured() -> None:
    labels, graph = tiny_labels(), tiny_graph()
    index = core_index(labels, graph, options=fixed(m=1.0))
    ex = explain(labels, graph, perturbation="A", gene="G1", budget=1, index=index)
    assert [it.perturbation for it in ex.positive] == ["D"] and not ex.negative
    assert ex.vote == pytest.approx(1.0)
    assert ex.score == pytest.approx((3 + F_G1) / (3 + 1))
    ex2 = explain(labels, graph, perturbation="A", gene="G2", index=index)
    assert [it.perturbation for it in ex2.unmeasured] == ["C"] and ex2.n_unmeasured == 1
    assert ex2.unmeasured[0].label is None
    with pytest.raises(ValidationError, match="budget"):
        explain(labels, graph, perturbation="A", gene="G1", budget=0, index=index)


def test_explain_parts_are_typed_and_their_json_is_the_document() -> None:
    labels, graph = tiny_labels(), tiny_graph()
    index = core_index(labels, graph, options=fixed())
    ex = explain(labels, graph, perturbation="A", gene="G1", index=index)
    d = ex.to_dict()
    d_item = ex.positive[1]
    assert isinstance(d_item, EvidenceItem)
    assert d_item.path == ("gene:A", "pathway:P1", "gene:B") and d_item.node == "gene:B"
    assert d_item.path_text == "A → Pathway one → B" and d_item.relation == "shared_pathway"
    assert d_item.label == 1 and d_item.relations == ("shared_pathway",)
    assert [it.to_dict() for it in ex.positive] == d["positive"]
    assert [it.to_dict() for it in ex.negative] == d["negative"]
    assert d_item.to_dict() == d["positive"][1] and d_item.path_detail is None
    assert [(side, it.perturbation) for side, it in ex.all_items()] == [
        ("positive", "D"),
        ("positive", "B"),
        ("negative", "C"),
    ]
    assert isinstance(ex.gene_frequency, GeneFrequency)
    assert ex.gene_frequency.to_dict() == d["gene_frequency"]
    assert ex.gene_frequency.n_measured >= ex.gene_frequency.n_responded >= 0
    g = ex.graph
    assert isinstance(g, EvidenceGraph) and g.to_dict() == d["graph"]
    assert g.nodes[:2] == (
        GraphNode("gene:A", "A", "gene", "query"),
        GraphNode("gene:G1", "G1", "gene", "gene"),
    )
    assert g.node("pathway:P1").role == "intermediate"
    assert GraphEdge("gene:D", "gene:G1", "responded_in_training") in g.edges
    assert len(set(g.edges)) == len(g.edges)  # unique, in order of appearance
    with pytest.raises(KeyError, match="gene:Z"):
        g.node("gene:Z")
    with pytest.raises(AttributeError):
        d_item.weight = 0.0  # type: ignore[misc]  # frozen


def test_explain_no_evidence_says_so() -> None:
    labels, graph = tiny_labels(), tiny_graph()
    ex = explain(labels, graph, perturbation="A", gene="G3", index=core_index(labels, graph, options=fixed()))
    assert ex.vote is None and ex.score == pytest.approx(F_G3)
    assert "prior" in ex.note and ex.to_dict()["vote"] is None


@pytest.mark.parametrize(("pert", "gene", "match"), [("AA", "G1", "closest known: A"), ("A", "G9", "G1")])
def test_explain_unknown_names(pert: str, gene: str, match: str) -> None:
    labels, graph = tiny_labels(), tiny_graph()
    with pytest.raises(UnknownNameError, match=match):
        explain(labels, graph, perturbation=pert, gene=gene, index=core_index(labels, graph, options=fixed()))


@pytest.mark.realdata
def test_real_explain_is_fast_and_matches_batch(real_data: object) -> None:
    graph = load_graph(real_data)  # type: ignore[arg-type]
    labels = load_labels("perturbqa-k562", "de", real_data)  # type: ignore[arg-type]
    index = core_index(labels, graph)
    ts = index.test_scores()
    row = ts[ts["label"] == 1].iloc[0]
    explain(labels, graph, perturbation=row["pert"], gene=row["gene"], index=index)  # warm caches
    start = time.perf_counter()
    ex = explain(labels, graph, perturbation=row["pert"], gene=row["gene"], index=index)
    assert time.perf_counter() - start < 0.1
    assert ex.score == pytest.approx(row["score"])
    assert ex.label == 1 and ex.split == "test"
    assert ex.n_positive + ex.n_negative > 0
    doc = json.loads(json.dumps(ex.to_dict(), allow_nan=True))  # plain JSON types throughout
    assert doc["positive"] == [json.loads(json.dumps(it.to_dict())) for it in ex.positive]
    assert doc["graph"]["nodes"][0] == {
        "id": ex.graph.nodes[0].id,
        "name": row["pert"],
        "kind": "gene",
        "role": "query",
    }
    assert all(
        it.path[0] == ex.graph.nodes[0].id and it.path_names[-1] == it.perturbation
        for _, it in ex.all_items()
    )
    assert math.isclose(ex.gene_frequency.rate, ex.gene_frequency.n_responded / ex.gene_frequency.n_measured)
