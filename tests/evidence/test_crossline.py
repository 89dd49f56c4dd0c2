"""Cross-line evidence: the co_response relation from other lines' TRAINING labels, never a test label."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from perturb_core.errors import ValidationError
from perturb_core.evidence import (
    CROSSLINE_LABEL,
    CROSSLINE_RELATION,
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
