"""Input checks shared by the metric functions: every bad input raises one ValidationError here."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from perturb_core.errors import ValidationError


def _as_float(x: ArrayLike, name: str) -> NDArray[np.float64]:
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{name} must be numeric; could not convert it to float ({exc})") from exc
    return arr


def _same_shape(a: NDArray[Any], b: NDArray[Any], name_a: str, name_b: str) -> None:
    if a.shape != b.shape:
        raise ValidationError(
            f"{name_a} has shape {a.shape} but {name_b} has shape {b.shape}; "
            "they must match (one row per query/pair, one column per gene)"
        )


def _binary_labels(y: ArrayLike, name: str = "y") -> NDArray[np.float64]:
    arr = _as_float(y, name)
    if arr.ndim != 1:
        raise ValidationError(f"{name} must be 1-D (one label per pair); got shape {arr.shape}")
    if arr.size == 0:
        raise ValidationError(f"{name} is empty; pass at least one labelled pair")
    bad = ~((arr == 0) | (arr == 1))
    if bad.any():
        values = np.unique(arr[bad])[:5]
        raise ValidationError(
            f"{name} must hold only 0/1 (or False/True) labels; found {values.tolist()} "
            "(binarise the labels, e.g. y = (label == 'DE'))"
        )
    return arr


def _scores(score: ArrayLike, y: NDArray[np.float64], name: str = "score") -> NDArray[np.float64]:
    arr = _as_float(score, name)
    _same_shape(y, arr, "y", name)
    if not np.isfinite(arr).all():
        n_bad = int((~np.isfinite(arr)).sum())
        raise ValidationError(
            f"{name} has {n_bad} non-finite value(s) (NaN or inf); drop those pairs or impute a score"
        )
    return arr


def _probabilities(p: NDArray[np.float64], name: str = "p") -> None:
    if ((p < 0) | (p > 1)).any():
        raise ValidationError(
            f"{name} must be probabilities in [0, 1]; got values in [{p.min():.4g}, {p.max():.4g}] "
            "(use a calibrated probability, not a raw score)"
        )


def _groups(groups: ArrayLike, y: NDArray[np.float64]) -> tuple[NDArray[np.intp], pd.Index]:
    labels = np.asarray(groups)
    if labels.ndim != 1 or labels.shape != y.shape:
        raise ValidationError(
            f"groups has shape {labels.shape} but y has shape {y.shape}; they must match (one gene per pair)"
        )
    codes, uniques = pd.factorize(labels, sort=True)
    if (codes < 0).any():
        raise ValidationError(
            f"groups has {int((codes < 0).sum())} missing label(s) (None/NaN); every pair needs a gene"
        )
    return codes, pd.Index(uniques)


def _binary_task(
    y: ArrayLike, score: ArrayLike, groups: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.intp], pd.Index]:
    yy = _binary_labels(y)
    ss = _scores(score, yy)
    codes, uniques = _groups(groups, yy)
    return yy, ss, codes, uniques
