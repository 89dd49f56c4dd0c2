"""Seeded train/test splits of the (cell line, drug) grid, candidate pools, and a split's delta tensor."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from perturb_core.errors import ValidationError, check_seed
from perturb_core.retrieval._index import LGRIndex, as_dataset, dataset_axes
from perturb_core.retrieval._options import N_EVAL_GENES, Regime, check_int, check_regime
from perturb_core.retrieval.baselines import BaselineData, RidgeReference

if TYPE_CHECKING:
    from perturb_core.data.registry import SignatureDataset

_GENE_STATS_MIN_OBS = 3


@dataclass(frozen=True, eq=False)
class Split:
    """A seeded train/test split of the (cell line, drug) pairs of a dataset.

    Attributes:
        dataset: dataset name.
        regime: one of :data:`REGIMES`.
        seed: seed of the held-out draw.
        test_fraction: fraction of drugs (unseen-drug) or cell lines (unseen-cell-line) held out.
        held_out: the held-out drugs or cell lines (empty in the open world).
        cell_lines: axis 0 of the masks.
        drugs: axis 1 of the masks.
        train: (C, D) pairs that baselines and ``transcriptome_knn`` may learn from.
        test: (C, D) query pairs.
        pool_drugs: (D,) drugs allowed in candidate pools (training drugs in unseen-drug).
        leave_one_out: queries are also training pairs (open world): each is excluded from
            its own prediction.
        split_id: 12 hex digits identifying the split (logged with every result).
    """

    dataset: str
    regime: str
    seed: int
    test_fraction: float
    held_out: tuple[str, ...]
    cell_lines: tuple[str, ...] = field(repr=False)
    drugs: tuple[str, ...] = field(repr=False)
    train: NDArray[np.bool_] = field(repr=False)
    test: NDArray[np.bool_] = field(repr=False)
    pool_drugs: NDArray[np.bool_] = field(repr=False)
    leave_one_out: bool
    split_id: str

    @property
    def test_pairs(self) -> list[tuple[str, str]]:
        """Query pairs (cell line, drug)."""
        c, d = np.nonzero(self.test)
        return [(self.cell_lines[i], self.drugs[j]) for i, j in zip(c, d, strict=True)]

    @property
    def train_pairs(self) -> list[tuple[str, str]]:
        """Training pairs (cell line, drug)."""
        c, d = np.nonzero(self.train)
        return [(self.cell_lines[i], self.drugs[j]) for i, j in zip(c, d, strict=True)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no pair lists)."""
        return {
            "split_id": self.split_id,
            "regime": self.regime,
            "seed": self.seed,
            "test_fraction": self.test_fraction,
            "held_out": list(self.held_out),
            "n_train_pairs": int(self.train.sum()),
            "n_test_pairs": int(self.test.sum()),
            "leave_one_out": self.leave_one_out,
        }


def _split_id(*parts: object) -> str:
    return hashlib.sha256(json.dumps([str(p) for p in parts]).encode()).hexdigest()[:12]


