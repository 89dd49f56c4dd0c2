"""Aggregation of neighbour deltas (uniform and rank-weighted) checked by hand, on tiny data."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from perturb_core.data.registry import SignatureDataset
from perturb_core.errors import UnknownNameError
from perturb_core.retrieval import (
    AGGREGATION_LABELS,
    AGGREGATIONS,
    LGRIndex,
    SelectOptions,
    aggregate,
    check_aggregation,
    make_split,
    select_neighbours,
    split_data,
)


def test_aggregate_uniform_and_rank_weighted_by_hand(tiny: SignatureDataset, index: LGRIndex) -> None:
    idx = index
    split = make_split(tiny, "open-world")
    sd = split_data(idx, split)
    c, d = np.array([0]), np.array([0])  # C1, Afatinib; pool = the other 4 drugs of C1
    sel = select_neighbours(sd, c, d, "oracle", SelectOptions(k=2))
    order = sel.order[0][sel.order[0] >= 0]
    y = sd.deltas[0, order].astype(np.float64)
    assert_allclose(aggregate(sd, c, sel, "mean")[0], np.nanmean(y, axis=0))
    w = np.array([1.0, 0.5])[:, None] * ~np.isnan(y)
    assert_allclose(aggregate(sd, c, sel, "rank_weighted")[0], np.nansum(w * np.nan_to_num(y), 0) / w.sum(0))
    # oracle picks the two drugs most correlated with the truth
    truth = sd.deltas[0, 0].astype(np.float64)
    ok = ~np.isnan(truth)
    r = {
        e: np.corrcoef(
            truth[ok & ~np.isnan(sd.deltas[0, e])], sd.deltas[0, e][ok & ~np.isnan(sd.deltas[0, e])]
        )[0, 1]
        for e in range(1, 5)
    }
    assert list(order) == sorted(r, key=r.get, reverse=True)[:2]


def test_aggregation_names_labels_and_wording(tiny: SignatureDataset, index: LGRIndex) -> None:
    assert AGGREGATIONS == ("mean", "rank_weighted", "residual") and tuple(AGGREGATION_LABELS) == AGGREGATIONS
    assert AGGREGATION_LABELS["mean"] == "plain mean of the neighbours' deltas (paper)"
    with pytest.raises(TypeError):
        AGGREGATION_LABELS["mean"] = "x"  # type: ignore[index]
    assert check_aggregation("Rank-Weighted") == "rank_weighted"
    sd = split_data(index, make_split(tiny, "open-world"))
    c, d = np.array([0]), np.array([0])
    sel = select_neighbours(sd, c, d, "random", SelectOptions(k=3))
    assert_allclose(aggregate(sd, c, sel, "RANK_WEIGHTED"), aggregate(sd, c, sel, "rank_weighted"))  # type: ignore[arg-type]
    with pytest.raises(
        UnknownNameError, match="^unknown aggregation 'median'; valid: mean, rank_weighted, residual$"
    ):
        aggregate(sd, c, sel, "median")  # type: ignore[arg-type]


def test_a_whole_pool_fallback_is_averaged_uniformly_even_rank_weighted(
    tiny: SignatureDataset, index: LGRIndex
) -> None:
    sd = split_data(index, make_split(tiny, "open-world"))
    myst = index.drug_index("Mysterium")  # no structure: chem_knn cannot rank it
    c, d = np.array([0]), np.array([myst])
    sel = select_neighbours(sd, c, d, "chem_knn", SelectOptions(k=2))
    assert sel.n_used[0] == 4
    assert_allclose(aggregate(sd, c, sel, "rank_weighted"), aggregate(sd, c, sel, "mean"))
