"""Single-cell files -> a signature dataset of pseudobulk deltas (the whole step, then atomic registration)."""

from __future__ import annotations

import importlib.metadata
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import anndata as ad
import dask
import numpy as np
import pandas as pd

from perturb_core.config import Settings
from perturb_core.data.importer import check_dataset_name, write_user_dataset
from perturb_core.data.names import slug
from perturb_core.errors import DataError, ValidationError, name_key, unknown_name
from perturb_core.pseudobulk._aggregate import group_sums, scheduler_client
from perturb_core.pseudobulk._de import DE_DEFINITION
from perturb_core.pseudobulk._deltas import Deltas, pseudobulk_deltas
from perturb_core.pseudobulk._read import CellFile, file_fingerprint, open_cells
from perturb_core.pseudobulk._validate import (
    check_chunk_cells,
    check_controls_present,
    check_genes_match,
    check_labels,
    check_scheduler,
    warn_nonint,
)

__all__ = [
    "PSEUDOBULK_DEFINITION",
    "PSEUDOBULK_UNITS",
    "PseudobulkResult",
    "pseudobulk",
    "pseudobulk_dataset",
]

PSEUDOBULK_UNITS = "log1p normalised pseudobulk difference"
PSEUDOBULK_DEFINITION = (
    "delta = log1p(1e4 * S_t / L_t) - log1p(1e4 * S_c / L_c): S = summed raw counts of the gene over the "
    "cells of a (batch, cell line, drug[, dose]) group, L = the group's summed counts over all genes, t = "
    "treated, c = the control cells of the same batch and cell line; averaged over batches weighted by "
    "treated cells; NaN (missing, not 0) where treated + control counts of the gene are below min_counts "
    "in every batch. Natural-log units; not a rank score"
)
_SKIP = "\x00skip"


@dataclass(frozen=True)
class PseudobulkResult:
    """The signature AnnData (deltas) with what was computed on the way.

    Attributes:
        adata: the signature dataset (obs ``cell_line``, ``drug``, ...; X deltas, NaN = masked).
        deltas: the per-condition and per-batch tables.
        n_cells: cells read; ``n_nonint``: non-integer count values seen; ``seconds``: wall time.
    """

    adata: ad.AnnData
    deltas: Deltas
    n_cells: int
    n_nonint: int
    seconds: float


def _open_all(
    inputs: Sequence[str | Path], columns: list[str], layer: str | None, chunk_cells: int
) -> list[CellFile]:
    if not inputs:
        raise ValidationError("no input files; give one or more .h5ad files or AnnData .zarr stores")
    files = [open_cells(p, columns=columns, layer=layer, chunk_cells=chunk_cells) for p in inputs]
    for f in files:
        if f.n_cells == 0:
            raise DataError(f"{f.path}: the file has no cells; drop it from the inputs")
        check_labels(f.obs, path=str(f.path), columns=columns)
        check_genes_match(files[0].genes, f.genes, first_path=str(files[0].path), other_path=str(f.path))
    return files


def _labels(column: pd.Series) -> tuple[pd.Index, np.ndarray]:
    """A label column as (stripped category labels, int codes) without one Python string per cell."""
    cat = column.array if isinstance(column.dtype, pd.CategoricalDtype) else pd.Categorical(column)
    return pd.Index(cat.categories.astype(str).str.strip()), np.asarray(cat.codes)


