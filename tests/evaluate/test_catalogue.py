"""The catalogue of methods and metrics: read from the registries; docs/methods.md is its output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from perturb_core.cli import main
from perturb_core.evaluate import CORE_METHODS, LGR_METHODS
from perturb_core.evaluate.catalogue import catalogue, catalogue_markdown
from perturb_core.metrics import METRICS
from perturb_core.retrieval import BASELINES, SELECTORS

DOC = Path(__file__).resolve().parents[2] / "docs" / "methods.md"


def test_docs_methods_md_is_the_generated_catalogue() -> None:
    assert DOC.read_text() == catalogue_markdown(), (
        "docs/methods.md is stale: run `python -m perturb_core methods --markdown > docs/methods.md`"
    )


def test_catalogue_reads_every_registry() -> None:
    doc = catalogue()
    for key, specs in (
        ("lgr_selectors", SELECTORS),
        ("lgr_baselines", BASELINES),
        ("lgr_methods", LGR_METHODS),
        ("core_methods", CORE_METHODS),
    ):
        assert list(doc[key]) == list(specs)
        for name, spec in specs.items():
            assert doc[key][name] == {
                "label": spec.label,
                "definition": spec.definition,
                "needs_llm": spec.needs_llm,
            }
    assert list(doc["metrics"]) == list(METRICS)
    assert all(m["unit"] and m["definition"] for m in doc["metrics"].values())
    assert doc["metrics"]["predicted_positive_rate"]["higher_is_better"] is None


def test_lgr_methods_take_labels_from_the_selector_and_baseline_specs() -> None:
    assert LGR_METHODS["chem_knn_retrieval"].label == SELECTORS["chem_knn_retrieval"].label
    assert LGR_METHODS["chem_knn"].label == BASELINES["chem_knn"].label
    assert LGR_METHODS["llm"].needs_llm and not LGR_METHODS["oracle"].needs_llm


@pytest.mark.parametrize("flag", ["--json", "--markdown", None])
def test_methods_command(capsys: pytest.CaptureFixture[str], flag: str | None) -> None:
    assert main(["methods", *([flag] if flag else [])]) == 0
    out = capsys.readouterr().out
    if flag == "--json":
        assert json.loads(out) == json.loads(json.dumps(catalogue()))
    elif flag == "--markdown":
        assert out == catalogue_markdown()
    else:
        assert "core_voting" in out and "CORE-Voting (no LLM)" in out
