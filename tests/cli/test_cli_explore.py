"""Tests of ``gene``, ``connectivity`` and ``lgr enrich`` (in-process through ``perturb_core.cli.main``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from perturb_core.cli import main
from perturb_core.config import Settings

MPAS = "PHLDA1\nSPRY2\nSPRY4\nDUSP4\nDUSP6\nCCND1\nEPHA2\nEPHA4\nETV4\nETV5\n"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.realdata
def test_connectivity_json_and_text(real_data: Settings, capsys, tmp_path: Path) -> None:
    down = tmp_path / "down.txt"
    down.write_text(MPAS + "NOT_A_GENE\n")
    code, out, _ = run(capsys, "connectivity", "--down", str(down), "--cell-line", "a498", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["cell_line"] == "A498" and doc["score"] == "wtcs" and doc["unknown_genes"] == ["NOT_A_GENE"]
    assert doc["signatures"][0]["moa"] == "MEK inhibitor"
    code, out, _ = run(capsys, "connectivity", "--down", str(down), "--top", "3")
    assert code == 0 and "not measured in tahoe (ignored): NOT_A_GENE" in out and "per drug" in out


@pytest.mark.realdata
def test_connectivity_ranked_list(real_data: Settings, capsys, tmp_path: Path) -> None:
    ranked = tmp_path / "ranked.rnk"
    ranked.write_text("gene\tscore\nEGR1\t-3\nFOS\t-2\nGAPDH\t0\nMKI67\t2\nTOP2A\t3\n")
    code, out, _ = run(capsys, "connectivity", "--ranked", str(ranked), "--n", "2", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["up"] == ["TOP2A", "MKI67"] and doc["down"] == ["FOS", "EGR1"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["connectivity"], "give --up FILE and/or --down FILE"),
        (["connectivity", "--up", "missing.txt"], "up file 'missing.txt' does not exist"),
        (["connectivity", "--ranked", "a", "--up", "b"], "either --ranked or --up/--down"),
    ],
)
def test_connectivity_bad_arguments(capsys, tmp_path: Path, monkeypatch, argv, message) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, *argv)
    assert code == 2 and err.startswith("error: ") and message in err


@pytest.mark.realdata
def test_connectivity_only_unknown_genes(real_data: Settings, capsys, tmp_path: Path) -> None:
    up = tmp_path / "up.txt"
    up.write_text("NOPE1\nNOPE2\n")
    code, _, err = run(capsys, "connectivity", "--up", str(up))
    assert code == 2 and "none of the 2 genes is measured in dataset 'tahoe': NOPE1, NOPE2" in err


@pytest.mark.realdata
def test_gene_json_and_text(real_data: Settings, capsys) -> None:
    code, out, _ = run(capsys, "gene", "egr1", "--json", "--quiet", "--no-core-auroc", "--top", "3")
    doc = json.loads(out)
    assert code == 0 and doc["gene"] == "EGR1" and doc["n_signatures"] > 3000 and len(doc["drugs_up"]) == 3
    assert {"knockdowns", "core_auroc", "gene_sets", "units"} <= set(doc)
    code, out, _ = run(capsys, "gene", "EGR1", "--quiet", "--top", "2")
    assert code == 0 and "CORE-Voting per-gene AUROC" in out and "rank score" in out
    code, _, err = run(capsys, "gene", "NOTAGENE123", "--quiet", "--no-core-auroc")
    assert code == 2 and "unknown gene: 'NOTAGENE123'" in err


@pytest.mark.realdata
def test_lgr_enrich_json(real_data: Settings, capsys) -> None:
    code, out, _ = run(
        capsys, "lgr", "enrich", "--cell-line", "A498", "--drug", "Trametinib", "--selector", "kg_mechanism",
        "--n-top", "30", "--hide-uninformative", "--json", "--quiet",
    )  # fmt: skip
    doc = json.loads(out)
    assert code == 0 and doc["n_top"] == 30 and doc["hide_uninformative"] and doc["n_hidden"] > 0
    assert set(doc["summary"]) == {"up", "down"} and "rank scores" in doc["units"]
    assert all(len(v) == 30 for v in doc["top"].values())
