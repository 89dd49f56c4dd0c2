"""CMap WTCS against hand-computed values and a brute-force running sum; parsing and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from perturb_core.errors import ValidationError
from perturb_core.explore import (
    connectivity,
    enrichment_scores,
    parse_gene_list,
    parse_ranked_list,
    resolve_genes,
    wtcs,
)


def brute_force_es(values: np.ndarray, hits: set[int]) -> tuple[float, float]:
    """GSEA's weighted running sum walked gene by gene (p = 1): its maximum and minimum (ES is the
    one farther from zero)."""
    order = [i for i in np.argsort(-values, kind="stable") if np.isfinite(values[i])]
    n_r = sum(abs(values[i]) for i in order if i in hits)
    n_miss = len(order) - sum(1 for i in order if i in hits)
    run, hi, lo = 0.0, 0.0, 0.0
    for i in order:
        run += abs(values[i]) / n_r if i in hits else -1.0 / n_miss
        hi, lo = max(hi, run), min(lo, run)
    return hi, lo


def test_wtcs_hand_computed(tiny_signatures) -> None:
    # row 1, ranked A B C H D E F (values 3 2 1 .5 -1 -2 -3): up {A, C}: running sum 0.75 after A,
    # 0.75 - 1/5 + 1/4 = 0.8 after C -> ES_up = 0.8; down {E, F} sits at the bottom: the sum falls to
    # -5/5 = -1 just before E -> ES_down = -1; WTCS = (0.8 - (-1)) / 2 = 0.9.
    # row 2 is row 1 reversed: -0.9. Row 3 (L2, H not measured, N = 6): ES_up 0.75, ES_down -0.75.
    res = connectivity(tiny_signatures, ["A", "C"], ["E", "F"])
    t = res.table.set_index(["cell_line", "drug"])
    assert_allclose(t.loc[("L1", "Mimic"), ["es_up", "es_down", "score"]].astype(float), [0.8, -1.0, 0.9])
    assert_allclose(t.loc[("L1", "Reverse"), ["es_up", "es_down", "score"]].astype(float), [-0.8, 1.0, -0.9])
    assert_allclose(t.loc[("L2", "Mimic"), ["es_up", "es_down", "score"]].astype(float), [0.75, -0.75, 0.75])
    assert list(res.table["score"]) == sorted(res.table["score"], reverse=True)  # best first, reversals last
    by_drug = res.by_drug().set_index("drug")
    assert_allclose(by_drug.loc["Mimic", "mean_score"], (0.9 + 0.75) / 2)
    assert by_drug.loc["Mimic", "n_lines"] == 2


def test_enrichment_scores_match_brute_force() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        n = int(rng.integers(5, 40))
        values = rng.normal(size=n)
        values[rng.random(n) < 0.2] = np.nan
        hits = set(rng.choice(n, size=int(rng.integers(1, 5)), replace=False).tolist())
        hits = {h for h in hits if np.isfinite(values[h])}
        if not hits or len(hits) == np.isfinite(values).sum():
            continue
        ranks = np.argsort(np.argsort(-np.where(np.isfinite(values), values, -np.inf), kind="stable"))
        idx = sorted(hits)
        es = enrichment_scores(
            ranks[idx][None, :].astype(float), values[idx][None, :], np.array([np.isfinite(values).sum()])
        )
        hi, lo = brute_force_es(values, hits)
        if abs(hi + lo) < 1e-9:  # an exact tie: either sign is the largest deviation
            assert_allclose(abs(es[0]), hi, atol=1e-12)
        else:
            assert_allclose(es[0], hi if hi > -lo else lo, atol=1e-12)


def test_wtcs_rules() -> None:
    assert_allclose(wtcs(np.array([0.5, 0.5, -0.4]), np.array([-0.3, 0.2, 0.6])), [0.4, 0.0, -0.5])
    assert_allclose(wtcs(np.array([0.5]), None), [0.5])  # up list only
    assert_allclose(wtcs(None, np.array([-0.7])), [0.7])  # down list only
    with pytest.raises(ValidationError):
        wtcs(None, None)


def test_one_cell_line_and_unknown_genes_listed(tiny_signatures) -> None:
    res = connectivity(tiny_signatures, ["a", "ENSG00000000002", "NOPE"], [], cell_line="l 2")
    assert res.cell_line == "L2" and set(res.table["cell_line"]) == {"L2"}
    assert res.query.up == ("A", "C") and res.query.unknown == ["NOPE"]
    doc = res.to_dict()
    assert doc["unknown_genes"] == ["NOPE"] and doc["score"] == "wtcs"
    assert np.isnan(res.table["es_down"]).all()


@pytest.mark.parametrize(
    ("up", "down", "match"),
    [
        ([], [], "both gene lists are empty"),
        (["X1", "X2"], ["X3"], "none of the 3 genes is measured in dataset 'tiny': X1, X2, X3"),
        (["A"], ["a"], "in both the up and the down list: A"),
    ],
)
def test_bad_queries(tiny_signatures, up, down, match) -> None:
    with pytest.raises(ValidationError, match=match):
        resolve_genes(tiny_signatures, up, down)


def test_parse_lists() -> None:
    assert parse_gene_list("EGR1, fos;JUN\n# comment\n\tMYC EGR1  # again") == ["EGR1", "fos", "JUN", "MYC"]
    assert parse_ranked_list("A\nB\nC\nD\nE", n=2) == (["A", "B"], ["D", "E"])
    assert parse_ranked_list("gene\tscore\nA\t-1\nB\t2\nC\t0.5\nD\t3", n=1) == (["D"], ["A"])
    assert parse_ranked_list("A\nB\nC", n=5) == (["A"], ["C"])  # at most half each
    with pytest.raises(ValidationError, match="line 3 of the ranked list: score 'x'"):
        parse_ranked_list("A 1\nB 2\nC x")


def test_dataset_without_rank_layer_is_ranked_over_its_columns(tiny_signatures) -> None:
    from perturb_core.data.registry import SignatureDataset

    a = tiny_signatures.adata.copy()
    del a.layers["rank"]
    bare = SignatureDataset("bare", a)
    with_rank = connectivity(tiny_signatures, ["A", "C"], ["E", "F"]).table
    without = connectivity(bare, ["A", "C"], ["E", "F"]).table
    assert_allclose(without["score"], with_rank["score"])  # every gene of the lists is a column here
