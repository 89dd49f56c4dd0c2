"""The knowledge graph: small graphs built in code, and the real graph."""

from __future__ import annotations

import shutil
import time

import numpy as np
import pandas as pd
import pytest

from perturb_core.data.fetch import fetch
from perturb_core.data.graph import RELATIONS, build_graph_tables
from perturb_core.data.manifest import load_manifest
from perturb_core.data.registry import load_drugs
from perturb_core.errors import UnknownNameError, ValidationError
from perturb_core.kg import KnowledgeGraph, load_graph


@pytest.fixture
def small() -> KnowledgeGraph:
    nodes = pd.DataFrame(
        {
            "id": ["gene:A", "gene:B", "gene:C", "pathway:P", "drug:d1"],
            "name": ["A", "B", "C", "Pathway P", "Drug One"],
            "kind": ["gene", "gene", "gene", "pathway", "drug"],
            "detail": "",
        }
    )
    edges = pd.DataFrame(
        {
            "src": ["gene:A", "gene:A", "gene:B", "drug:d1", "gene:A"],
            "dst": ["gene:B", "pathway:P", "pathway:P", "gene:A", "gene:C"],
            "relation": ["interacts", "in_pathway", "in_pathway", "targets", "regulates"],
        }
    )
    return KnowledgeGraph.from_tables(nodes, edges)


def test_adjacency_is_symmetric_and_skips_leaky_relations(small: KnowledgeGraph) -> None:
    a = small.adjacency().toarray()
    np.testing.assert_array_equal(a, a.T)
    i, c = small.idx(["gene:A", "gene:C"])
    assert a[i, c] == 0  # regulates excluded by default
    assert small.adjacency(["regulates"]).toarray()[i, c] == 1
    shared = (small.adjacency(["in_pathway"]) @ small.adjacency(["in_pathway"])).toarray()
    j = small.idx("gene:B")[0]
    assert shared[i, j] == 1  # A and B share pathway P


def test_neighbours_and_lookup(small: KnowledgeGraph) -> None:
    n = small.neighbors("gene:A")
    assert set(n["id"]) == {"gene:B", "pathway:P", "drug:d1", "gene:C"}
    assert set(n.loc[n["id"] == "drug:d1", "direction"]) == {"in"}
    assert small.find("drug one", "drug") == "drug:d1"
    assert small.find("a", "gene") == "gene:A"
    with pytest.raises(UnknownNameError, match="closest known"):
        small.find("Zebra", "gene")
    with pytest.raises(ValidationError, match="unknown relation"):
        small.adjacency(["likes"])
    g = small.subgraph(["gene:A", "gene:B", "pathway:P"])
    assert g.number_of_nodes() == 3 and g.number_of_edges() == 3


def test_bad_tables() -> None:
    nodes = pd.DataFrame({"id": ["gene:A"], "name": ["A"], "kind": ["gene"], "detail": [""]})
    with pytest.raises(ValidationError, match="unknown nodes"):
        KnowledgeGraph.from_tables(
            nodes, pd.DataFrame({"src": ["gene:A"], "dst": ["gene:Z"], "relation": ["interacts"]})
        )


@pytest.mark.realdata
def test_real_graph_has_every_source_and_loads_fast(real_data) -> None:
    t0 = time.perf_counter()
    g = load_graph(real_data)
    g = type(g).from_tables(g.nodes, g.edges.assign(src=g.ids(g.edges["src"]), dst=g.ids(g.edges["dst"])))
    assert time.perf_counter() - t0 < 10
    counts = g.counts()
    expected = set(RELATIONS) - {"in_complex"}  # CORUM is off by default (CC BY-NC)
    assert expected <= set(counts["edges"])
    assert counts["edges"]["interacts"] == 147_164
    assert counts["edges"]["covaries"] == 61_690
    assert counts["edges"]["binds"] == 11_571
    assert {"gene", "drug", "pathway", "go_term", "disease", "mechanism", "compound"} <= set(counts["nodes"])
    # a known EGFR inhibitor links to EGFR, and to its mechanism
    n = g.neighbors("drug:afatinib")
    assert "gene:EGFR" in set(n.loc[n["relation"] == "targets", "id"])
    assert "mechanism:egfr-erbb-inhibitor" in set(n["id"])
    assert g.find("TP53", "gene") == "gene:TP53"


@pytest.mark.realdata
def test_corum_is_opt_in(real_data, tmp_path) -> None:
    corum = [e for e in load_manifest() if "corum" in e.file]
    settings = real_data.with_(data_dir=tmp_path)
    assert fetch(settings=settings, entries=corum) == []  # non-commercial licence: skipped by default
    fetch(settings=settings, entries=corum, include_optional=True)
    kg_dir = settings.raw_dir / "kg"
    shutil.copytree(real_data.raw_dir / "kg", kg_dir, dirs_exist_ok=True)
    drugs = load_drugs(real_data).table
    _, edges, _ = build_graph_tables(kg_dir, drugs)
    assert "in_complex" not in set(edges["relation"])
    nodes, edges, _ = build_graph_tables(kg_dir, drugs, enable_corum=True)
    assert (edges["relation"] == "in_complex").sum() > 10_000
    assert (nodes["kind"] == "complex").sum() == 2417
