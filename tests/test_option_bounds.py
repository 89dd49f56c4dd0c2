"""Every numeric option has a range: values outside it are refused with the range in the message (issue 10, 12)."""

from __future__ import annotations

import math

import pytest

from perturb_core.errors import ValidationError
from perturb_core.evidence import explain
from perturb_core.retrieval._options import check_int, check_power
from perturb_core.testing.graphs import tiny_graph, tiny_labels


@pytest.mark.parametrize("value", [-1, math.inf, math.nan, 1e308, 65, "4", True, None])
def test_similarity_power_outside_its_range(value) -> None:
    with pytest.raises(ValidationError, match=r"similarity_power must be a number in 0\.\.64"):
        check_power(value)


@pytest.mark.parametrize("value", [0, 4, 64, 2.5])
def test_similarity_power_inside_its_range(value) -> None:
    assert check_power(value) == float(value)


@pytest.mark.parametrize("value", [-1, 1001, 10**9, 1.0, "3", True])
def test_bounded_integers(value) -> None:
    with pytest.raises(ValidationError, match=r"hybrid_min_k must be an integer in 0\.\.1000"):
        check_int("hybrid_min_k", value, 0, 1000)


@pytest.mark.parametrize("budget", [0, -3, 10**9, 2.5, "ten", True])
def test_evidence_budget_outside_its_range(budget) -> None:
    with pytest.raises(ValidationError, match=r"budget must be an integer in 1\.\.100000"):
        explain(tiny_labels(), tiny_graph(), perturbation="A", gene="G1", budget=budget)
