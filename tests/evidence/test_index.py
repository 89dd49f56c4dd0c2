"""The CORE index: the vectorised vote and shrinkage, leakage, gene frequency, the index kept on the label set."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from perturb_core.data.registry import load_labels
from perturb_core.evidence import VotingOptions, core_index, gene_frequency, predict_core_voting
from perturb_core.evidence._labels import _evidence_sums, _gatherable
from perturb_core.kg import load_graph
from perturb_core.metrics import macro_gene_auroc
from perturb_core.testing.graphs import (
    F_G1,
    F_G2,
    F_G3,
    PRIOR_PSEUDOCOUNT,
    TINY_ROWS,
    fixed,
    tiny_graph,
    tiny_labels,
)

A = PRIOR_PSEUDOCOUNT


def logit(p: float) -> float:
    return math.log(p / (1 - p))


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_vote_and_shrinkage_exact() -> None:
    labels, graph = tiny_labels(), tiny_graph()
    out = predict_core_voting(labels, graph, options=fixed(m=1.0))
    out = out.set_index("gene")
    # (A, G1): B +1 (pathway, 1), D +1 (interacts, 3), C -1 (pathway, 1)
    assert out.at["G1", "pos"] == pytest.approx(4.0)
    assert out.at["G1", "neg"] == pytest.approx(1.0)
    assert out.at["G1", "vote"] == pytest.approx(0.8)
    assert out.at["G1", "prior"] == pytest.approx(F_G1)
    assert out.at["G1", "score"] == pytest.approx((4 + F_G1) / (5 + 1))
    # (A, G2): D +1 (3), B -1 (1); C unmeasured
    assert out.at["G2", "vote"] == pytest.approx(0.75)
    assert out.at["G2", "unmeasured"] == pytest.approx(1.0)
    assert out.at["G2", "score"] == pytest.approx((3 + F_G2) / (4 + 1))
    # (A, G3): no training outcome anywhere -> no vote, score = prior
    assert math.isnan(out.at["G3", "vote"])
    assert out.at["G3", "score"] == pytest.approx(F_G3)


@pytest.mark.parametrize("m", [0.0, 0.3, 1.0, 10.0])
def test_shrinkage_strength(m: float) -> None:
    out = predict_core_voting(tiny_labels(), tiny_graph(), options=fixed(m=m)).set_index("gene")
    assert out.at["G1", "score"] == pytest.approx((4 + m * F_G1) / (5 + m))


def test_unmeasured_weight_and_logit_prior() -> None:
    u, m = 0.5, 1.0
    out = predict_core_voting(tiny_labels(), tiny_graph(), options=fixed(m=m, u=u)).set_index("gene")
    # (A, G2): pos 3, neg 1, unmeasured C (1) -> tot 4.5
    assert out.at["G2", "tot"] == pytest.approx(4.5)
    assert out.at["G2", "vote"] == pytest.approx(3 / 4.5)
    # prior on the vote's scale: 5 evidence perturbations, G2 measured under 3, u counts the other 2
    base_u = 4 / (8 + u * (5 * 3 - 8))
    pi = (1 + A * base_u) / (3 + u * 2 + A)
    shrunk = (3 + m * pi) / (4.5 + m)
    assert out.at["G2", "score"] == pytest.approx(sigmoid(logit(F_G2) + logit(shrunk) - logit(pi)))
    assert out.at["G2", "prior"] == pytest.approx(F_G2)


def test_own_label_is_never_evidence() -> None:
    """Scoring a training pair: changing that pair's own label does not change its score."""
    labels, graph = tiny_labels(), tiny_graph()
    pairs = pd.DataFrame({"pert": ["B"], "gene": ["G1"]})
    s1 = predict_core_voting(labels, graph, pairs, options=fixed())
    rows = [(p, g, 1 - y if (p, g) == ("B", "G1") else y, s) for p, g, y, s in TINY_ROWS]
    s2 = predict_core_voting(tiny_labels(rows), graph, pairs, options=fixed())
    # only the gene prior moves (B's label is part of G1's training frequency); the vote does not
    assert s1["pos"].iat[0] == pytest.approx(s2["pos"].iat[0])
    assert s1["vote"].iat[0] == pytest.approx(s2["vote"].iat[0])


def test_changing_test_labels_never_changes_predictions() -> None:
    labels, graph = tiny_labels(), tiny_graph()
    flipped = [(p, g, 1 - y if s == "test" else y, s) for p, g, y, s in TINY_ROWS]
    opts = VotingOptions(n_folds=2)
    a = predict_core_voting(labels, graph, options=opts)
    b = predict_core_voting(tiny_labels(flipped), graph, options=opts)
    assert_allclose(a["score"], b["score"])
    assert core_index(labels, graph, options=opts).model == dataclasses.replace(
        core_index(tiny_labels(flipped), graph, options=opts).model
    )


