"""Gene sets from the graph and the hypergeometric test, against scipy computed independently."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.stats import hypergeom

from perturb_core.errors import UnknownNameError, ValidationError
from perturb_core.explore import (
    enrich,
    enrich_prediction,
    gene_sets,
    protein_coding_genes,
    uninformative_genes,
)

UNIVERSE = [f"G{i}" for i in range(1, 11)] + ["X1", "X2"]  # N = 12 (X1, X2 in no set)


def test_gene_sets_reads_pathways_and_go_terms(tiny_kg) -> None:
    gs = gene_sets(tiny_kg)
    assert dict(zip(gs.terms["term"], gs.terms["source"], strict=True)) == {
        "Pathway one": "reactome",
        "Pathway two": "wikipathways",
        "go one": "go_bp",
    }
    assert list(gs.of_gene("G1")["term"]) == ["go one", "Pathway one"]  # sorted by source
    assert gene_sets(tiny_kg, ["go_bp"]).n_sets == 1
    with pytest.raises(UnknownNameError, match="unknown gene-set source 'kegg'"):
        gene_sets(tiny_kg, ["kegg"])


def test_enrich_p_values_match_scipy_hypergeom(tiny_kg) -> None:
    gs = gene_sets(tiny_kg)
    t = enrich(["G1", "G2", "G3", "G5", "NOT_IN_UNIVERSE"], UNIVERSE, gs, min_size=3).set_index("term")
    # by hand: N = 12, n = 4 (G1 G2 G3 G5); P1: K = 4, k = 3; P2: K = 5, k = 1; GO: K = 3, k = 3
    expected = {
        "Pathway one": hypergeom(12, 4, 4).sf(2),
        "Pathway two": hypergeom(12, 5, 4).sf(0),
        "go one": hypergeom(12, 3, 4).sf(2),
    }
    for term, p in expected.items():
        assert_allclose(t.loc[term, "p"], p, rtol=1e-12)
    assert_allclose(t.loc["go one", "p"], 9 / 495, rtol=1e-12)  # C(3,3) C(9,1) / C(12,4)
    assert t.loc["Pathway one", ["k", "n", "K", "N"]].tolist() == [3, 4, 4, 12]
    assert t.loc["Pathway one", "overlap"] == "G1, G2, G3"
    # Benjamini-Hochberg by hand over the three p-values
    p = np.array([expected[k] for k in ("Pathway one", "Pathway two", "go one")])
    order = np.argsort(p)
    q = np.minimum.accumulate((p[order] * 3 / np.arange(1, 4))[::-1])[::-1]
    q_by_hand = np.empty(3)
    q_by_hand[order] = np.minimum(q, 1)
    assert_allclose(t.loc[["Pathway one", "Pathway two", "go one"], "q"], q_by_hand, rtol=1e-12)


def test_enrich_size_filter_counts_only_universe_genes(tiny_kg) -> None:
    gs = gene_sets(tiny_kg)
    small_universe = ["G1", "G2", "G5", "G6", "X1"]  # P1 has K = 2 here, P2 K = 2, GO K = 3
    t = enrich(["G1"], small_universe, gs, min_size=3)
    assert list(t["term"]) == ["go one"] and t["K"].tolist() == [3] and t["N"].tolist() == [5]


@pytest.mark.parametrize(
    ("genes", "universe", "kw", "match"),
    [
        (["G1"], [], {}, "universe of measured genes is empty"),
        (["ZZ"], UNIVERSE, {}, "none of the listed genes"),
        (["G1"], UNIVERSE, {"min_size": 0}, "min_size must be an integer"),
        (["G1"], UNIVERSE, {"min_size": 10, "max_size": 5}, "max_size must be an integer"),
    ],
)
def test_enrich_bad_input(tiny_kg, genes, universe, kw, match) -> None:
    with pytest.raises(ValidationError, match=match):
        enrich(genes, universe, gene_sets(tiny_kg), **kw)


def test_uninformative_genes_rule(tiny_kg) -> None:
    names = ["RPL13", "RPS6KA1", "RPS4X", "RPLP0", "MT-ND1", "ENSG00000230021", "G1", "LINC01", "RPL36AL"]
    assert uninformative_genes(names).tolist() == [True, False, True, True, True, True, False, False, True]
    coding = protein_coding_genes(tiny_kg)
    assert "LINC01" not in coding and "G1" in coding
    assert uninformative_genes(["G1", "LINC01"], coding).tolist() == [False, True]


def test_enrich_prediction_side_by_side_and_agreement(tiny_kg) -> None:
    genes = [f"G{i}" for i in range(1, 11)] + ["X1", "X2", "MT-CO1"]
    # predicted and observed both put P1 (G1..G4) on top and P2 (G5..G9) at the bottom
    pred = np.array([5, 4, 3, 2, -5, -4, -3, -2, -1, 0.1, 0.2, 0, 9], dtype=float)
    obs = np.array([4, 5, 2, 3, -4, -5, -2, -3, -1, 0.3, 0, np.nan, 9], dtype=float)
    res = enrich_prediction(genes, pred, obs, gene_sets(tiny_kg), n_top=4, min_size=3, alpha=0.5)
    assert res.universe_size == 12  # MT-CO1 kept, X2 dropped (NaN observed)
    assert res.top[("predicted", "up")] == ["MT-CO1", "G1", "G2", "G3"]
    hidden = enrich_prediction(
        genes, pred, obs, gene_sets(tiny_kg), n_top=4, min_size=3, alpha=0.5, hide_uninformative=True
    )
    assert hidden.n_hidden == 1 and hidden.top[("predicted", "up")] == ["G1", "G2", "G3", "G4"]
    s = hidden.summary()
    assert s["up"]["shared_genes"] == 4 and s["down"]["shared_genes"] == 4
    both_up = hidden.agreement("up")
    assert "Pathway one" in set(both_up["term"])
    assert s["up"]["both"] == len(both_up)
    p1 = hidden.tables[("predicted", "up")].set_index("term").loc["Pathway one"]
    assert_allclose(p1["p"], hypergeom(p1["N"], p1["K"], p1["n"]).sf(p1["k"] - 1), rtol=1e-12)
    doc = hidden.to_dict()
    assert (
        doc["summary"] == s
        and doc["hide_rule"]
        and set(doc["top"])
        == {
            "predicted_up",
            "predicted_down",
            "observed_up",
            "observed_down",
        }
    )
    with pytest.raises(ValidationError, match="alpha must be"):
        enrich_prediction(genes, pred, obs, gene_sets(tiny_kg), alpha=1.5)
    with pytest.raises(ValidationError, match="must be 1-D and aligned"):
        enrich_prediction(genes[:3], pred, obs, gene_sets(tiny_kg))
