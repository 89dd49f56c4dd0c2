"""Splits and candidate pools (seeded, leak-free), and the split data kept on the index, on tiny data."""

from __future__ import annotations

import numpy as np
import pytest

from perturb_core.data.registry import SignatureDataset
from perturb_core.errors import UnknownNameError, ValidationError
from perturb_core.retrieval import (
    REGIME_LABELS,
    REGIMES,
    LGRIndex,
    candidate_pool,
    check_regime,
    lgr_index,
    make_split,
    query_split,
    split_data,
)
from perturb_core.testing.signatures import tiny_dataset, tiny_drugs, tiny_graph


def test_splits_are_seeded_disjoint_and_pools_hold_no_test_information(
    tiny: SignatureDataset, index: LGRIndex
) -> None:
    for regime in REGIMES:
        a = make_split(tiny, regime, seed=3, test_fraction=0.4)
        b = make_split(tiny, regime, seed=3, test_fraction=0.4)
        assert a.split_id == b.split_id and a.held_out == b.held_out
        if regime != "open-world":
            assert not (a.train & a.test).any()
            assert a.held_out and len(a.split_id) == 12
        present = a.train | a.test
        assert present.sum() == 14
        idx = index
        for ci, di in zip(*np.nonzero(a.test), strict=True):
            pool = candidate_pool(tiny, a.cell_lines[ci], a.drugs[di], split=a)
            assert a.drugs[di] not in pool
            if regime == "unseen-drug":
                assert not set(pool) & set(a.held_out)
            assert all(idx.rows[ci, idx.drug_index(p)] >= 0 for p in pool)
    assert (
        make_split(tiny, "unseen-drug", seed=1).held_out != make_split(tiny, "unseen-drug", seed=2).held_out
        or True
    )


def test_query_split_and_pool_errors(tiny: SignatureDataset, index: LGRIndex) -> None:
    s = query_split(tiny, "unseen-drug", "c1", "afatinib")
    assert s.held_out == ("Afatinib",) and not s.train[:, 0].any() and s.test.sum() == 1
    s = query_split(tiny, "unseen-cell-line", "C2", "Trametinib")
    assert s.held_out == ("C2",) and not s.train[1].any()
    assert candidate_pool(tiny, "C3", "Afatinib") == ["Binimetinib", "Mysterium", "Trametinib"]
    with pytest.raises(ValidationError, match="'Tucidinostat' was not profiled in C3"):
        candidate_pool(tiny, "C3", "Tucidinostat")
    with pytest.raises(UnknownNameError, match="closest known: Afatinib"):
        candidate_pool(tiny, "C1", "afatnib")
    with pytest.raises(ValidationError, match="unknown regime"):
        make_split(tiny, "unseen-everything")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="test_fraction"):
        make_split(tiny, "unseen-drug", test_fraction=1.5)


def test_open_world_queries_share_their_split_tensor(tiny: SignatureDataset, index: LGRIndex) -> None:
    idx = index
    a = split_data(idx, query_split(tiny, "open-world", "C1", "Afatinib"))
    b = split_data(idx, query_split(tiny, "open-world", "C2", "Trametinib"))
    assert a.split.split_id != b.split.split_id  # two queries ...
    assert a.deltas is b.deltas and a.baseline_data is b.baseline_data  # ... one tensor and baseline cache
    assert not a.deltas.flags.writeable
    # the evaluation split of the open world has the same training pairs; other regimes do not
    assert split_data(idx, make_split(tiny, "open-world")).baseline_data is a.baseline_data
    c = split_data(idx, query_split(tiny, "unseen-drug", "C1", "Afatinib"))
    assert c.deltas is not a.deltas and not c.baseline_data.leave_one_out
    assert split_data(idx, query_split(tiny, "unseen-drug", "C2", "Afatinib")).deltas is c.deltas


def test_regime_names_labels_and_check_choice_wording() -> None:
    assert REGIMES == ("unseen-drug", "unseen-cell-line", "open-world")
    assert set(REGIME_LABELS) == set(REGIMES) and REGIME_LABELS["unseen-drug"].startswith("unseen drug")
    with pytest.raises(TypeError):
        REGIME_LABELS["open-world"] = "x"  # type: ignore[index]
    assert check_regime("Unseen_Drug") == "unseen-drug"
    with pytest.raises(
        UnknownNameError,
        match="^unknown regime 'closed-world'; valid: unseen-drug, unseen-cell-line, open-world$",
    ):
        check_regime("closed-world")


def test_a_regime_in_any_spelling_gives_the_canonical_split(tiny: SignatureDataset) -> None:
    a, b = make_split(tiny, "Open World"), make_split(tiny, "open-world")
    assert a.regime == "open-world" and a.split_id == b.split_id
    assert query_split(tiny, "UNSEEN-DRUG", "C1", "Afatinib").regime == "unseen-drug"


def test_split_data_is_kept_on_the_index_within_its_bounds(tiny: SignatureDataset) -> None:
    index = lgr_index(tiny_dataset(), drugs=tiny_drugs(), graph=tiny_graph())  # fresh memos
    split = make_split(tiny, "unseen-drug", seed=1)
    first = split_data(index, split)
    assert split_data(index, split) is first and len(index.split_memo) == 1
    assert split_data(index, split, n_genes=3).deltas.shape[2] == 3  # another gene count: another entry
    assert len(index.split_memo) == 2 and len(index.tensor_memo) == 2
    assert first.baseline_data is split_data(index, split).baseline_data
    assert len(index.baseline_memo) == 1 and len(index.reference_memo) == 1
    for memo in (index.split_memo, index.tensor_memo, index.baseline_memo):
        assert memo.maxsize == 8
    assert index.reference_memo.maxsize == 4
    for i in range(1, 12):  # more query splits than the bound: the oldest are dropped
        split_data(index, query_split(tiny, "open-world", "C1", tiny.drugs("C1")[i % 5]))
    assert len(index.split_memo) <= 8


def test_split_data_rejects_bad_gene_counts(tiny: SignatureDataset, index: LGRIndex) -> None:
    with pytest.raises(ValidationError, match="n_genes must be an integer >= 1"):
        split_data(index, make_split(tiny, "open-world"), n_genes=0)
