"""Synthetic Tahoe-shaped single-cell counts with planted log fold changes (for pseudobulk tests).

The design follows Tahoe-100M: plates (batches), cell lines, drugs at doses, and DMSO
control cells on every plate for every cell line. Counts are negative binomial
(Poisson-Gamma) with mean

    mu[cell, gene] = library[cell] * base[gene] * exp(line[line, gene] + batch[plate, gene]
                                                      + dose_scale * lfc[line, drug, gene])

where ``base`` sums to 1, ``library`` is log-normal around ``mean_library``, ``batch`` is a
per-plate gene-wise effect shared by treated and control cells of that plate, and ``lfc``
(natural log, the truth) is non-zero on a fraction of genes. ``dose_scale`` is
``dose / max(doses)`` (1 without doses). Controls have ``lfc = 0``.

Files are written chunk by chunk (CSR by default), so a 2,000,000 x 2,000 file never
holds the whole matrix in memory::

    cells = simulate_cells(n_cells=20_000, n_genes=500, seed=0)
    write_h5ad(cells, "cells.h5ad")        # or write_zarr(cells, "cells.zarr")
    cells.truth                              # (line, drug, dose) x genes planted LFC
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp
import zarr

__all__ = ["CONTROL", "SyntheticCells", "simulate_cells", "write_h5ad", "write_zarr"]

CONTROL = "DMSO_TF"
"""Control label (Tahoe's DMSO vehicle)."""


@dataclass(frozen=True)
class SyntheticCells:
    """A simulated design; counts are drawn per chunk on demand (deterministic per seed and chunk).

    Attributes:
        obs: one row per cell: ``plate``, ``cell_line``, ``drug``, ``dose`` (categoricals;
            controls have dose 0).
        genes: gene names.
        base: baseline expression proportions (sum 1).
        line_effect: (n_lines, n_genes) log effect of each cell line.
        batch_effect: (n_plates, n_genes) log effect of each plate (the batch effect).
        lfc: (n_lines, n_drugs, n_genes) planted natural-log fold change at the top dose.
        doses: the doses (empty: no dose column).
        library: per-cell library size factor.
        dispersion: negative-binomial dispersion phi (variance = mu + phi mu^2); 0 = Poisson
            (drawn sparsely for CSR output: time ~ counts, not cells x genes; used for big files).
        seed: the seed.
    """

    obs: pd.DataFrame
    genes: pd.Index
    base: np.ndarray
    line_effect: np.ndarray
    batch_effect: np.ndarray
    lfc: np.ndarray
    doses: tuple[float, ...]
    library: np.ndarray
    dispersion: float
    seed: int

    @property
    def shape(self) -> tuple[int, int]:
        """(cells, genes)."""
        return len(self.obs), len(self.genes)

    @property
    def truth(self) -> pd.DataFrame:
        """Planted natural-log fold change per treated condition: rows (cell_line, drug[, dose]), columns genes."""
        lines = list(self.obs["cell_line"].cat.categories)
        drugs = [d for d in self.obs["drug"].cat.categories if d != CONTROL]
        rows, values = [], []
        top = max(self.doses) if self.doses else 1.0
        for i, line in enumerate(lines):
            for j, drug in enumerate(drugs):
                for dose in self.doses or (None,):
                    scale = 1.0 if dose is None else dose / top
                    rows.append((line, drug) if dose is None else (line, drug, dose))
                    values.append(scale * self.lfc[i, j])
        names = ["cell_line", "drug"] if not self.doses else ["cell_line", "drug", "dose"]
        return pd.DataFrame(
            np.array(values), index=pd.MultiIndex.from_tuples(rows, names=names), columns=self.genes
        )

    def chunks(self, chunk_cells: int, *, dense: bool = False) -> Iterator[sp.csr_matrix | np.ndarray]:
        """Count matrices of consecutive cells (int32 CSR, or dense with ``dense=True``)."""
        codes = {c: self.obs[c].cat.codes.to_numpy() for c in ("plate", "cell_line", "drug")}
        drugs = list(self.obs["drug"].cat.categories)
        ctrl = drugs.index(CONTROL)
        treated_index = np.array(
            [-1 if d == CONTROL else sum(x != CONTROL for x in drugs[:k]) for k, d in enumerate(drugs)]
        )
        top = max(self.doses) if self.doses else 1.0
        dose = self.obs["dose"].to_numpy(dtype=float) / top if self.doses else np.ones(len(self.obs))
        log_base = np.log(self.base).astype(np.float32)
        for k, start in enumerate(range(0, len(self.obs), chunk_cells)):
            stop = min(start + chunk_cells, len(self.obs))
            rng = np.random.default_rng([self.seed, 1, k, chunk_cells])
            p, li, d = (codes[c][start:stop] for c in ("plate", "cell_line", "drug"))
            ti = treated_index[d]
            scale = np.where(d == ctrl, 0.0, dose[start:stop])
            if self.dispersion == 0 and not dense:
                yield self._sparse_poisson(
                    rng, log_base, p, li, np.maximum(ti, 0), scale, self.library[start:stop]
                )
                continue
            eff = self.lfc[li, np.maximum(ti, 0)] * scale[:, None]
            logmu = log_base + self.line_effect[li] + self.batch_effect[p] + eff.astype(np.float32)
            with np.errstate(divide="ignore"):  # a library of 0 (an empty cell) gives mu = 0
                mu = np.exp(logmu + np.log(self.library[start:stop, None]).astype(np.float32))
            if self.dispersion > 0:
                mu = rng.gamma(1.0 / self.dispersion, self.dispersion, size=mu.shape).astype(np.float32) * mu
            counts = rng.poisson(mu).astype(np.int32)
            yield counts if dense else sp.csr_matrix(counts)

    def _sparse_poisson(
        self,
        rng: np.random.Generator,
        log_base: np.ndarray,
        p: np.ndarray,
        li: np.ndarray,
        ti: np.ndarray,
        scale: np.ndarray,
        library: np.ndarray,
    ) -> sp.csr_matrix:
        """Poisson counts drawn sparsely: a cell's total ~ Poisson(sum mu), genes ~ Categorical(mu / sum mu).

        Exactly the Poisson model, in time proportional to the counts instead of cells x genes.
        """
        n, g = len(p), len(self.genes)
        key = np.stack([p, li, ti, np.round(scale * 1e6).astype(np.int64)], axis=1)
        uniq, inv = np.unique(key, axis=0, return_inverse=True)
        rows, cols = [], []
        order = np.argsort(inv.ravel(), kind="stable")
        cuts = np.searchsorted(inv.ravel()[order], np.arange(len(uniq) + 1))
        for u, (pu, lu, tu, su) in enumerate(uniq):
            w = np.exp(log_base + self.line_effect[lu] + self.batch_effect[pu] + su / 1e6 * self.lfc[lu, tu])
            cdf = np.cumsum(w, dtype=np.float64)
            cells = order[cuts[u] : cuts[u + 1]]
            totals = rng.poisson(library[cells] * cdf[-1])
            rows.append(np.repeat(cells.astype(np.int32), totals))
            draws = np.searchsorted(cdf, rng.random(int(totals.sum())) * cdf[-1], side="right")
            cols.append(np.minimum(draws, g - 1).astype(np.int32))
        r, c = np.concatenate(rows), np.concatenate(cols)
        m = sp.csr_matrix((np.ones(len(r), np.int32), (r, c)), shape=(n, g))
        m.sum_duplicates()
        return m


def simulate_cells(
    n_cells: int = 20_000,
    n_genes: int = 500,
    *,
    n_plates: int = 2,
    n_cell_lines: int = 3,
    n_drugs: int = 4,
    doses: tuple[float, ...] = (),
    control_fraction: float = 0.2,
    mean_library: float = 2_000.0,
    library_sd: float = 0.3,
    dispersion: float = 0.2,
    batch_sd: float = 0.4,
    line_sd: float = 0.5,
    lfc_fraction: float = 0.2,
    lfc_sd: float = 1.0,
    drug_names: tuple[str, ...] = (),
    drug_plates: bool = False,
    seed: int = 0,
) -> SyntheticCells:
    """Simulate a Tahoe-shaped design (cells are shuffled across plates, lines and drugs).

    Every (plate, cell line) gets control cells: the first ``n_plates * n_cell_lines`` cells are
    one control of each, the rest are control with probability ``control_fraction``.

    Args:
        n_cells, n_genes: size of the count matrix.
        n_plates, n_cell_lines, n_drugs: design sizes (plates are the batches).
        doses: drug doses (empty: no dose column is meaningful; all doses 1).
        control_fraction: fraction of control (``DMSO_TF``) cells.
        mean_library: mean counts per cell; ``library_sd`` its log-normal spread.
        dispersion: negative-binomial dispersion (0 = Poisson).
        batch_sd, line_sd: SD of the per-plate and per-line gene-wise log effects.
        lfc_fraction, lfc_sd: fraction of genes with a non-zero planted LFC and its SD.
        drug_names: names of the drugs (default ``drug1`` ...; their number sets ``n_drugs``).
        drug_plates: Tahoe's layout: drug ``j`` is only on plate ``j % n_plates`` (so plate and
            drug are confounded unless controls are matched per plate); controls on every plate.
        seed: random seed.
    """
    rng = np.random.default_rng(seed)
    plates = [f"plate{i + 1}" for i in range(n_plates)]
    lines = [f"CL{i + 1}" for i in range(n_cell_lines)]
    drugs = list(drug_names) or [f"drug{i + 1}" for i in range(n_drugs)]
    n_drugs = len(drugs)
    n_fixed = n_plates * n_cell_lines
    p = np.concatenate(
        [np.repeat(np.arange(n_plates), n_cell_lines), rng.integers(0, n_plates, n_cells - n_fixed)]
    )
    li = np.concatenate(
        [np.tile(np.arange(n_cell_lines), n_plates), rng.integers(0, n_cell_lines, n_cells - n_fixed)]
    )
    is_ctrl = np.concatenate([np.ones(n_fixed, bool), rng.random(n_cells - n_fixed) < control_fraction])
    d = np.where(is_ctrl, n_drugs, rng.integers(0, n_drugs, n_cells))
    if drug_plates:
        p = np.where(is_ctrl, p[:n_cells], d % n_plates)
    dose_values = np.where(is_ctrl, 0.0, rng.choice(np.asarray(doses or (1.0,), float), n_cells))
    obs = pd.DataFrame(
        {
            "plate": pd.Categorical.from_codes(p[:n_cells], plates),
            "cell_line": pd.Categorical.from_codes(li[:n_cells], lines),
            "drug": pd.Categorical.from_codes(d, [*drugs, CONTROL]),
            "dose": dose_values,
        },
        index=pd.Index([f"cell{i}" for i in range(n_cells)]),
    )
    base = rng.lognormal(0.0, 1.2, n_genes)
    lfc = rng.normal(0.0, lfc_sd, (n_cell_lines, n_drugs, n_genes)) * (
        rng.random((n_cell_lines, n_drugs, n_genes)) < lfc_fraction
    )
    return SyntheticCells(
        obs=obs,
        genes=pd.Index([f"GENE{i:05d}" for i in range(n_genes)]),
        base=base / base.sum(),
        line_effect=rng.normal(0.0, line_sd, (n_cell_lines, n_genes)).astype(np.float32),
        batch_effect=rng.normal(0.0, batch_sd, (n_plates, n_genes)).astype(np.float32),
        lfc=lfc,
        doses=tuple(float(x) for x in doses),
        library=mean_library * rng.lognormal(-(library_sd**2) / 2, library_sd, n_cells),
        dispersion=dispersion,
        seed=seed,
    )


def _write(
    group: h5py.Group | zarr.Group,
    cells: SyntheticCells,
    chunk_cells: int,
    layer: str | None,
    dense: bool,
    noninteger: bool,
) -> None:
    group.attrs["encoding-type"] = "anndata"
    group.attrs["encoding-version"] = "0.1.0"
    obs = cells.obs if cells.doses else cells.obs.drop(columns="dose")
    ad.io.write_elem(group, "obs", obs)
    ad.io.write_elem(group, "var", pd.DataFrame(index=cells.genes))
    key = "X" if layer is None else f"layers/{layer}"
    if layer is not None:  # X holds something else (here: an empty float matrix of the same shape)
        ad.io.write_elem(group, "X", sp.csr_matrix(cells.shape, dtype=np.float32))
    target = None
    offset = 0
    for block in cells.chunks(chunk_cells, dense=dense):
        if noninteger:
            block = block.astype(np.float32)
            if dense:
                block[block > 0] += 0.5
            else:
                block.data += 0.5
        if dense:
            if target is None:
                target = group.require_group(key.rsplit("/", 1)[0]) if "/" in key else group
                name = key.rsplit("/", 1)[-1]
                kw = {
                    "shape": cells.shape,
                    "dtype": block.dtype,
                    "chunks": (min(chunk_cells, cells.shape[0]), cells.shape[1]),
                }
                arr = (
                    target.create_dataset(name, **kw)
                    if isinstance(target, h5py.Group)
                    else target.create_array(name, **kw)
                )
                arr.attrs["encoding-type"] = "array"
                arr.attrs["encoding-version"] = "0.2.0"
                target = arr
            target[offset : offset + block.shape[0]] = block
            offset += block.shape[0]
        elif target is None:
            ad.io.write_elem(group, key, block)
            target = ad.io.sparse_dataset(group[key])
        else:
            target.append(block)


def write_h5ad(
    cells: SyntheticCells,
    path: str | Path,
    *,
    chunk_cells: int = 10_000,
    layer: str | None = None,
    dense: bool = False,
    noninteger: bool = False,
) -> Path:
    """Write the counts to an ``.h5ad`` chunk by chunk (memory ~ one chunk).

    Args:
        cells: the simulated design.
        path: output file.
        chunk_cells: cells drawn and written at a time.
        layer: put the counts in ``layers[layer]`` (X is then an all-zero float matrix).
        dense: dense X instead of CSR.
        noninteger: add 0.5 to every non-zero count (to test the non-integer warning).
    """
    path = Path(path)
    with h5py.File(path, "w") as f:
        _write(f, cells, chunk_cells, layer, dense, noninteger)
    return path


def write_zarr(
    cells: SyntheticCells,
    path: str | Path,
    *,
    chunk_cells: int = 10_000,
    layer: str | None = None,
    dense: bool = False,
    noninteger: bool = False,
) -> Path:
    """Write the counts to an AnnData zarr store chunk by chunk (same options as :func:`write_h5ad`)."""
    path = Path(path)
    _write(zarr.open_group(path, mode="w"), cells, chunk_cells, layer, dense, noninteger)
    return path
