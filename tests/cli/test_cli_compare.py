"""``python -m perturb_core lgr compare`` (in-process through ``perturb_core.cli.main``) on Tahoe."""

from __future__ import annotations

import json

import pytest

from perturb_core.cli import main


@pytest.mark.realdata
def test_lgr_compare_json_text_and_errors(real_data, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "lgr",
        "compare",
        "--cell-line",
        "C32",
        "--drug",
        "Trametinib",
        "--selector",
        "chem_knn_retrieval",
    ]
    assert main([*argv, "--selector-b", "transcriptome_knn", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["mode"] == "selectors"
    assert (doc["left"]["selector"], doc["right"]["selector"]) == ("chem_knn_retrieval", "transcriptome_knn")
    assert set(doc["metrics"]["pearson"]) >= {"left", "right", "difference", "better", "notable"}
    assert doc["similarity"]["observed_pearson"] == pytest.approx(1.0)
    assert main([*argv, "--cell-line-b", "NCI-H23"]) == 0
    out = capsys.readouterr().out
    assert "one drug in two cell lines" in out and "differences" in out
    assert main([*argv, "--drug-b", "trametinib"]) == 2
    assert capsys.readouterr().err.startswith("error: both sides are the same query")
