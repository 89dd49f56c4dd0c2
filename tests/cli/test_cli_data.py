"""``python -m perturb_core data ...`` on the real data."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from perturb_core.cli import main


@pytest.mark.realdata
def test_info_json(real_data, capsys) -> None:
    assert main(["data", "info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    tahoe = info["datasets"]["tahoe"]
    assert tahoe["kind"] == "signatures" and tahoe["cell_lines"] == 40 and tahoe["signatures"] == 4120
    k562 = info["datasets"]["perturbqa-k562"]
    assert k562["de"]["train"]["pairs"] == 134_467 and k562["de"]["test"]["pairs"] == 23_212
    assert 0 < k562["de"]["train"]["positive_rate"] < 0.2
    assert info["graph"]["nodes"]["gene"] > 20_000
    assert info["graph"]["edges"]["interacts"] == 147_164
    assert "AR-42" in info["drugs"]["unmatched"]


@pytest.mark.realdata
def test_fetch_and_build_are_no_ops_when_done(real_data, capsys) -> None:
    assert main(["data", "fetch", "--quiet"]) == 0
    assert "73 present" in capsys.readouterr().out
    assert main(["data", "build", "--quiet"]) == 0
    assert "built " not in capsys.readouterr().out


def test_bad_mirror_is_one_line_error(tmp_path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "perturb_core",
            "data",
            "fetch",
            "--quiet",
            "--mirror",
            str(tmp_path / "absent"),
        ],
        capture_output=True,
        text=True,
        env={"PERTURB_CORE_DATA_DIR": str(tmp_path / "d"), "PATH": ""},
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: mirror folder") and "Traceback" not in proc.stderr
