"""The app shows a pseudobulk dataset's units (not the rank-score wording) and its pages run on it."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from perturb_core.cli import main
from perturb_core.config import Settings
from perturb_core.testing.cells import simulate_cells, write_h5ad

APP = str(Path(__file__).resolve().parents[2] / "app.py")
ARGS = ["--cell-line-col", "cell_line", "--drug-col", "drug", "--control", "DMSO_TF", "--batch-col", "plate"]


def test_data_and_retrieval_pages_on_a_pseudobulk_dataset(
    real_data: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "processed").symlink_to(real_data.processed_dir)
    monkeypatch.setenv("PERTURB_CORE_DATA_DIR", str(data))
    cells = simulate_cells(
        3_000, 80, n_plates=2, drug_names=("Afatinib", "Trametinib", "Binimetinib", "Vorinostat")
    )
    path = write_h5ad(cells, tmp_path / "cells.h5ad")
    assert main(["data", "pseudobulk", str(path), "--name", "pb-app", *ARGS, "--quiet"]) == 0
    for page in ("data", "retrieval"):
        at = AppTest.from_file(APP, default_timeout=120)
        at.session_state["sig_dataset"] = "pb-app"
        at.run()
        at.switch_page(f"pages/{page}.py").run()
        assert not at.exception and not at.error, (page, [e.value for e in at.exception])
        if page == "data":
            captions = " ".join(c.value for c in at.caption)
            assert "log1p normalised pseudobulk difference" in captions and "inverse-normal" not in captions
