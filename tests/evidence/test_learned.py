"""CORE-Learned: features from training evidence only, contributions, and no test label reaching any method."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from numpy.testing import assert_allclose

from perturb_core.data.registry import LabelSet, load_labels
from perturb_core.errors import ValidationError
from perturb_core.evaluate.core import evaluate_core
from perturb_core.evidence import LearnedOptions, VotingOptions, core_index, core_learned, learned_index
from perturb_core.evidence._learned import _Evidence, _features
from perturb_core.kg import load_graph
from perturb_core.testing.graphs import tiny_graph, tiny_labels, tiny_other_line

FAST = LearnedOptions(grid=((0.1, 20, 7),))


def test_features_exact_on_the_tiny_set() -> None:
    labels, graph = tiny_labels(), tiny_graph()
    idx = core_index(labels, graph, options=VotingOptions(n_folds=2))
    from perturb_core.evidence._learned import _feature_names

    names = _feature_names(idx)
    x = _features(idx, _Evidence.of(idx.train, 5), np.array([0]), np.array([0]))
    assert x.shape == (1, len(names))
    row = dict(zip(names, x[0], strict=True))
    # (A, G1): the pathway relation links A to B (+) and C (-), scaled to mean row sum 1
    rel = idx.relation_set.relations["shared_pathway"].matrix.toarray()
    assert row["shared_pathway: positive mass"] == pytest.approx(rel[0, 1])
    assert row["shared_pathway: negative mass"] == pytest.approx(rel[0, 2])
    assert row["shared_pathway: positive fraction"] == pytest.approx(rel[0, 1] / (rel[0, 1] + rel[0, 2]))
    assert row["gene: training pairs measured"] == 5


def test_learned_options_are_checked() -> None:
    with pytest.raises(ValidationError):
        LearnedOptions(grid=())
    with pytest.raises(ValidationError):
        LearnedOptions(gene_neighbours=0)


def test_learned_on_tiny_fixtures_runs_and_explains() -> None:
    labels, graph = tiny_labels(), tiny_graph()
    idx = core_index(labels, graph, options=VotingOptions(n_folds=2), crossline=[tiny_other_line()])
    model = core_learned(idx, FAST)
    assert core_learned(idx, FAST) is model
    s = model.score(np.array([0, 0]), np.array([0, 1]))
    assert ((s["score"] > 0) & (s["score"] < 1)).all()
    c = model.contributions(0, 0)
    assert list(c.columns) == ["feature", "value", "reference", "contribution"]
    assert set(c["feature"]) == set(model.features)
    assert any(f.startswith("cross-line") for f in model.features)
    assert any(f.startswith("co_response") for f in model.features)
    d = model.to_dict()
    assert d["crossline"] is True and d["voting"]["crossline_lines"] == ["tiny-other"]


def test_a_query_is_scored_under_each_folds_evidence_set_as_the_training_rows_were() -> None:
    labels, graph = tiny_labels(), tiny_graph()
    idx = core_index(labels, graph, options=VotingOptions(n_folds=2))
    model = core_learned(idx, FAST)
    assert len(model.evidence) == 2
    # each evidence set is the training labels minus one fold: together they hold every training
    # perturbation, and each leaves some out
    held = [set(np.flatnonzero(ev.lab.evidence)) for ev in model.evidence]
    assert set().union(*held) == set(np.flatnonzero(idx.train.evidence))
    assert all(len(h) < idx.train.n_evidence for h in held)
    p, g = np.array([0, 0, 1]), np.array([0, 1, 0])
    per_set = [model._predict(_features(idx, ev, p, g)) for ev in model.evidence]
    assert_allclose(model.score(p, g)["score"], np.mean(per_set, axis=0))
    c = model.contributions(0, 1)
    values = np.vstack([_features(idx, ev, p[1:2], g[1:2]) for ev in model.evidence])
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning, match="empty slice"):
        mean = np.nanmean(values, axis=0)  # a feature with no evidence under any set stays NaN
    expected = dict(zip(model.features, mean, strict=True))
    for f, v in zip(c["feature"], c["value"], strict=True):
        assert v == pytest.approx(expected[f], nan_ok=True)
    assert "2 folds' evidence sets" in model.to_dict()["scored_under"]


def _shuffled(labels: LabelSet, seed: int) -> LabelSet:
    t = labels.table.copy()
    test = (t["split"] == "test").to_numpy()
    t.loc[test, "label"] = np.random.default_rng(seed).permutation(t.loc[test, "label"].to_numpy())
    # also flip, so that a shuffle that happens to keep a label still changes something
    t.loc[test, "label"] = (1 - t.loc[test, "label"]).astype(np.int8)
    return dataclasses.replace(labels, table=t)


@pytest.mark.realdata
def test_real_shuffled_test_labels_change_no_score_of_any_method(real_data: object) -> None:
    """Shuffle (and flip) the test labels of EVERY PerturbQA line: no score of any non-LLM method moves."""
    graph = load_graph(real_data)  # type: ignore[arg-type]
    lines = ("hepg2", "k562", "rpe1", "jurkat")
    sets = [load_labels(f"perturbqa-{x}", "de", real_data) for x in lines]  # type: ignore[arg-type]
    shuffled = [_shuffled(s, i) for i, s in enumerate(sets)]
    methods = ["gene_frequency", "core_voting", "core_voting_crossline"]
    a = evaluate_core(sets[0], graph, methods=methods, n_boot=1, crossline=sets[1:])
    b = evaluate_core(shuffled[0], graph, methods=methods, n_boot=1, crossline=shuffled[1:])
    for m in methods:
        sa = a.per_pair.loc[a.per_pair["method"] == m, "score"].to_numpy()
        sb = b.per_pair.loc[b.per_pair["method"] == m, "score"].to_numpy()
        assert_allclose(sa, sb, err_msg=m)
    assert a.metrics["core_voting_crossline"]["auroc"] != b.metrics["core_voting_crossline"]["auroc"]
    # the learned models (cheap settings; the same code path as core_learned / core_learned_crossline)
    for xl in (False, True):
        ia = learned_index(sets[0], graph, crossline=sets[1:] if xl else None)
        ib = learned_index(shuffled[0], graph, crossline=shuffled[1:] if xl else None)
        assert ia.model == ib.model
        t = ia.test_scores()
        codes = sets[0].pair_codes(t["pert"].astype(str), t["gene"].astype(str))
        la, lb = core_learned(ia, FAST), core_learned(ib, FAST)
        assert la.setting == lb.setting and la.cv == lb.cv
        assert_allclose(la.score(*codes)["score"], lb.score(*codes)["score"], err_msg=f"crossline={xl}")
