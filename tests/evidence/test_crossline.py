"""Cross-line evidence: co_response and same_knockdown from other lines' TRAINING labels, never a test label."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from perturb_core.errors import ValidationError
from perturb_core.evidence import (
    CROSSLINE_LABEL,
    CROSSLINE_RELATION,
    CROSSLINE_SAME,
    CROSSLINE_SAME_LABEL,
    SameKnockdown,
    VotingOptions,
    core_index,
    crossline_pair_features,
    explain,
)
from perturb_core.evidence._crossline import check_crossline, crossline_relation, crossline_similarity
from perturb_core.testing.graphs import OTHER_ROWS, tiny_graph, tiny_labels, tiny_other_line

OPTS = VotingOptions(n_folds=2)


def test_similarity_exact_and_test_perturbations_are_never_sources() -> None:
    labels, other = tiny_labels(), tiny_other_line()
    s = crossline_similarity(labels, [other])
    a, b, c, d, e = 0, 1, 2, 3, 4
    assert s[a, b] == pytest.approx(1.0)
    assert s[a, d] == pytest.approx(1 / math.sqrt(2))
    assert s[a, c] == 0.0
    # E responds exactly like A in the other line, but only in its TEST split there
    assert s[a, e] == 0.0 and s[e].sum() == 0.0
    assert np.diag(s).sum() == 0.0


def test_other_lines_test_labels_never_matter() -> None:
    labels = tiny_labels()
    shuffled = [(p, g, 1 - y if sp == "test" else y, sp) for p, g, y, sp in OTHER_ROWS]
    s1 = crossline_similarity(labels, [tiny_other_line()])
    s2 = crossline_similarity(labels, [tiny_other_line(shuffled)])
    assert_allclose(s1, s2)
    codes = np.array([0, 0, 4]), np.array([0, 1, 0])
    f1 = crossline_pair_features(labels, [tiny_other_line()], *codes)
    f2 = crossline_pair_features(labels, [tiny_other_line(shuffled)], *codes)
    for k in f1:
        assert_allclose(f1[k], f2[k])
    # (A, G1) is a training pair of the other line; (E, G1) only a test pair there
    assert list(f1["xl_same_measured"]) == [1, 1, 0] and list(f1["xl_same_pos"]) == [1, 1, 0]


def test_top_k_keeps_the_strongest_and_scales() -> None:
    s = crossline_similarity(tiny_labels(), [tiny_other_line()])
    rel = crossline_relation(s, 1)
    m = rel.matrix.toarray()
    assert (m[0] > 0).sum() == 1 and m[0, 1] > 0  # A keeps B only
    assert m.sum() / m.shape[0] == pytest.approx(1.0)
    assert rel.values is not None and rel.values[0, 1] == pytest.approx(1.0)


def test_check_crossline_refusals() -> None:
    labels = tiny_labels()
    with pytest.raises(ValidationError, match="own"):
        check_crossline(labels, [labels])
    with pytest.raises(ValidationError, match="task"):
        check_crossline(labels, [tiny_other_line(task="dir")])
    with pytest.raises(ValidationError, match="at least one"):
        check_crossline(labels, [])


def test_crossline_index_is_its_own_entry_and_single_line_is_unchanged() -> None:
    labels, graph, other = tiny_labels(), tiny_graph(), tiny_other_line()
    single = core_index(labels, graph, options=OPTS)
    xl = core_index(labels, graph, options=OPTS, crossline=[other])
    assert xl is not single
    assert core_index(labels, graph, options=OPTS) is single
    assert core_index(labels, graph, options=OPTS, crossline=[other]) is xl
    assert CROSSLINE_RELATION in xl.model.relations and CROSSLINE_RELATION not in single.model.relations
    assert xl.model.crossline_lines == ("tiny-other",) and xl.model.crossline_top_k is not None
    assert "crossline_top_k" in xl.model.to_dict() and "crossline_top_k" not in single.model.to_dict()
    fresh = core_index(tiny_labels(), graph, options=OPTS)
    assert fresh.model == single.model


def test_crossline_items_in_explain() -> None:
    labels, graph, other = tiny_labels(), tiny_graph(), tiny_other_line()
    opts = VotingOptions(weights=(("interacts", 1.0), ("shared_pathway", 1.0), (CROSSLINE_RELATION, 1.0)))
    ex = explain(labels, graph, perturbation="A", gene="G1", options=opts, crossline=[other])
    items = [*ex.positive, *ex.negative]
    xl = [it for it in items if CROSSLINE_RELATION in it.relations]
    assert xl and {it.perturbation for it in xl} <= {"B", "D"}
    b = next(it for it in items if it.perturbation == "B")
    assert CROSSLINE_RELATION in b.relations
    assert any(it.relation_label == CROSSLINE_LABEL for it in xl)
    edges = {e.relation for e in ex.graph.edges}
    assert CROSSLINE_RELATION in edges


def test_shuffled_test_labels_of_every_line_change_no_crossline_score() -> None:
    graph = tiny_graph()
    rng = np.random.default_rng(0)

    def shuffle(rows):
        df = pd.DataFrame(list(rows), columns=["p", "g", "y", "s"])
        t = df["s"] == "test"
        df.loc[t, "y"] = rng.permutation(1 - df.loc[t, "y"].to_numpy())
        return [tuple(r) for r in df.itertuples(index=False)]

    from perturb_core.testing.graphs import TINY_ROWS

    a = core_index(tiny_labels(), graph, options=OPTS, crossline=[tiny_other_line()])
    b = core_index(
        tiny_labels(shuffle(TINY_ROWS)), graph, options=OPTS, crossline=[tiny_other_line(shuffle(OTHER_ROWS))]
    )
    assert a.model == b.model
    assert_allclose(a.test_scores()["score"], b.test_scores()["score"])


def test_same_knockdown_masses_read_only_other_lines_training_labels() -> None:
    labels, other = tiny_labels(), tiny_other_line()
    same = SameKnockdown.of(labels, [other])
    # A..D are training perturbations of the other line, E (test there) and F (absent) are not
    assert same.scale == pytest.approx(4 / 6)
    pert, gene = np.array([0, 0, 1, 2, 4, 5]), np.array([0, 2, 2, 1, 0, 0])  # A-G1 A-G3 B-G3 C-G2 E-G1 F-G1
    sums = same.sums(pert, gene) * same.scale
    assert sums.tolist() == [[1, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0], [0, 0, 1, 1, 0, 0]]
    assert same.outcomes(0, 0) == [("OTHER", 1)] and same.outcomes(1, 2) == [("OTHER", None)]
    assert same.outcomes(4, 0) == []  # (E, G1) is a test pair of the other line: never evidence
    shuffled = [(p, g, 1 - y if s == "test" else y, s) for p, g, y, s in OTHER_ROWS]
    assert_allclose(
        SameKnockdown.of(labels, [tiny_other_line(shuffled)]).sums(pert, gene), same.sums(pert, gene)
    )


def test_same_knockdown_in_the_vote_and_in_explain() -> None:
    labels, graph, other = tiny_labels(), tiny_graph(), tiny_other_line()
    w = (("interacts", 1.0), ("shared_pathway", 1.0), (CROSSLINE_RELATION, 0.0), (CROSSLINE_SAME, 2.0))
    opts = VotingOptions(weights=w, shrinkage=1.0, unmeasured=0.0, n_folds=2, calibrate=False)
    with_same = core_index(labels, graph, options=opts, crossline=[other])
    no_same = dataclasses.replace(opts, weights=w[:3])
    without = core_index(labels, graph, options=no_same, crossline=[other], crossline_same=False)
    assert with_same.model.relations[-1] == CROSSLINE_SAME and with_same.model.weight(CROSSLINE_SAME) == 2.0
    assert CROSSLINE_SAME not in without.model.relations and without.same is None
    pert, gene = np.array([0, 0], dtype=np.int8), np.array([0, 2], dtype=np.int8)  # A-G1, A-G3
    a, b = with_same.score(pert, gene), without.score(pert, gene)
    weight = 2.0 / with_same.same.scale
    assert_allclose(a["pos"] - b["pos"], [weight, 0.0])  # (A, G1) responded in the other line
    assert_allclose(a["neg"] - b["neg"], [0.0, weight])  # (A, G3) was measured there, no response
    ex = explain(labels, graph, perturbation="A", gene="G1", index=with_same)
    item = next(it for it in ex.positive if it.relation == CROSSLINE_SAME)
    assert item.perturbation == "A" and item.label == 1 and item.weight == pytest.approx(weight)
    assert (
        item.path == ("gene:A", "gene:A@OTHER") and item.relation_label == f"{CROSSLINE_SAME_LABEL} (OTHER)"
    )
    assert ex.score == pytest.approx(float(a["score"].iat[0]))  # full support = batch score
    assert ex.mass["positive"] == pytest.approx(float(a["pos"].iat[0]))
    assert CROSSLINE_SAME in {e.relation for e in ex.graph.edges}
    kept = explain(labels, graph, perturbation="A", gene="G1", index=with_same, budget=1)
    assert [it.relation for it in kept.positive + kept.negative] == [CROSSLINE_SAME]  # the heaviest item


def test_same_knockdown_weight_is_fitted_and_zero_switches_it_off() -> None:
    labels, graph, other = tiny_labels(), tiny_graph(), tiny_other_line()
    fitted = core_index(labels, graph, options=OPTS, crossline=[other])
    assert fitted.model.weight(CROSSLINE_SAME) in OPTS.weight_grid
    assert "same_knockdown" in fitted.model.to_dict()["weights"]
    off = VotingOptions(weights=(("interacts", 1.0), (CROSSLINE_SAME, 0.0)), n_folds=2)
    idx = core_index(labels, graph, options=off, crossline=[other])
    no_same = dataclasses.replace(off, weights=off.weights[:1] if off.weights else None)
    base = core_index(labels, graph, options=no_same, crossline=[other], crossline_same=False)
    assert_allclose(idx.test_scores()["score"], base.test_scores()["score"])
    ex = explain(labels, graph, perturbation="A", gene="G1", index=idx)
    assert all(it.relation != CROSSLINE_SAME for _, it in ex.all_items())
