"""Pseudobulk sums -> control-matched log1p normalised deltas, averaged over batches."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from perturb_core.errors import DataError
from perturb_core.pseudobulk._de import de_calls

__all__ = ["Deltas", "pseudobulk_deltas"]


@dataclass(frozen=True)
class Deltas:
    """Deltas per condition.

    Attributes:
        conditions: one row per treated condition: ``cell_line``, ``drug`` (and ``dose``),
            ``n_cells`` (treated cells), ``n_control_cells`` (their matched controls),
            ``n_batches`` (batches that measured it).
        values: (conditions, genes) float32 deltas, NaN = masked (too few counts in every batch).
        per_batch: one row per (batch, condition) with its ``row`` in ``values``-space
            (``condition``), cells and control cells.
        de: int8 (conditions, genes) DE calls in {-1, 0, 1} (``None`` unless asked for).
        qvalues: float32 (conditions, genes) q-values of the cell-level test (``None`` unless asked for).
    """

    conditions: pd.DataFrame
    values: np.ndarray
    per_batch: pd.DataFrame
    de: np.ndarray | None = None
    qvalues: np.ndarray | None = None


def pseudobulk_deltas(
    groups: pd.DataFrame,
    sums: np.ndarray,
    *,
    batch: str,
    cell_line: str,
    drug: str,
    dose: str | None,
    control: str,
    target_sum: float = 1e4,
    min_counts: float = 10.0,
    library: np.ndarray | None = None,
    cell_stats: tuple[np.ndarray, np.ndarray] | None = None,
    de_threshold: float = 0.5,
    de_alpha: float = 0.05,
) -> Deltas:
    """Control-matched deltas of log1p normalised pseudobulk profiles.

    For each group g (batch, cell line, drug[, dose]) with count sums ``S[g]`` and library
    ``L[g] = sum(S[g])``: ``y[g] = log1p(target_sum * S[g] / L[g])``. A treated group's delta
    is ``y[treated] - y[control of the same batch and cell line]``, NaN for genes whose
    counts in the two pseudobulks together are below ``min_counts``. A condition's delta is
    the mean over its batches weighted by treated cells, over the batches where the gene
    is not masked (NaN when masked in all).

    Args:
        groups: one row per group with the label columns and ``n_cells``.
        sums: (groups, genes) count sums.
        batch, cell_line, drug, dose: label column names (``dose`` may be ``None``).
        control: the control label in the ``drug`` column.
        target_sum: counts per profile after normalisation.
        min_counts: mask threshold (treated + control counts of the gene in one batch).
        library: per-group library ``L`` (default ``sums.sum(axis=1)``; give it when ``sums`` holds a
            subset of the genes, so normalisation still counts every gene).
        cell_stats: per group sums of per-cell log-normalised values and of their squares; when
            given, DE calls are made (see :data:`perturb_core.pseudobulk.DE_DEFINITION`).
        de_threshold, de_alpha: the |delta| and q-value cutoffs of the DE calls.

    Raises:
        DataError: a group with no counts, a (batch, cell line) with treated cells and no
            control, or no treated cells at all.
    """
    lib = sums.sum(axis=1) if library is None else np.asarray(library, dtype=np.float64)
    empty = np.flatnonzero(lib <= 0)
    if len(empty):
        g = groups.iloc[empty[0]]
        raise DataError(
            f"group (batch {g[batch]!r}, cell line {g[cell_line]!r}, drug {g[drug]!r}) has {int(g['n_cells'])} cells "
            f"but no counts ({len(empty)} such groups); drop empty cells or check --layer points at raw counts"
        )
    norm = np.log1p(sums * (target_sum / lib[:, None]))
    is_ctrl = (groups[drug].astype(str) == control).to_numpy()
    pair = groups[batch].astype(str) + "\x00" + groups[cell_line].astype(str)
    ctrl_row = pd.Series(np.flatnonzero(is_ctrl), index=pair[is_ctrl].to_numpy())
    treated = np.flatnonzero(~is_ctrl)
    if not len(treated):
        raise DataError(f"every cell is a control ({control!r}); there is nothing to compare")
    matched = ctrl_row.reindex(pair.iloc[treated].to_numpy()).to_numpy()
    if np.isnan(matched).any():
        bad = groups.iloc[treated[np.isnan(matched)]][[batch, cell_line]].drop_duplicates()
        first = bad.iloc[0]
        raise DataError(
            f"batch {first[batch]!r} has treated cells of cell line {first[cell_line]!r} but no {control!r} control "
            f"cells ({len(bad)} such batch/cell line pairs); deltas are control-matched per batch: add the "
            "controls, drop those cells, or check --control / --batch-col"
        )
    c = matched.astype(np.intp)
    d = norm[treated] - norm[c]
    d[(sums[treated] + sums[c]) < min_counts] = np.nan
    keys = [cell_line, drug] + ([dose] if dose else [])
    tg = groups.iloc[treated].reset_index(drop=True)
    cond_codes, cond_index = pd.MultiIndex.from_frame(tg[keys].astype(str)).factorize(sort=True)
    n_cond = len(cond_index)
    w = tg["n_cells"].to_numpy(dtype=np.float64)
    W = sp.csr_matrix((w, (cond_codes, np.arange(len(tg)))), shape=(n_cond, len(tg)))
    ok = ~np.isnan(d)
    den = np.asarray(W @ ok.astype(np.float64))
    num = np.asarray(W @ np.where(ok, d, 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan).astype(np.float32)
    n_ctrl = groups["n_cells"].to_numpy()[c]
    conditions = pd.DataFrame(list(cond_index), columns=keys)
    conditions["n_cells"] = np.bincount(cond_codes, weights=w, minlength=n_cond).astype(np.int64)
    conditions["n_control_cells"] = np.bincount(cond_codes, weights=n_ctrl, minlength=n_cond).astype(np.int64)
    conditions["n_batches"] = np.bincount(cond_codes, minlength=n_cond).astype(np.int32)
    per_batch = tg[[batch, *keys, "n_cells"]].assign(condition=cond_codes, n_control_cells=n_ctrl)
    if cell_stats is None:
        return Deltas(conditions, values, per_batch)
    calls, q = de_calls(
        groups["n_cells"].to_numpy(), *cell_stats, treated, c, cond_codes, n_cond, values,
        threshold=de_threshold, alpha=de_alpha,
    )  # fmt: skip
    return Deltas(conditions, values, per_batch, calls, q)