def _group_table(
    files: list[CellFile], *, keys: list[str], drug: str, dose: str | None, control: str
) -> tuple[pd.DataFrame, list[np.ndarray]]:
    """Group labels (one row per group, sorted) and each file's per-cell group codes (int32).

    Works on category codes: memory is a few integers per cell, not one string per cell and column.
    """
    local = [{k: _labels(f.obs[k]) for k in keys} for f in files]
    vocab = {k: pd.Index(sorted(set().union(*(set(lab[k][0]) for lab in local)))) for k in keys}
    if dose:
        vocab[dose] = vocab[dose].union(pd.Index([""]))  # controls: one group per (batch, cell line)
    check_controls_present(pd.Series(vocab[drug]), control)
    sizes = [len(vocab[k]) for k in keys]
    packed = []
    for lab in local:
        glob = {k: vocab[k].get_indexer(lab[k][0])[lab[k][1]] for k in keys}
        if dose:
            glob[dose] = np.where(
                glob[drug] == vocab[drug].get_loc(control), vocab[dose].get_loc(""), glob[dose]
            )
        key = np.zeros(len(glob[keys[0]]), dtype=np.int64)
        for k, n in zip(keys, sizes, strict=True):
            key = key * n + glob[k]
        packed.append(key)
    uniq = np.unique(np.concatenate([np.unique(k) for k in packed]))
    codes = [np.searchsorted(uniq, k).astype(np.int32) for k in packed]
    cols, rest = {}, uniq
    for k, n in zip(reversed(keys), reversed(sizes), strict=True):
        cols[k] = vocab[k][rest % n]
        rest = rest // n
    groups = pd.DataFrame({k: np.asarray(cols[k]) for k in keys})
    groups["n_cells"] = sum(np.bincount(c, minlength=len(groups)) for c in codes)
    return groups, codes


def _gene_columns(available: pd.Index, genes: Sequence[str]) -> np.ndarray:
    """Positions of ``genes`` in the files' gene axis (exact names first, then any case).

    Raises:
        ValidationError: an empty list, or duplicates. UnknownNameError: a gene not in the files.
    """
    wanted = [str(g).strip() for g in genes if str(g).strip()]
    if not wanted:
        raise ValidationError("the gene list is empty; give one gene name per line, or leave --genes out")
    pos = available.get_indexer(wanted)
    if (pos < 0).any():
        keys = {name_key(g): i for i, g in enumerate(available)}
        for j in np.flatnonzero(pos < 0):
            hit = keys.get(name_key(wanted[j]))
            if hit is None:
                raise unknown_name("gene (--genes) in the input files", wanted[j], list(available))
            pos[j] = hit
    if len(set(pos)) != len(pos):
        raise ValidationError(
            f"the gene list names {len(pos) - len(set(pos))} gene(s) twice; list each gene once"
        )
    return np.asarray(pos, dtype=np.intp)


def _signature_adata(deltas: Deltas, genes: pd.Index, *, dose: str | None) -> ad.AnnData:
    cond = deltas.conditions
    drug_names = cond.iloc[:, 1].astype(str)
    display = drug_names + " (" + cond[dose].astype(str) + ")" if dose else drug_names
    lines = cond.iloc[:, 0].astype(str)
    obs = pd.DataFrame(
        {
            "cell_line": lines.to_numpy(),
            "cell_line_id": lines.map(slug).to_numpy(),
            "drug": display.to_numpy(),
            "drug_id": display.map(slug).to_numpy(),
            "compound": drug_names.to_numpy(),
            "dose": cond[dose].astype(str).to_numpy() if dose else np.full(len(cond), ""),
            "n_cells": cond["n_cells"].to_numpy(),
            "n_control_cells": cond["n_control_cells"].to_numpy(),
            "n_batches": cond["n_batches"].to_numpy(),
            "n_genes_tested": (~np.isnan(deltas.values)).sum(axis=1).astype(np.int32),
            "n_up_significant": np.zeros(len(cond), dtype=np.int32),
        },
        index=pd.Index((lines.map(slug) + "|" + display.map(slug)).to_numpy(), name="signature"),
    )
    for col in ("cell_line", "cell_line_id", "drug", "drug_id", "compound"):
        obs[col] = obs[col].astype("category")
    var = pd.DataFrame(
        {
            "gene_id": genes.to_numpy(),
            "n_signatures": (~np.isnan(deltas.values)).sum(axis=0).astype(np.int32),
        },
        index=pd.Index(genes.to_numpy(), name="gene"),
    )
    return ad.AnnData(X=deltas.values, obs=obs, var=var)


