"""The shared evaluation harness: method names, integer checks, the timed method loop, JSON numbers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from perturb_core.errors import UnknownNameError, ValidationError
from perturb_core.evaluate._harness import (
    check_methods,
    check_positive_int,
    interval_table,
    json_number,
    run_methods,
)
from perturb_core.spec import MethodSpec, registry

SPECS = registry(
    MethodSpec("cell_mean", "Cell mean", "mean of the line", print),
    MethodSpec("core_voting", "CORE-Voting", "vote", print),
)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("cell_mean,core_voting", ("cell_mean", "core_voting")),
        (" Cell-Mean , cell_mean ,, CORE voting", ("cell_mean", "core_voting")),
        (["core_voting", "cell_mean"], ("core_voting", "cell_mean")),
    ],
)
def test_check_methods_canonical_in_order_without_repeats(given: object, expected: tuple[str, ...]) -> None:
    assert check_methods(given, SPECS, "test method") == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("given", "error", "match"),
    [
        ("", ValidationError, r"^no method given; valid: cell_mean, core_voting$"),
        ([" ", ""], ValidationError, r"^no method given"),
        ("cell_mean,knn", UnknownNameError, r"^unknown test method 'knn'; valid: cell_mean, core_voting$"),
    ],
)
def test_check_methods_errors(given: object, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        check_methods(given, SPECS, "test method")  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [0, -3, 1.5, True, "2", None])
def test_check_positive_int_refuses(value: object) -> None:
    with pytest.raises(
        ValidationError, match=rf"^n_boot must be a positive integer \(e.g. 200\); got {value!r}$"
    ):
        check_positive_int("n_boot", value, example=200)


def test_check_positive_int_accepts_and_optional() -> None:
    check_positive_int("k", 3)
    check_positive_int("max_queries", None, optional=True)
    with pytest.raises(ValidationError, match="must be a positive integer or None"):
        check_positive_int("max_queries", 0, optional=True)


def test_run_methods_maps_each_method_onto_one_bar_and_times_it() -> None:
    seen: list[tuple[int, int]] = []

    def run(name: str, step) -> str:
        if name == "b":
            step(2, 4)  # half of b's own 4 steps
        return name.upper()

    out, elapsed = run_methods(["a", "b", "c"], [1, 4, 1], run, lambda d, t: seen.append((d, t)))
    assert out == {"a": "A", "b": "B", "c": "C"} and list(out) == ["a", "b", "c"]
    assert set(elapsed) == {"a", "b", "c"} and all(v >= 0 for v in elapsed.values())
    assert seen == [(0, 6), (1, 6), (3, 6), (5, 6), (6, 6)]


def test_run_methods_without_progress_and_bad_steps() -> None:
    assert run_methods(["a"], [1], lambda n, s: 1)[0] == {"a": 1}
    with pytest.raises(ValueError, match="2 step counts for 1 methods"):
        run_methods(["a"], [1, 1], lambda n, s: 1)


@pytest.mark.parametrize(
    ("x", "expected"),
    [(1, 1.0), (np.float32(0.5), 0.5), (math.nan, None), (np.inf, None), ("x", None), (None, None)],
)
def test_json_number(x: object, expected: float | None) -> None:
    assert json_number(x) == expected


def test_interval_table() -> None:
    summary = pd.DataFrame(
        {
            "method": ["a", "a"],
            "metric": ["pearson", "mae"],
            "ci_low": [0.1, np.nan],
            "ci_high": [0.2, 0.3],
        }
    )
    assert interval_table(summary, ["a", "b"], ["pearson", "mae"]) == {
        "a": {"pearson": [0.1, 0.2], "mae": [None, 0.3]},
        "b": {"pearson": [None, None], "mae": [None, None]},
    }
