"""JSON-safe conversion of results."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from perturb_core.serialize import dumps, to_jsonable


def test_nested_numpy_pandas_and_nan() -> None:
    obj = {
        "a": np.float32(0.5),
        "b": [np.nan, np.inf, 1],
        "c": np.array([1, 2]),
        "d": pd.DataFrame({"x": [1.0, np.nan]}, index=pd.Index(["p", "q"], name="k")),
        "e": pd.Series({"u": np.int64(3)}),
        7: (True, None),
    }
    assert to_jsonable(obj) == {
        "a": 0.5,
        "b": [None, None, 1],
        "c": [1, 2],
        "d": [{"k": "p", "x": 1.0}, {"k": "q", "x": None}],
        "e": {"u": 3},
        "7": [True, None],
    }
    assert json.loads(dumps(obj))["b"] == [None, None, 1]