def pseudobulk(
    inputs: Sequence[str | Path],
    *,
    cell_line_col: str,
    drug_col: str,
    control: str,
    batch_col: str,
    dose_col: str | None = None,
    layer: str | None = None,
    scheduler: str = "synchronous",
    chunk_cells: int = 20_000,
    min_counts: float = 10.0,
    target_sum: float = 1e4,
    local_processes: bool = True,
    genes: Sequence[str] | None = None,
    de: bool = False,
    de_threshold: float = 0.5,
    de_alpha: float = 0.05,
    progress: Callable[[int, int], None] | None = None,
    on_client: Callable[[object], None] | None = None,
) -> PseudobulkResult:
    """Compute control-matched pseudobulk deltas from single-cell counts (nothing is written).

    Args:
        inputs: ``.h5ad`` files and/or AnnData ``.zarr`` stores with the same genes.
        cell_line_col, drug_col, batch_col, dose_col: obs columns (``dose_col`` optional).
        control: the control label in ``drug_col`` (e.g. ``DMSO_TF``).
        layer: read ``layers[layer]`` (raw counts) instead of ``X``.
        scheduler: ``synchronous``, ``local`` (a LocalCluster of 2 single-thread workers) or ``tcp://HOST:PORT``.
        chunk_cells: cells per Dask block (memory per task ~ chunk_cells x genes).
        min_counts: mask genes whose treated + control counts in a batch are below this.
        target_sum: counts per normalised pseudobulk profile.
        local_processes: ``local`` workers are processes (``False``: threads of this process).
        genes: keep only these genes (in this order; libraries still count every gene). Cuts memory
            and output for wide files (Tahoe: 62,710 genes).
        de: also make DE calls (``layers["de"]``, ``layers["qvalue"]``; see :data:`DE_DEFINITION`);
            the chunks then also sum per-cell log-normalised values and squares (about 2-3x the work).
        de_threshold, de_alpha: |delta| and q-value cutoffs of the DE calls.
        progress: called with (tasks done, tasks in total).
        on_client: called with the distributed client once connected (e.g. to print its dashboard link).

    Raises:
        ValidationError: bad option. DataError / UnknownNameError: bad input (see :mod:`._validate`).
    """
    t0 = time.perf_counter()
    scheduler = check_scheduler(scheduler)
    chunk_cells = check_chunk_cells(chunk_cells)
    for what, value, ok in (
        ("min_counts", min_counts, min_counts >= 0),
        ("target_sum", target_sum, target_sum > 0),
        ("de_threshold", de_threshold, de_threshold >= 0),
        ("de_alpha", de_alpha, 0 < de_alpha <= 1),
    ):
        if not (ok and np.isfinite(value)):
            raise ValidationError(
                f"{what} = {value!r} is out of range (min_counts >= 0, target_sum > 0, de_threshold >= 0, "
                "0 < de_alpha <= 1)"
            )
    keys = [batch_col, cell_line_col, drug_col] + ([dose_col] if dose_col else [])
    if len(set(keys)) != len(keys):
        raise ValidationError(f"the label columns must differ; got batch, cell line, drug, dose = {keys}")
    files = _open_all(inputs, keys, layer, chunk_cells)
    groups, codes = _group_table(files, keys=keys, drug=drug_col, dose=dose_col, control=control)
    columns = None if genes is None else _gene_columns(files[0].genes, genes)
    kept = files[0].genes if columns is None else files[0].genes[columns]
    with scheduler_client(scheduler, processes=local_processes) as client:
        if client is not None and on_client is not None:
            on_client(client)
        sums = group_sums(
            [f.counts for f in files], codes, client=client, progress=progress, cell_stats=de, columns=columns
        )
    n_cells = sum(f.n_cells for f in files)
    if sums.n_negative:
        raise DataError(
            f"the count matrix holds {sums.n_negative:,} negative values; pseudobulk needs raw counts: "
            "pass --layer with the raw counts"
        )
    warn_nonint(sums.n_nonint, "the count matrix's")

    def expand(part: np.ndarray) -> np.ndarray:
        full = np.zeros((len(groups), len(kept)))
        full[sums.groups] = part
        return full

    full = expand(sums.sums)
    cell_stats = (expand(sums.log_sums), expand(sums.log_squares)) if de else None
    deltas = pseudobulk_deltas(
        groups,
        full,
        batch=batch_col,
        cell_line=cell_line_col,
        drug=drug_col,
        dose=dose_col,
        control=control,
        target_sum=target_sum,
        min_counts=min_counts,
        library=expand(sums.library[:, None])[:, 0],
        cell_stats=cell_stats,
        de_threshold=de_threshold,
        de_alpha=de_alpha,
    )
    adata = _signature_adata(deltas, kept, dose=dose_col)
    if deltas.de is not None:
        adata.layers["de"] = deltas.de
        adata.layers["qvalue"] = deltas.qvalues
        adata.obs["n_up_significant"] = (deltas.de > 0).sum(axis=1).astype(np.int32)
        adata.obs["n_down_significant"] = (deltas.de < 0).sum(axis=1).astype(np.int32)
        adata.uns["de_definition"] = DE_DEFINITION
    adata.uns["score"] = PSEUDOBULK_DEFINITION
    adata.uns["units"] = PSEUDOBULK_UNITS
    adata.uns["provenance"] = {
        "source": "pseudobulk",
        "inputs": _inputs_table([file_fingerprint(f.path) for f in files]),
        "parameters": {
            "cell_line_col": cell_line_col,
            "drug_col": drug_col,
            "control": control,
            "batch_col": batch_col,
            "dose_col": dose_col or "",
            "layer": layer or "X",
            "chunk_cells": chunk_cells,
            "min_counts": min_counts,
            "genes": "all" if genes is None else f"{len(kept)} given",
            "de": de,
            "de_threshold": de_threshold,
            "de_alpha": de_alpha,
            "target_sum": target_sum,
            "scheduler": scheduler.split("://")[0],
        },
        "n_cells": n_cells,
        "n_groups": len(groups),
        "n_nonint_values": sums.n_nonint,
        "package_version": _version(),
        "dask_version": dask.__version__,
        "anndata_version": importlib.metadata.version("anndata"),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return PseudobulkResult(adata, deltas, n_cells, sums.n_nonint, time.perf_counter() - t0)


def _inputs_table(prints: list[dict[str, object]]) -> dict[str, list[object]]:
    """Fingerprints as columns (h5ad stores a mapping of equal-length lists, not a list of mappings)."""
    return {k: [p[k] for p in prints] for k in ("name", "size", "mtime", "sha256")}


def _version() -> str:
    from perturb_core import __version__

    return __version__


def pseudobulk_dataset(
    inputs: Sequence[str | Path],
    *,
    name: str,
    overwrite: bool = False,
    settings: Settings | None = None,
    **options: object,
) -> tuple[Path, PseudobulkResult]:
    """:func:`pseudobulk`, then register the result as user dataset ``name`` (written atomically).

    The name is checked before any work; nothing is written unless every step succeeds.
    ``options`` are :func:`pseudobulk`'s keyword arguments.

    Returns:
        The written ``.h5ad`` and the result.
    """
    check_dataset_name(name, overwrite=overwrite, settings=settings)
    result = pseudobulk(inputs, **options)  # type: ignore[arg-type]
    result.adata.uns["dataset"] = name
    files = ", ".join(Path(p).name for p in inputs)
    desc = f"pseudobulk deltas ({PSEUDOBULK_UNITS}) from {result.n_cells:,} cells: {files}"
    return write_user_dataset(result.adata, name=name, description=desc, settings=settings), result
