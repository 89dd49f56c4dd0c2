"""Small generated single-cell files shared by the pseudobulk tests (built once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from perturb_core.testing.cells import SyntheticCells, simulate_cells, write_h5ad, write_zarr

COLUMNS = {"cell_line_col": "cell_line", "drug_col": "drug", "control": "DMSO_TF", "batch_col": "plate"}


@pytest.fixture(scope="session")
def cells() -> SyntheticCells:
    """8,000 cells x 300 genes, 3 plates, 3 cell lines, 4 drugs each on one plate (Tahoe's layout), NB counts."""
    return simulate_cells(
        8_000,
        300,
        n_plates=3,
        n_cell_lines=3,
        n_drugs=4,
        batch_sd=0.6,
        control_fraction=0.3,
        drug_plates=True,
        seed=3,
    )


@pytest.fixture(scope="session")
def files(cells: SyntheticCells, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same counts as CSR h5ad, dense h5ad (in layers/counts) and CSR zarr."""
    d = tmp_path_factory.mktemp("cells")
    return {
        "h5ad": write_h5ad(cells, d / "cells.h5ad", chunk_cells=8_000),
        "dense_layer": write_h5ad(cells, d / "dense.h5ad", chunk_cells=8_000, dense=True, layer="counts"),
        "zarr": write_zarr(cells, d / "cells.zarr", chunk_cells=8_000),
    }