def make_split(
    ds: SignatureDataset | str, regime: Regime, *, seed: int = 0, test_fraction: float = 0.2
) -> Split:
    """A seeded split of a signature dataset for one regime.

    - ``unseen-drug``: ``round(test_fraction × D)`` drugs (at least 1) are held out in every
      cell line; their pairs are the queries; pools and training hold the other drugs only.
    - ``unseen-cell-line``: ``round(test_fraction × C)`` cell lines (at least 1, leaving at
      least one) are held out; all their pairs are queries; training holds the other lines;
      the pool of a query holds the other drugs measured in its (held-out) line.
    - ``open-world``: every profiled pair is a query; the pool is everything measured in the
      line but the query; each query is left out of its own training data.

    Args:
        ds: a SignatureDataset or dataset name.
        regime: one of :data:`REGIMES`.
        seed: seed of the held-out draw.
        test_fraction: fraction held out, in (0, 1).

    Returns:
        The :class:`Split`.

    Raises:
        ValidationError: unknown regime, bad fraction, or too few cell lines/drugs to hold any out.
    """
    regime = check_regime(regime)
    seed = check_seed(seed)
    if not isinstance(test_fraction, float | int) or not 0 < float(test_fraction) < 1:
        raise ValidationError(f"test_fraction must be in (0, 1), e.g. 0.2; got {test_fraction!r}")
    ds = as_dataset(ds, None)
    cells, drugs, rows = dataset_axes(ds)
    present = rows >= 0
    axis = _HELD_AXIS[regime]
    if axis is None:  # open world: every pair is a query, left out of its own training data
        return _split(
            ds,
            regime,
            present.copy(),
            present.copy(),
            np.zeros(0, bool),
            seed=seed,
            test_fraction=float(test_fraction),
            split_id=_split_id(ds.name, regime, seed, float(test_fraction), (), int(present.sum())),
        )
    names = (cells, drugs)[axis]
    what = ("cell line", "drug")[axis]
    if len(names) < 2:
        raise ValidationError(f"dataset {ds.name!r} has {len(names)} {what}(s); {regime} needs at least 2")
    n = min(len(names) - 1, max(1, round(test_fraction * len(names))))
    held_axis = np.zeros(len(names), dtype=bool)
    held_axis[np.random.default_rng(seed).choice(len(names), size=n, replace=False)] = True
    held = tuple(names[i] for i in np.flatnonzero(held_axis))
    held_pairs = held_axis[:, None] if axis == 0 else held_axis[None, :]
    test = present & held_pairs
    sid = _split_id(ds.name, regime, seed, float(test_fraction), held, int(test.sum()))
    return _split(
        ds,
        regime,
        present & ~held_pairs,
        test,
        held_axis,
        seed=seed,
        test_fraction=float(test_fraction),
        split_id=sid,
    )


#: Which axis of the (cell line x drug) grid a regime holds out: 0 lines, 1 drugs, None nothing.
_HELD_AXIS: dict[str, int | None] = {"unseen-cell-line": 0, "unseen-drug": 1, "open-world": None}


def _split(
    ds: SignatureDataset,
    regime: str,
    train: NDArray[np.bool_],
    test: NDArray[np.bool_],
    held_axis: NDArray[np.bool_],
    *,
    seed: int,
    test_fraction: float,
    split_id: str,
) -> Split:
    """Assemble a :class:`Split`; pools exclude held-out drugs (unseen-drug) and nothing else."""
    cells, drugs, _ = dataset_axes(ds)
    axis = _HELD_AXIS[regime]
    pool_drugs = ~held_axis if axis == 1 else np.ones(len(drugs), dtype=bool)
    names = (cells, drugs)[axis] if axis is not None else ()
    return Split(
        dataset=ds.name,
        regime=regime,
        seed=seed,
        test_fraction=test_fraction,
        held_out=tuple(names[i] for i in np.flatnonzero(held_axis)),
        cell_lines=cells,
        drugs=drugs,
        train=train,
        test=test,
        pool_drugs=pool_drugs,
        leave_one_out=axis is None,
        split_id=split_id,
    )


def resolve_pair(ds: SignatureDataset, cell_line: str, drug: str) -> tuple[str, str]:
    """Display names of a profiled (cell line, drug) pair; clear errors otherwise."""
    c = ds.resolve_cell_line(cell_line)
    d = ds.resolve_drug(drug)
    cells, drugs, rows = dataset_axes(ds)
    if rows[cells.index(c), drugs.index(d)] < 0:
        here = ds.drugs(c)
        lines = [cells[i] for i in np.flatnonzero(rows[:, drugs.index(d)] >= 0)]
        raise ValidationError(
            f"{d!r} was not profiled in {c} (no measured response to compare with); "
            f"profiled there: {', '.join(here[:5])}{' ...' if len(here) > 5 else ''} ({len(here)} drugs); "
            f"{d} was profiled in: {', '.join(lines[:8])}{' ...' if len(lines) > 8 else ''}"
        )
    return c, d


