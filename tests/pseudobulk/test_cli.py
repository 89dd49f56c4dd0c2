"""``python -m perturb_core data pseudobulk`` end to end, and the result used by ``lgr predict``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from perturb_core.cli import main
from perturb_core.config import Settings
from perturb_core.data.registry import load_signatures
from perturb_core.pseudobulk import PSEUDOBULK_UNITS
from perturb_core.testing.cells import simulate_cells, write_h5ad

ARGS = ["--cell-line-col", "cell_line", "--drug-col", "drug", "--control", "DMSO_TF", "--batch-col", "plate"]
DRUGS = ("Afatinib", "Trametinib", "Binimetinib", "Bortezomib", "Vorinostat")


@pytest.fixture
def cells_file(tmp_path: Path) -> Path:
    c = simulate_cells(4_000, 120, n_plates=2, n_cell_lines=3, drug_names=DRUGS, seed=2)
    return write_h5ad(c, tmp_path / "cells.h5ad")


def test_cli_json_then_text_and_errors(
    cells_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PERTURB_CORE_DATA_DIR", str(tmp_path / "data"))
    code = main(
        [
            "data",
            "pseudobulk",
            str(cells_file),
            "--name",
            "sc-screen",
            *ARGS,
            "--chunk-cells",
            "900",
            "--json",
        ]
    )
    out = capsys.readouterr()
    assert code == 0, out.err
    doc = json.loads(out.out)
    assert doc["name"] == "sc-screen" and doc["units"] == PSEUDOBULK_UNITS and doc["n_cells"] == 4_000
    assert (doc["n_signatures"], doc["n_cell_lines"], doc["n_drugs"], doc["n_genes"]) == (15, 3, 5, 120)
    assert "pseudobulk" in out.err  # the tqdm bar
    ds = load_signatures("SC Screen")
    assert ds.units == PSEUDOBULK_UNITS and ds.adata.n_obs == 15
    code = main(["data", "pseudobulk", str(cells_file), "--name", "sc-screen", *ARGS, "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: a dataset named 'sc-screen' is already imported")
    code = main(
        ["data", "pseudobulk", str(cells_file), "--name", "sc-screen", *ARGS, "--force", "--quiet", "--de"]
    )
    out = capsys.readouterr().out
    assert (
        code == 0 and "15 signatures (3 cell lines x 5 drugs) x 120 genes" in out and "not rank scores" in out
    )
    code = main(["data", "pseudobulk", str(cells_file), "--name", "x", *ARGS, "--scheduler", "yarn"])
    err = capsys.readouterr().err
    assert code == 2 and "unknown scheduler 'yarn'" in err and "Traceback" not in err


def test_cli_warns_about_non_integer_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PERTURB_CORE_DATA_DIR", str(tmp_path / "data"))
    c = simulate_cells(800, 40, n_plates=2, n_cell_lines=2, n_drugs=2, seed=1)
    path = write_h5ad(c, tmp_path / "float.h5ad", noninteger=True)
    code = main(["data", "pseudobulk", str(path), "--name", "floats", *ARGS, "--json", "--quiet"])
    out = capsys.readouterr()
    assert code == 0 and "warning: " in out.err and "not whole numbers" in json.loads(out.out)["warnings"][0]


def test_lgr_predict_runs_on_a_pseudobulk_dataset(
    real_data: Settings, cells_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    data = tmp_path / "data"
    data.mkdir()
    (data / "processed").symlink_to(real_data.processed_dir)  # drug table and graph of the real data
    monkeypatch.setenv("PERTURB_CORE_DATA_DIR", str(data))
    assert main(["data", "pseudobulk", str(cells_file), "--name", "sc-drugs", *ARGS, "--quiet"]) == 0
    capsys.readouterr()
    argv = ["lgr", "predict", "--dataset", "sc-drugs", "--cell-line", "CL1", "--drug", "trametinib"]
    assert main([*argv, "--selector", "kg_mechanism", "--k", "3", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["dataset"] == "sc-drugs" and doc["k_used"] >= 1
    assert doc["units"] == "log1p normalised pseudobulk difference"  # not rank scores
    assert doc["neighbours"][0]["name"] == "Binimetinib"  # the other MEK inhibitor
    assert set(doc["metrics"]) >= {"pearson", "mae"}
