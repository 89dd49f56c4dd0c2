"""The pure figure builders of the gene view and the signature query (no Streamlit)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pages._explore_figures import connectivity_bars, response_heatmap


def test_response_heatmap_keeps_both_ends_and_centres_on_zero() -> None:
    m = pd.DataFrame(
        np.arange(60, dtype=float).reshape(30, 2) - 30,
        index=[f"d{i}" for i in range(30)],
        columns=["L1", "L2"],
    )
    m.iloc[0, 0] = np.nan
    fig = response_heatmap(m, gene="EGR1", units="rank score z", max_drugs=5)
    hm = fig.data[0]
    assert list(hm.y) == [f"d{i}" for i in (0, 1, 2, 3, 4, 25, 26, 27, 28, 29)]
    assert hm.zmid == 0 and hm.zmin == -hm.zmax and "EGR1" in fig.layout.title.text


def test_connectivity_bars_signs_and_order() -> None:
    t = pd.DataFrame(
        {"drug": ["a", "b", "c"], "mean_score": [-0.5, 0.9, 0.1], "min_score": [-0.6, 0.8, 0.0],
         "max_score": [-0.4, 1.0, 0.2], "n_lines": [2, 2, 2], "moa": ["x", "MEK inhibitor", "y"]}
    )  # fmt: skip
    fig = connectivity_bars(t)
    bar = fig.data[0]
    assert list(bar.y) == ["b", "c", "a"] and list(bar.marker.color) == ["#D55E00", "#D55E00", "#0072B2"]