def query_split(ds: SignatureDataset | str, regime: Regime, cell_line: str, drug: str) -> Split:
    """The split of one query: the regime applied to this (cell line, drug) alone.

    ``unseen-drug`` holds the drug out in every line; ``unseen-cell-line`` holds the line out;
    ``open-world`` leaves out only the pair itself.

    Raises:
        UnknownNameError / ValidationError: unknown names, or the drug was not profiled there.
    """
    regime = check_regime(regime)
    ds = as_dataset(ds, None)
    c, d = resolve_pair(ds, cell_line, drug)
    cells, drugs, rows = dataset_axes(ds)
    ci, di = cells.index(c), drugs.index(d)
    present = rows >= 0
    test = np.zeros_like(present)
    test[ci, di] = True
    axis = _HELD_AXIS[regime]
    train = present.copy()
    held_axis = np.zeros(0 if axis is None else (len(cells), len(drugs))[axis], dtype=bool)
    if axis is not None:
        held_axis[(ci, di)[axis]] = True
        train &= ~(held_axis[:, None] if axis == 0 else held_axis[None, :])
    sid = "q" + _split_id(ds.name, regime, c, d)[:11]
    return _split(ds, regime, train, test, held_axis, seed=0, test_fraction=0.0, split_id=sid)


def pool_mask(
    split: Split, present: NDArray[np.bool_], cells: NDArray[np.intp], drugs: NDArray[np.intp]
) -> NDArray[np.bool_]:
    """(Q, D) candidate pools: drugs measured in the query's line, allowed by the split, not the query."""
    pool = present[cells] & split.pool_drugs[None, :]
    pool[np.arange(cells.size), drugs] = False
    return pool


def candidate_pool(
    ds: SignatureDataset | str,
    cell_line: str,
    drug: str,
    *,
    regime: Regime = "open-world",
    split: Split | None = None,
) -> list[str]:
    """The candidate pool P_c \\ {d} of a query under a regime.

    Args:
        ds: a SignatureDataset or dataset name.
        cell_line: any spelling of the cell line.
        drug: any spelling of the query drug.
        regime: used when ``split`` is not given (see :func:`query_split`).
        split: a split from :func:`make_split`; its held-out drugs are then excluded too.

    Returns:
        Drug display names, sorted case-insensitively.

    Raises:
        UnknownNameError / ValidationError: unknown names, or the drug was not profiled there.
    """
    ds = as_dataset(ds, None)
    c, d = resolve_pair(ds, cell_line, drug)
    split = split or query_split(ds, regime, c, d)
    cells, drugs, rows = dataset_axes(ds)
    pool = pool_mask(split, rows >= 0, np.array([cells.index(c)]), np.array([drugs.index(d)]))[0]
    return [drugs[i] for i in np.flatnonzero(pool)]


# =========================================================================== split data


def _top_variable(index: LGRIndex, train: NDArray[np.bool_], n: int) -> NDArray[np.intp]:
    """Top-n most variable genes (sample variance, >= 3 observations) of the training rows."""
    removed = index.rows[(index.rows >= 0) & ~train]
    count, total, sumsq = index.gene_count.copy(), index.gene_sum.copy(), index.gene_sumsq.copy()
    if removed.size:
        xr = index.x[removed]
        obs = ~np.isnan(xr)
        x0 = np.where(obs, xr, np.float32(0.0)).astype(np.float64)
        count -= obs.sum(0)
        total -= x0.sum(0)
        sumsq -= (x0 * x0).sum(0)
    eligible = count >= _GENE_STATS_MIN_OBS
    with np.errstate(divide="ignore", invalid="ignore"):
        var = (sumsq - total * total / count) / (count - 1)
    var = np.where(eligible, var, -np.inf)
    order = np.argsort(-var, kind="stable")
    return order[: min(n, int(eligible.sum()))]


