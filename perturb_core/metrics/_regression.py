"""LGR regression metrics: per-query agreement of predicted and measured expression deltas, and the gene filter."""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from perturb_core.errors import ValidationError
from perturb_core.metrics._validation import _as_float, _same_shape

__all__ = ["regression_metrics", "top_variable_genes"]

_MIN_GENE_OBS = 3  # top_variable_genes: fewer observations than this excludes a gene


def regression_metrics(pred: ArrayLike, truth: ArrayLike, *, mask: ArrayLike | None = None) -> pd.DataFrame:
    """Per-query regression metrics of predicted against measured expression deltas.

    A gene is used for a query when ``pred`` and ``truth`` are both non-NaN there and
    ``mask`` (if given) is True. Metrics of a query with fewer than 2 such genes are NaN.

    Definitions over the n valid genes of a query (x = prediction, y = truth):

    - ``pearson``: Pearson correlation; NaN if x or y is constant.
    - ``cosine``: Σxy / (‖x‖‖y‖), no centring; NaN if x or y is all zero.
    - ``mae``, ``mse``: mean absolute and mean squared error.
    - ``sign_accuracy``: fraction of genes with ``sign(x) == sign(y)``, where sign(0) = 0,
      so an exact zero matches only an exact zero.
    - ``r2``: R² of the ordinary least-squares regression of y on x, which equals r² when
      both vary. NaN for a constant prediction (the slope is undefined) or constant truth
      (no variance to explain).
    - ``r2_pred``: 1 − Σ(y − x)² / Σ(y − ȳ)², the share of the truth's variance the prediction
      itself explains (no refitted slope or intercept; can be negative); NaN for constant truth.

    Args:
        pred: predicted deltas, shape (Q, G), or (G,) for a single query.
        truth: measured deltas, same shape as ``pred``.
        mask: optional boolean mask of genes to use, shape (Q, G) or (G,) (the same genes
            for every query, e.g. the top variable genes).

    Returns:
        DataFrame with one row per query (index 0..Q-1) and the columns
        ``pearson, cosine, mae, mse, sign_accuracy, r2, r2_pred``.

    Raises:
        ValidationError: shapes differ, inputs are not numeric or contain ±inf, or the mask
            is not boolean or has the wrong shape.
    """
    x = _as_float(pred, "pred")
    y = _as_float(truth, "truth")
    _same_shape(x, y, "pred", "truth")
    if x.ndim == 1:
        x, y = x[None, :], y[None, :]
    if x.ndim != 2:
        raise ValidationError(f"pred must be 1-D (G,) or 2-D (Q, G); got shape {x.shape}")
    for name, arr in (("pred", x), ("truth", y)):
        if np.isinf(arr).any():
            raise ValidationError(f"{name} contains ±inf; use NaN for a missing gene, or clip the values")
    valid = ~(np.isnan(x) | np.isnan(y))
    if mask is not None:
        m = np.asarray(mask)
        if m.dtype != np.bool_:
            raise ValidationError(f"mask must be boolean; got dtype {m.dtype} (use e.g. deltas != 0)")
        if m.shape not in (x.shape, (x.shape[1],)):
            raise ValidationError(
                f"mask has shape {m.shape}; expected {x.shape} or ({x.shape[1]},) to match pred"
            )
        valid = valid & m

    n = valid.sum(axis=1)
    xs, ys = np.where(valid, x, 0.0), np.where(valid, y, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        nf = n.astype(np.float64)
        xc = np.where(valid, x - (xs.sum(axis=1) / nf)[:, None], 0.0)
        yc = np.where(valid, y - (ys.sum(axis=1) / nf)[:, None], 0.0)
        sxx, syy, sxy = (xc * xc).sum(1), (yc * yc).sum(1), (xc * yc).sum(1)
        # constant vectors are found exactly (max == min), not from round-off in sxx
        x_const = np.where(valid, x, -np.inf).max(1) == np.where(valid, x, np.inf).min(1)
        y_const = np.where(valid, y, -np.inf).max(1) == np.where(valid, y, np.inf).min(1)
        pearson = np.where(x_const | y_const, np.nan, sxy / np.sqrt(sxx * syy))
        pearson = np.clip(pearson, -1.0, 1.0)
        nx, ny = np.sqrt((xs * xs).sum(1)), np.sqrt((ys * ys).sum(1))
        cosine = np.clip(np.where((nx > 0) & (ny > 0), (xs * ys).sum(1) / (nx * ny), np.nan), -1.0, 1.0)
        diff = xs - ys
        mae = np.abs(diff).sum(1) / nf
        mse = (diff * diff).sum(1) / nf
        sign_accuracy = (valid & (np.sign(xs) == np.sign(ys))).sum(1) / nf
        r2_pred = np.where(y_const, np.nan, 1.0 - (diff * diff).sum(1) / syy)
    out = pd.DataFrame(
        {
            "pearson": pearson,
            "cosine": cosine,
            "mae": mae,
            "mse": mse,
            "sign_accuracy": sign_accuracy,
            "r2": pearson**2,
            "r2_pred": r2_pred,
        }
    )
    out.loc[n < 2, :] = np.nan
    return out


def top_variable_genes(deltas: ArrayLike, n: int = 2000) -> NDArray[np.intp]:
    """Indices of the ``n`` genes whose deltas vary most across rows, ignoring NaN.

    Variance is the sample variance (ddof=1) over a gene's non-NaN rows; genes observed in
    fewer than 3 rows are never chosen. Ties keep the lower gene index first.

    Args:
        deltas: training deltas, shape (N, G), NaN = gene missing in that row.
        n: how many genes to return; fewer come back if fewer genes are eligible.

    Returns:
        Gene (column) indices, most variable first, shape (min(n, eligible),).

    Raises:
        ValidationError: ``deltas`` is not 2-D numeric or contains ±inf, or ``n`` < 1.
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValidationError(f"n must be a positive integer; got {n!r}")
    d = _as_float(deltas, "deltas")
    if d.ndim != 2:
        raise ValidationError(f"deltas must be 2-D (rows, genes); got shape {d.shape}")
    if np.isinf(d).any():
        raise ValidationError("deltas contains ±inf; use NaN for a missing gene, or clip the values")
    obs = ~np.isnan(d)
    count = obs.sum(axis=0)
    eligible = count >= _MIN_GENE_OBS
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(obs, d, 0.0).sum(axis=0) / count
        centred = np.where(obs, d - mean, 0.0)
        var = (centred * centred).sum(axis=0) / (count - 1)
    var = np.where(eligible, var, -np.inf)
    order = np.argsort(-var, kind="stable")
    return order[: min(int(n), int(eligible.sum()))]
