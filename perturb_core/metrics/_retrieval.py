"""LGR retrieval quality: overlap of a method's neighbours with the oracle's, per query."""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from perturb_core.errors import ValidationError

__all__ = ["retrieval_quality"]


def retrieval_quality(neighbours: ArrayLike, reference: ArrayLike) -> pd.DataFrame:
    """Per-query precision@k and reciprocal rank of a ranked neighbour list against a reference set.

    Definitions for one query with ranked neighbours N (entries >= 0, best first) and the
    reference set O (the oracle's k neighbours):

    - ``precision_at_k`` = |N ∩ O| / |N|;
    - ``mrr`` = 1 / i for the first position i (1-based) of N whose drug is in O, 0 if none
      (its mean over queries is the mean reciprocal rank).

    Both are NaN for a query with no neighbour or an empty reference.

    Args:
        neighbours: int (Q, K) drug indices, best first, -1 = none.
        reference: int (Q, K') drug indices of the reference set, -1 = none.

    Returns:
        DataFrame with one row per query and the columns ``precision_at_k, mrr``.

    Raises:
        ValidationError: not 2-D integer arrays with one row per query.
    """
    n = np.asarray(neighbours)
    o = np.asarray(reference)
    if n.ndim != 2 or o.ndim != 2 or n.shape[0] != o.shape[0]:
        raise ValidationError(
            f"neighbours {n.shape} and reference {o.shape} must be 2-D with one row per query"
        )
    if not (np.issubdtype(n.dtype, np.integer) and np.issubdtype(o.dtype, np.integer)):
        raise ValidationError(f"neighbours and reference must hold integer indices; got {n.dtype}, {o.dtype}")
    valid = n >= 0
    hit = valid & ((n[:, :, None] == o[:, None, :]) & (o[:, None, :] >= 0)).any(2)
    n_valid = valid.sum(1)
    defined = (n_valid > 0) & (o >= 0).any(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = hit.sum(1) / n_valid
    first = np.argmax(hit, axis=1)
    mrr = np.where(hit.any(1), 1.0 / (first + 1), 0.0)
    return pd.DataFrame(
        {
            "precision_at_k": np.where(defined, precision, np.nan),
            "mrr": np.where(defined, mrr, np.nan),
        }
    )