@dataclass(frozen=True, eq=False)
class SplitData:
    """The deltas of one split on its evaluation genes, with derived matrices (computed once).

    Attributes:
        index: the dataset index.
        split: the split.
        gene_idx: evaluation genes (columns of ``index.x``): the most variable training genes.
        deltas: float32 (C, D, G) deltas on those genes; NaN = not measured or not profiled.
    """

    index: LGRIndex
    split: Split
    gene_idx: NDArray[np.intp]
    deltas: NDArray[np.float32] = field(repr=False)

    @property
    def genes(self) -> pd.Index:
        """Evaluation gene symbols."""
        return self.index.genes[self.gene_idx]

    @cached_property
    def flat(self) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """(C·D, G) deltas with NaN -> 0 and the observed mask, for weighted aggregation."""
        y = self.deltas.reshape(-1, self.deltas.shape[2])
        obs = ~np.isnan(y)
        return np.where(obs, y, np.float32(0.0)), obs.astype(np.float32)

    @cached_property
    def correlations(self) -> NDArray[np.float64]:
        """(C, D, D) Pearson r between drugs' deltas in each line over their common genes (NaN if < 3)."""
        y = self.deltas
        obs = (~np.isnan(y)).astype(np.float32)
        y0 = np.where(obs > 0, y, np.float32(0.0))
        obs_t = np.ascontiguousarray(obs.transpose(0, 2, 1))
        n = (obs @ obs_t).astype(np.float64)
        sx = (y0 @ obs_t).astype(np.float64)  # sum of a's values over genes b also has
        sxx = ((y0 * y0) @ obs_t).astype(np.float64)
        sxy = (y0 @ np.ascontiguousarray(y0.transpose(0, 2, 1))).astype(np.float64)
        sy, syy = sx.transpose(0, 2, 1), sxx.transpose(0, 2, 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            cov = sxy - sx * sy / n
            vx = sxx - sx * sx / n
            vy = syy - sy * sy / n
            r = cov / np.sqrt(vx * vy)
        ok = (n >= 3) & (vx > 1e-12) & (vy > 1e-12)
        return np.where(ok, np.clip(r, -1.0, 1.0), np.nan)

    @cached_property
    def transcriptome(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(C, D, D) mean r over OTHER training lines where both drugs were measured, and the line counts."""
        r = self.correlations
        t = self.split.train.astype(np.float64)
        m = (t[:, :, None] * t[:, None, :]) * np.isfinite(r)
        r0 = np.where(m > 0, r, 0.0)
        total, count = r0.sum(0), m.sum(0)
        others_sum = total[None] - r0
        others_cnt = count[None] - m
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = np.where(others_cnt > 0, others_sum / np.where(others_cnt > 0, others_cnt, 1.0), np.nan)
        return mean, others_cnt

    def residuals(self, pair_ids: NDArray[np.intp]) -> NDArray[np.float64]:
        """Line-specific residuals ``Δ[c, e] − D̄₋c[e]`` of flat (line · D + drug) pair ids, (N, G).

        ``D̄₋c[e]`` is drug e's mean over its training lines other than c (NaN where none). The
        residual from the pair's own additive fit is this minus the line term plus the grand
        mean; that shift is the same for every neighbour of a query, so it cancels in the
        residual aggregation.
        """
        c, e = np.divmod(np.asarray(pair_ids, dtype=np.intp), len(self.index.drugs))
        dbar, _ = self.baseline_data.drug_mean_other_lines(c, e)
        return self.deltas[c, e].astype(np.float64) - dbar

    @cached_property
    def baseline_data(self) -> BaselineData:
        """Inputs of the baselines for this split.

        Shared by every split with the same training pairs and regime (all open-world queries
        of a dataset), so what baselines cache on it (sums, ``pca_ridge`` cross-products) is
        computed once, not per query. Kept in the index's ``baseline_memo``.
        """
        # the memo value holds the tensor, so its id stays unique while the entry lives
        deltas, data = self.index.baseline_memo.get(
            (id(self.deltas), self.split.leave_one_out), lambda: (self.deltas, self._baseline_data())
        )
        if deltas is not self.deltas:  # pragma: no cover - ids of live arrays are unique
            raise RuntimeError("baseline cache key collision")
        return data

    def _baseline_data(self) -> BaselineData:
        return BaselineData(
            deltas=self.deltas,
            train=self.split.train,
            fingerprints=self.index.fingerprints,
            fp_valid=self.index.fp_valid,
            leave_one_out=self.split.leave_one_out,
            reference=_ridge_reference(self.index, self.gene_idx.size),
            gene_ids=self.gene_idx,
            pool_pairs=self.index.present & self.split.pool_drugs[None, :],
        )


def _ridge_reference(index: LGRIndex, n_genes: int) -> RidgeReference:
    """Every profiled pair on its ``n + n // 4`` most variable genes (``pca_ridge``'s shared cache).

    It covers all single-query splits: their evaluation genes are the top n of almost the
    same pairs (holding a drug or a line out reorders a few). Cross-products are computed on
    first use. Kept in the index's ``reference_memo``.
    """

    def build() -> RidgeReference:
        genes = _top_variable(index, index.present, n_genes + n_genes // 4)
        return RidgeReference(values=index.x, rows=index.rows, gene_ids=genes)

    return index.reference_memo.get(n_genes, build)


def _mask_key(mask: NDArray[np.bool_]) -> str:
    """Digest of a boolean mask (splits with equal training pairs share their tensor)."""
    return hashlib.sha256(np.packbits(mask).tobytes() + str(mask.shape).encode()).hexdigest()[:16]


def split_data(index: LGRIndex, split: Split, *, n_genes: int = N_EVAL_GENES) -> SplitData:
    """Evaluation genes and the delta tensor of a split (kept on the index, by split id).

    Splits with the same training pairs (e.g. every open-world :func:`query_split` of a
    dataset) share the gene set, the tensor and their baseline inputs.

    Args:
        index: from :func:`lgr_index`.
        split: from :func:`make_split` or :func:`query_split`.
        n_genes: number of most variable training genes to evaluate on.

    Returns:
        The :class:`SplitData`.
    """
    if split.cell_lines != index.cell_lines or split.drugs != index.drugs:
        raise ValidationError(f"split of dataset {split.dataset!r} does not match index of {index.dataset!r}")
    n_genes = check_int("n_genes", n_genes, 1)

    def build() -> SplitData:
        gene_idx, deltas = index.tensor_memo.get(
            (_mask_key(split.train), n_genes), lambda: _tensor(index, split, n_genes)
        )
        return SplitData(index=index, split=split, gene_idx=gene_idx, deltas=deltas)

    return index.split_memo.get((split.split_id, n_genes), build)


def _tensor(index: LGRIndex, split: Split, n_genes: int) -> tuple[NDArray[np.intp], NDArray[np.float32]]:
    """Evaluation genes of the split's training pairs and the (C, D, G) deltas on them (read-only)."""
    gene_idx = _top_variable(index, split.train, n_genes)
    if gene_idx.size == 0:
        raise ValidationError(
            f"dataset {split.dataset!r}, {split.regime}: no gene is measured in at least "
            f"{_GENE_STATS_MIN_OBS} training signatures, so there is nothing to evaluate on; "
            "a dataset needs at least 3 training signatures per gene (hold out fewer, or import more)"
        )
    rows = index.rows
    deltas = np.full((*rows.shape, gene_idx.size), np.nan, dtype=np.float32)
    deltas[rows >= 0] = index.x[rows[rows >= 0][:, None], gene_idx[None, :]]
    deltas.flags.writeable = False  # shared by every split with these training pairs
    return gene_idx, deltas
