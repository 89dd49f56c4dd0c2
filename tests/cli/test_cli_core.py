"""``python -m perturb_core core ...``: the JSON contract, per-pair CSV, explain, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from perturb_core.cli import main
from perturb_core.config import Settings
from perturb_core.evaluate.core import CONTRACT_KEYS

pytestmark = pytest.mark.realdata


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_evaluate_json_contract_and_csv(
    real_data: Settings, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    csv = tmp_path / "pairs.csv"
    code, out, err = run(
        capsys,
        "core", "evaluate", "--dataset", "tahoe-c32", "--task", "de",
        "--methods", "gene_frequency,core_voting", "--n-boot", "20", "--out", str(csv), "--json",
    )  # fmt: skip
    assert code == 0, err
    doc = json.loads(out)
    assert (doc["dataset"], doc["task"]) == ("tahoe-c32", "de")
    assert list(doc["methods"]) == ["gene_frequency", "core_voting"]
    for m in doc["methods"].values():
        assert set(m) == set(CONTRACT_KEYS)  # exactly the contract; extras are top-level
        assert isinstance(m["n_pairs"], int) and isinstance(m["n_genes_macro"], int)
    assert doc["methods"]["core_voting"]["macro_gene_auroc"] > 0.5
    pairs = pd.read_csv(csv)
    assert {"method", "pert", "gene", "label", "score"} <= set(pairs.columns)
    assert len(pairs) == 2 * doc["methods"]["core_voting"]["n_pairs"]


def test_evaluate_text_table(real_data: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "core", "evaluate", "--dataset", "tahoe-c32", "--task", "dir", "--methods", "non-llm",
        "--n-boot", "10", "--max-pairs", "500", "--quiet",
    )  # fmt: skip
    assert code == 0
    assert "core_voting" in out and "per-gene AUROC" in out and "max_pairs 500" in out


def test_explain_json(real_data: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys, "core", "explain", "--dataset", "perturbqa-k562", "--perturbation", "aars2", "--gene", "MT-ND5",
        "--budget", "10", "--json",
    )  # fmt: skip
    assert code == 0, err
    doc = json.loads(out)
    for key in ("positive", "negative", "vote", "prior", "score", "label", "graph", "gene_auroc"):
        assert key in doc
    assert doc["perturbation"] == "AARS2" and doc["n_positive"] + doc["n_negative"] <= 10
    assert {"nodes", "edges"} == set(doc["graph"])
    item = doc["positive"][0]
    assert {"perturbation", "relation", "path", "label", "weight"} <= set(item)
    assert item["path"][0] == "gene:AARS2"


def test_explain_crossline_json(real_data: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys, "core", "explain", "--dataset", "perturbqa-hepg2", "--perturbation", "actb", "--gene", "ACTN1",
        "--method", "core_voting_crossline", "--json",
    )  # fmt: skip
    assert code == 0, err
    doc = json.loads(out)
    for key in ("positive", "negative", "vote", "prior", "score", "label", "graph", "gene_auroc"):
        assert key in doc
    assert doc["method"] == "core_voting_crossline"
    xl = doc["crossline"]
    assert xl["relation"] == "co_response" and "perturbqa-hepg2" not in xl["lines"] and len(xl["lines"]) == 3
    assert all({"co_response", "same_knockdown"} & set(it["relations"]) for it in xl["items"])
    assert set(xl["sources"]) <= {"co_response", "same_knockdown"}
    assert doc["model"]["crossline_top_k"] is not None


def test_explain_learned_features(real_data: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys, "core", "explain", "--dataset", "perturbqa-hepg2", "--perturbation", "actb", "--gene", "ACTN1",
        "--method", "core_learned", "--json",
    )  # fmt: skip
    assert code == 0, err
    doc = json.loads(out)
    for key in ("positive", "negative", "vote", "prior", "score", "label", "graph", "gene_auroc"):
        assert key in doc
    assert doc["method"] == "core_learned" and 0 < doc["score"] < 1 and "voting_score" in doc
    feats = doc["features"]
    assert {"feature", "value", "reference", "contribution"} == set(feats[0])
    assert abs(feats[0]["contribution"]) >= abs(feats[-1]["contribution"])  # largest effect first
    assert doc["model"]["kind"] == "core_learned" and doc["model"]["crossline"] is False


def test_explain_text(real_data: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "core",
        "explain",
        "--dataset",
        "perturbqa-k562",
        "--perturbation",
        "AARS2",
        "--gene",
        "MT-ND5",
    )
    assert code == 0 and "positive evidence" in out and "score" in out


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (
            ["core", "evaluate", "--dataset", "tahoe-c32", "--methods", "core_votin"],
            "unknown CORE method 'core_votin'; valid: gene_frequency, core_voting,",
        ),
        (["core", "evaluate", "--dataset", "perturbqa-k56"], "closest known: perturbqa-k562"),
        (
            ["core", "explain", "--dataset", "perturbqa-k562", "--perturbation", "AARS3", "--gene", "MT-ND5"],
            "closest known: AARS",
        ),
        (
            ["core", "explain", "--dataset", "perturbqa-k562", "--perturbation", "AARS2", "--gene", "MTND9"],
            "unknown gene",
        ),
        (
            [
                "core",
                "evaluate",
                "--dataset",
                "tahoe-c32",
                "--methods",
                "core_reasoning",
                "--max-pairs",
                "50",
            ],
            "OPENAI_BASE_URL",
        ),
    ],
)
def test_errors_are_one_line(
    real_data: Settings, capsys: pytest.CaptureFixture[str], argv: list[str], match: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and match in err
    assert len(err.strip().splitlines()) == 1


def test_methods_listing(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "core", "methods", "--json")
    doc = json.loads(out)
    assert code == 0 and "core_voting" in doc["methods"] and doc["relations"]["regulates"]["leaky"]


def test_module_entry_point(real_data: Settings) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "perturb_core", "core", "methods"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0 and "core_voting" in proc.stdout


# Hostile numbers (issue 10, defect 12): refused at the boundary with their range, exit 2, one line.
_CORE_EVALUATE = [
    "core",
    "evaluate",
    "--dataset",
    "tahoe-c32",
    "--methods",
    "gene_frequency",
    "--max-pairs",
    "50",
]


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--seed", "-1"], "seed must be an integer in 0..4294967295 (0 <= seed < 2**32); got -1"),
        (
            ["--seed", str(2**64)],
            f"seed must be an integer in 0..4294967295 (0 <= seed < 2**32); got {2**64}",
        ),
        (
            ["--n-boot", str(10**9)],
            f"n_boot must be an integer in 1..100000 (bootstrap replicates, e.g. 1000); got {10**9}",
        ),
        (["--n-boot", "0"], "n_boot must be an integer in 1..100000"),
    ],
    ids=["seed -1", "seed 2**64", "n-boot 10**9", "n-boot 0"],
)
def test_hostile_numbers_are_refused_with_their_range(
    real_data: Settings, capsys: pytest.CaptureFixture[str], argv: list[str], match: str
) -> None:
    code, out, err = run(capsys, *_CORE_EVALUATE, *argv)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and match in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
