"""Every method and metric of the package, read from the registries (for the CLI listing and docs/methods.md).

Labels and definitions are declared once, in the specs; this module only lays them out:
:func:`catalogue` as plain JSON, :func:`catalogue_markdown` as the tables of
``docs/methods.md`` (a test keeps that file equal to this output).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from perturb_core.data.registry import TASK_SPECS
from perturb_core.evaluate.core import CORE_METHODS
from perturb_core.evaluate.lgr import LGR_METHODS
from perturb_core.metrics import METRICS
from perturb_core.retrieval import AGGREGATION_LABELS, BASELINES, REGIME_LABELS, SELECTORS
from perturb_core.spec import MethodSpec

__all__ = ["catalogue", "catalogue_markdown"]

_SECTIONS: tuple[tuple[str, str, Mapping[str, MethodSpec[Any]]], ...] = (
    ("lgr_selectors", "LGR selectors (`lgr predict --selector`)", SELECTORS),
    ("lgr_baselines", "LGR baselines", BASELINES),
    ("lgr_methods", "LGR methods (`lgr evaluate --methods`)", LGR_METHODS),
    ("core_methods", "CORE methods (`core evaluate --methods`)", CORE_METHODS),
)


def catalogue() -> dict[str, Any]:
    """Every registry as plain JSON: methods (label, definition, needs_llm), regimes, aggregations, tasks, metrics."""
    doc: dict[str, Any] = {
        key: {
            name: {"label": s.label, "definition": s.definition, "needs_llm": s.needs_llm}
            for name, s in specs.items()
        }
        for key, _, specs in _SECTIONS
    }
    doc["lgr_regimes"] = dict(REGIME_LABELS)
    doc["lgr_aggregations"] = dict(AGGREGATION_LABELS)
    doc["core_tasks"] = {name: t.label for name, t in TASK_SPECS.items()}
    doc["metrics"] = {
        name: {
            "label": m.label,
            "definition": m.definition,
            "unit": m.unit,
            "higher_is_better": m.higher_is_better,
        }
        for name, m in METRICS.items()
    }
    return doc


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: tuple[str, ...], rows: list[tuple[object, ...]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def catalogue_markdown() -> str:
    """The method and metric tables of ``docs/methods.md`` (generated; do not edit that file by hand)."""
    out = [
        "# Methods and metrics",
        "",
        "Generated from the registries by `python -m perturb_core methods --markdown > docs/methods.md`;",
        "a test keeps this file equal to that output. Labels and definitions are declared once, in the",
        "specs (`perturb_core.spec.MethodSpec`, `perturb_core.metrics.MetricSpec`), and the app, the CLI",
        "and this page read them from there. Method details: [lgr.md](lgr.md), [core.md](core.md).",
    ]
    for _, title, specs in _SECTIONS:
        out += ["", f"## {title}", ""]
        out += _table(
            ("name", "label", "definition", "LLM"),
            [(f"`{n}`", s.label, s.definition, "yes" if s.needs_llm else "no") for n, s in specs.items()],
        )
    out += ["", "## LGR regimes and aggregations", ""]
    out += _table(
        ("name", "meaning"), [(f"`{n}`", v) for n, v in {**REGIME_LABELS, **AGGREGATION_LABELS}.items()]
    )
    out += ["", "## CORE label tasks (`core evaluate --task`)", ""]
    out += _table(("name", "meaning"), [(f"`{n}`", t.label) for n, t in TASK_SPECS.items()])
    out += ["", "## Metrics", ""]
    out += _table(
        ("name", "label", "definition", "unit", "direction"),
        [(f"`{n}`", m.label, m.definition, m.unit, m.better) for n, m in METRICS.items()],
    )
    return "\n".join(out) + "\n"
