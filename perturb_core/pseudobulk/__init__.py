"""Single-cell counts -> pseudobulk delta signatures on Dask (same code on a laptop and a cluster).

Reading: :func:`open_cells` (``.h5ad`` or AnnData zarr, X or a layer, CSR or dense) gives a Dask
array of cell chunks. Aggregation: each chunk's per-group count sums (a sparse one-hot
group x cell matrix times the chunk), merged in a tree. Deltas: library-size normalised,
log1p, minus the same batch's control in the same cell line, averaged over batches.

    result = pseudobulk(["plate1.h5ad"], cell_line_col="cell_line", drug_col="drug",
                        control="DMSO_TF", batch_col="plate")
    path, result = pseudobulk_dataset([...], name="my-screen", ...)   # registered, usable as --dataset
"""

from perturb_core.pseudobulk._aggregate import GroupSums, chunk_sums, group_sums, merge_sums
from perturb_core.pseudobulk._de import DE_DEFINITION, de_calls
from perturb_core.pseudobulk._deltas import Deltas, pseudobulk_deltas
from perturb_core.pseudobulk._pipeline import (
    PSEUDOBULK_DEFINITION,
    PSEUDOBULK_UNITS,
    PseudobulkResult,
    pseudobulk,
    pseudobulk_dataset,
)
from perturb_core.pseudobulk._read import CellFile, file_fingerprint, open_cells
from perturb_core.pseudobulk._validate import SCHEDULERS, NonIntegerCountsWarning, check_scheduler

__all__ = [
    "DE_DEFINITION",
    "PSEUDOBULK_DEFINITION",
    "PSEUDOBULK_UNITS",
    "SCHEDULERS",
    "CellFile",
    "Deltas",
    "GroupSums",
    "NonIntegerCountsWarning",
    "PseudobulkResult",
    "check_scheduler",
    "chunk_sums",
    "de_calls",
    "file_fingerprint",
    "group_sums",
    "merge_sums",
    "open_cells",
    "pseudobulk",
    "pseudobulk_dataset",
    "pseudobulk_deltas",
]
