"""JSON-safe views of results (NaN -> null, NumPy and pandas values as plain Python)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["dumps", "to_jsonable"]


def to_jsonable(obj: object) -> object:
    """Convert nested results to plain JSON types.

    Dicts, lists, tuples, NumPy arrays and scalars, DataFrames (as records) and Series (as
    dicts) are converted recursively; non-finite floats become ``None``; anything else that
    JSON cannot hold becomes its ``str``.
    """
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [to_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, pd.DataFrame):
        return to_jsonable(obj.reset_index().to_dict("records"))
    if isinstance(obj, pd.Series):
        return to_jsonable(obj.to_dict())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, str | int | float | bool) or obj is None:
        return obj
    if isinstance(obj, Path):
        return str(obj)
    return str(obj)


def dumps(obj: object, *, indent: int | None = 2) -> str:
    """JSON text of ``obj`` via :func:`to_jsonable` (strict: never emits NaN)."""
    return json.dumps(to_jsonable(obj), indent=indent, allow_nan=False)
