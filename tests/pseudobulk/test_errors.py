"""Bad pseudobulk input: one clear message each, and no dataset (not even a temporary file) written."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from perturb_core.config import Settings, get_settings
from perturb_core.errors import DataError, PerturbCoreError, UnknownNameError, ValidationError
from perturb_core.pseudobulk import NonIntegerCountsWarning, pseudobulk, pseudobulk_dataset
from perturb_core.testing.cells import SyntheticCells, simulate_cells, write_h5ad

from .conftest import COLUMNS


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return get_settings().with_(data_dir=tmp_path / "data")


def _small(**kw: object) -> SyntheticCells:
    return simulate_cells(600, 50, n_plates=2, n_cell_lines=2, n_drugs=2, seed=1, **kw)  # type: ignore[arg-type]


def _nothing_written(settings: Settings) -> None:
    user = settings.data_dir / "user"
    assert not user.exists() or not [p for p in user.iterdir() if p.suffix in (".h5ad", ".tmp")]
    assert not (user / "datasets.json").exists()


def _no_control_for(cells: SyntheticCells, plate: str, line: str) -> SyntheticCells:
    obs = cells.obs.copy()
    drop = (obs["plate"] == plate) & (obs["cell_line"] == line) & (obs["drug"] == "DMSO_TF")
    obs["drug"] = obs["drug"].astype(str).where(~drop, "drug1").astype("category")
    return replace(cells, obs=obs)


CASES = {
    "missing column": (lambda c: c, {"cell_line_col": "cell_type"}, DataError, r"obs has no column 'cell_type'.*columns are"),
    "unknown control": (lambda c: c, {"control": "DMSO"}, UnknownNameError, r"control label .*'DMSO'.*DMSO_TF"),
    "no control in a batch": (lambda c: _no_control_for(c, "plate2", "CL1"), {}, DataError, r"batch 'plate2' has treated cells of cell line 'CL1' but no 'DMSO_TF' control"),
    "empty group": (lambda c: replace(c, library=np.where(c.obs["drug"].to_numpy() == "drug2", 0.0, c.library)), {}, DataError, r"drug 'drug2'\) has \d+ cells but no counts"),
    "unknown scheduler": (lambda c: c, {"scheduler": "slurm"}, ValidationError, r"unknown scheduler 'slurm'.*tcp://"),
    "bad chunk size": (lambda c: c, {"chunk_cells": 0}, ValidationError, r"chunk_cells must be an integer in 1\.\.10000000; got 0"),
    "same column twice": (lambda c: c, {"batch_col": "cell_line"}, ValidationError, r"label columns must differ"),
    "missing label values": (lambda c: replace(c, obs=c.obs.assign(plate=c.obs["plate"].where(c.obs.index != "cell7"))), {}, DataError, r"1 cells have no value in obs column 'plate'"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_clear_error_and_writes_nothing(
    case: str, tmp_path: Path, settings: Settings
) -> None:
    change, options, exc, match = CASES[case]
    path = write_h5ad(change(_small()), tmp_path / "bad.h5ad")
    with pytest.raises(exc, match=match):
        pseudobulk_dataset([path], name="bad", settings=settings, **{**COLUMNS, **options})
    _nothing_written(settings)


def test_gene_axis_mismatch_between_files(tmp_path: Path, settings: Settings) -> None:
    a = write_h5ad(_small(), tmp_path / "a.h5ad")
    cells = _small()
    genes = cells.genes.to_numpy().copy()
    genes[[3, 4]] = genes[[4, 3]]
    b = write_h5ad(replace(cells, genes=pd.Index(genes)), tmp_path / "b.h5ad")
    with pytest.raises(
        DataError,
        match=r"gene axis of .*b\.h5ad differs from .*a\.h5ad \(gene #3 is 'GENE00003' vs 'GENE00004'\)",
    ):
        pseudobulk_dataset([a, b], name="bad", settings=settings, **COLUMNS)
    c = write_h5ad(simulate_cells(600, 40, n_plates=2, n_cell_lines=2, n_drugs=2), tmp_path / "c.h5ad")
    with pytest.raises(DataError, match=r"50 genes vs 40"):
        pseudobulk_dataset([a, c], name="bad", settings=settings, **COLUMNS)
    _nothing_written(settings)


def test_non_integer_counts_warn_but_compute(tmp_path: Path) -> None:
    path = write_h5ad(_small(), tmp_path / "float.h5ad", noninteger=True)
    with pytest.warns(NonIntegerCountsWarning, match=r"not whole numbers.*--layer"):
        res = pseudobulk([path], **COLUMNS)
    assert res.n_nonint > 0 and res.adata.uns["provenance"]["n_nonint_values"] == res.n_nonint


def test_missing_layer_unreadable_and_unsupported_files(tmp_path: Path) -> None:
    path = write_h5ad(_small(), tmp_path / "x.h5ad")
    with pytest.raises(DataError, match=r"no 'layers/counts' matrix.*--layer"):
        pseudobulk([path], **COLUMNS, layer="counts")
    with pytest.raises(DataError, match="does not exist"):
        pseudobulk([tmp_path / "nope.h5ad"], **COLUMNS)
    (tmp_path / "junk.h5ad").write_text("not hdf5")
    with pytest.raises(DataError, match="not a readable .h5ad"):
        pseudobulk([tmp_path / "junk.h5ad"], **COLUMNS)
    (tmp_path / "cells.csv").write_text("a,b")
    with pytest.raises(DataError, match=r"unsupported input '\.csv'"):
        pseudobulk([tmp_path / "cells.csv"], **COLUMNS)


def test_unreachable_scheduler_address(tmp_path: Path) -> None:
    path = write_h5ad(_small(), tmp_path / "x.h5ad")
    with pytest.raises(
        DataError, match=r"no Dask scheduler answers at 'tcp://127\.0\.0\.1:9'.*dask scheduler"
    ):
        pseudobulk([path], **COLUMNS, scheduler="tcp://127.0.0.1:9")


def test_a_failed_write_leaves_no_file(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import anndata as ad

    def boom(self: ad.AnnData, filename: Path, **kw: object) -> None:
        Path(filename).write_bytes(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ad.AnnData, "write_h5ad", boom)
    path = write_h5ad(_small(), tmp_path / "x.h5ad")
    with pytest.raises(PerturbCoreError, match="No space left"):
        pseudobulk_dataset([path], name="full", settings=settings, **COLUMNS)
    _nothing_written(settings)


def test_the_name_is_checked_before_the_work(tmp_path: Path, settings: Settings) -> None:
    with pytest.raises(ValidationError, match="taken by a built-in dataset"):
        pseudobulk_dataset([tmp_path / "never-read.h5ad"], name="tahoe", settings=settings, **COLUMNS)


def test_unknown_or_repeated_genes_in_the_subset(tmp_path: Path) -> None:
    path = write_h5ad(_small(), tmp_path / "x.h5ad")
    with pytest.raises(UnknownNameError, match=r"gene \(--genes\) in the input files: 'NOPE1'"):
        pseudobulk([path], **COLUMNS, genes=["GENE00001", "NOPE1"])
    with pytest.raises(ValidationError, match="names 1 gene"):
        pseudobulk([path], **COLUMNS, genes=["GENE00001", "gene00001"])


@pytest.mark.parametrize(
    ("option", "value"), [("min_counts", -1.0), ("de_alpha", 0.0), ("de_threshold", float("nan"))]
)
def test_out_of_range_numbers(tmp_path: Path, option: str, value: float) -> None:
    path = write_h5ad(_small(), tmp_path / "x.h5ad")
    with pytest.raises(ValidationError, match=rf"{option} = .* is out of range"):
        pseudobulk([path], **COLUMNS, **{option: value})


def test_duplicate_gene_names(tmp_path: Path) -> None:
    cells = _small()
    genes = cells.genes.to_numpy().copy()
    genes[7] = genes[6]
    path = write_h5ad(replace(cells, genes=pd.Index(genes)), tmp_path / "dup.h5ad")
    with pytest.raises(DataError, match=r"duplicate gene names in var, e.g. 'GENE00006'"):
        pseudobulk([path], **COLUMNS)
