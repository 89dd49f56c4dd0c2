"""Per-condition DE calls: |delta| threshold plus a cell-level Welch t-test, combined over batches."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy import stats

__all__ = ["DE_DEFINITION", "de_calls"]

DE_DEFINITION = (
    "DE call per (condition, gene): +1 up / -1 down when |delta| >= de_threshold AND the Benjamini-Hochberg "
    "q-value (over the condition's genes) < de_alpha, else 0. The test: per batch, Welch's t-test of each "
    "cell's log1p(1e4 * count / cell library) between the treated cells and the same batch's control cells of "
    "the cell line; per-batch t converted to signed z and combined by Stouffer's method weighted by "
    "sqrt(treated cells). Cells are treated as independent (a simple test: it ignores any within-well "
    "correlation, so q-values are optimistic for large groups; the |delta| threshold guards effect size)"
)


def de_calls(
    n_cells: np.ndarray,
    log_sums: np.ndarray,
    log_squares: np.ndarray,
    treated: np.ndarray,
    control: np.ndarray,
    condition: np.ndarray,
    n_conditions: int,
    delta: np.ndarray,
    *,
    threshold: float,
    alpha: float,
) -> tuple[np.ndarray, np.ndarray]:
    """DE calls and q-values per condition (see :data:`DE_DEFINITION`).

    Args:
        n_cells, log_sums, log_squares: per group: cells, sums of per-cell log-normalised values and squares.
        treated, control: group rows of each treated group and its matched control.
        condition: condition code of each treated group.
        n_conditions: number of conditions.
        delta: (conditions, genes) deltas (NaN = masked; masked genes get no call).
        threshold: minimum |delta|; alpha: q-value cutoff.

    Returns:
        ``calls`` int8 (conditions, genes) in {-1, 0, 1} and ``qvalues`` float32 (NaN where untested).
    """
    n = n_cells.astype(np.float64)[:, None]
    mean = log_sums / n
    with np.errstate(invalid="ignore", divide="ignore"):
        var = np.maximum(log_squares - n * mean**2, 0.0) / (n - 1)
        vt, vc = var[treated] / n[treated], var[control] / n[control]
        se2 = vt + vc
        t = (mean[treated] - mean[control]) / np.sqrt(se2)
        df = se2**2 / (vt**2 / (n[treated] - 1) + vc**2 / (n[control] - 1))
    ok = np.isfinite(t) & np.isfinite(df) & (se2 > 0)
    p_one = np.where(ok, stats.t.sf(np.abs(np.where(ok, t, 0.0)), np.where(ok, df, 1.0)), np.nan)
    z = np.sign(t) * stats.norm.isf(np.clip(p_one, 1e-300, 0.5))
    w = np.sqrt(n_cells[treated].astype(np.float64))
    W = sp.csr_matrix((w, (condition, np.arange(len(treated)))), shape=(n_conditions, len(treated)))
    used = ok.astype(np.float64)
    num = np.asarray(W @ np.where(ok, z, 0.0))
    den = np.sqrt(np.asarray(W.multiply(W) @ used))
    with np.errstate(invalid="ignore", divide="ignore"):
        zc = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    p = 2 * stats.norm.sf(np.abs(zc))
    p[np.isnan(delta)] = np.nan
    q = _bh(p)
    calls = np.where(
        (q < alpha) & (np.abs(np.nan_to_num(delta)) >= threshold), np.sign(np.nan_to_num(delta)), 0
    )
    return calls.astype(np.int8), q.astype(np.float32)


def _bh(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg q-values per row, over that row's non-NaN p-values."""
    q = np.full_like(p, np.nan)
    for i, row in enumerate(p):
        ok = np.flatnonzero(~np.isnan(row))
        if not len(ok):
            continue
        order = ok[np.argsort(row[ok])]
        ranked = row[order] * len(ok) / np.arange(1, len(ok) + 1)
        q[i, order] = np.minimum(np.minimum.accumulate(ranked[::-1])[::-1], 1.0)
    return q