def test_gene_frequency_exact() -> None:
    gf = gene_frequency(tiny_labels())
    assert gf["G1"] == pytest.approx(3 / 5)
    assert gf["G2"] == pytest.approx(1 / 3)
    assert gf["G3"] == pytest.approx(4 / 8)  # no training pair: the global rate


# --------------------------------------------------------------------------- the index on the label set


def test_core_index_is_kept_on_the_label_set() -> None:
    labels, graph = tiny_labels(), tiny_graph()
    first = core_index(labels, graph, options=fixed())
    assert core_index(labels, graph, options=fixed()) is first  # equal options: the same object
    assert core_index(labels, graph, options=fixed(m=2.0)) is not first  # different options: another
    assert core_index(labels, graph, relations=["shared_pathway", "interacts"], options=fixed()) is not first
    assert core_index(labels, graph, include_leaky=True, options=VotingOptions(n_folds=2)) is not first
    assert core_index(labels, graph, options=fixed()) is first  # still there


def test_core_index_is_per_label_set_and_per_graph() -> None:
    labels, graph = tiny_labels(), tiny_graph()
    first = core_index(labels, graph, options=fixed())
    assert core_index(tiny_labels(), graph, options=fixed()) is not first  # another label set object
    other = core_index(labels, tiny_graph(), options=fixed())  # an equal graph, but another object
    assert other is not first and other.graph is not graph
    assert core_index(labels, graph, options=fixed()).graph is graph


def test_index_tables_are_built_once() -> None:
    index = core_index(tiny_labels(), tiny_graph(), options=fixed())
    assert index.test_scores() is index.test_scores()
    assert index.gene_auroc() is index.gene_auroc()
    assert index.context("A", "G1")["gene"] is index.context("A", "G1")["gene"]


LINES = ("k562", "rpe1", "hepg2", "jurkat")


@pytest.mark.realdata
def test_real_gene_frequency_is_half_per_gene_and_voting_beats_it(real_data: object) -> None:
    graph = load_graph(real_data)  # type: ignore[arg-type]
    for line in LINES:
        labels = load_labels(f"perturbqa-{line}", "de", real_data)  # type: ignore[arg-type]
        test = labels.table[labels.table["split"] == "test"]
        y, genes = test["label"].to_numpy(), test["gene"].astype(str).to_numpy()
        gf = gene_frequency(labels).reindex(genes).to_numpy()
        assert macro_gene_auroc(y, gf, genes).mean == pytest.approx(0.5, abs=1e-9)
        scores = core_index(labels, graph).test_scores()
        per_gene = macro_gene_auroc(y, scores["score"].to_numpy(), genes).mean
        assert per_gene >= 0.62, (line, per_gene)


@pytest.mark.realdata
def test_real_leakage_test_labels_never_change_predictions(real_data: object) -> None:
    graph = load_graph(real_data)  # type: ignore[arg-type]
    labels = load_labels("perturbqa-hepg2", "de", real_data)  # type: ignore[arg-type]
    t = labels.table.copy()
    test = (t["split"] == "test").to_numpy()
    t.loc[test, "label"] = (1 - t.loc[test, "label"]).astype(np.int8)
    flipped = dataclasses.replace(labels, table=t)
    a, b = core_index(labels, graph), core_index(flipped, graph)
    assert a is not b and a.model == b.model
    assert_allclose(a.test_scores()["score"], b.test_scores()["score"])


def test_real_scores_take_narrow_integer_codes(real_data: object) -> None:
    # a categorical's own codes are int16 on PerturbQA: the kernel offsets p * P + p' must not overflow
    graph = load_graph(real_data)  # type: ignore[arg-type]
    labels = load_labels("perturbqa-k562", "de", real_data)  # type: ignore[arg-type]
    index = core_index(labels, graph)
    t = labels.table[labels.table["split"] == "test"].head(2000)
    narrow = t["pert"].cat.codes.to_numpy(), t["gene"].cat.codes.to_numpy()
    assert narrow[0].dtype == np.int16
    wide = [c.astype(np.intp) for c in narrow]
    assert_allclose(index.score(*narrow)["score"], index.score(*wide)["score"])
    kernels = _gatherable([index._kernel])  # the learned model's features gather the same way
    assert_allclose(
        _evidence_sums(kernels, index.train, *narrow), _evidence_sums(kernels, index.train, *wide)
    )
