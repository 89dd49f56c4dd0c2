"""One spec shape for method registries, and one wording for every unknown choice."""

from __future__ import annotations

import dataclasses

import pytest

from perturb_core.errors import UnknownNameError, ValidationError, check_choice
from perturb_core.spec import MethodSpec, registry, resolve


def _fn() -> str:
    return "ran"


SPECS = registry(
    MethodSpec("cell_mean", "Cell mean (baseline)", "mean training delta of the cell line", _fn),
    MethodSpec("llm", "LLM selector", "the model picks k neighbours", _fn, needs_llm=True),
    MethodSpec("core_voting", "CORE-Voting (rule-based)", "weighted positive fraction", _fn),
)


def test_registry_keeps_order_and_is_read_only() -> None:
    assert list(SPECS) == ["cell_mean", "llm", "core_voting"]
    assert SPECS["llm"].needs_llm and not SPECS["cell_mean"].needs_llm
    assert SPECS["cell_mean"].fn() == "ran"
    with pytest.raises(TypeError):
        SPECS["new"] = SPECS["llm"]  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        SPECS["llm"].label = "x"  # type: ignore[misc]


def test_registry_rejects_duplicates() -> None:
    a = MethodSpec("a", "A", "a", _fn)
    with pytest.raises(ValueError, match=r"duplicate names in a registry: \['a'\]"):
        registry(a, MethodSpec("b", "B", "b", _fn), MethodSpec("a", "A2", "a again", _fn))
    assert list(registry()) == []


@pytest.mark.parametrize("name", ["core_voting", "CORE-Voting", "core voting", " Core_Voting ", "corevoting"])
def test_resolve_is_insensitive(name: str) -> None:
    assert resolve("method", name, SPECS) is SPECS["core_voting"]


def test_resolve_unknown_lists_the_valid_names() -> None:
    with pytest.raises(UnknownNameError, match=r"^unknown method 'knn'; valid: cell_mean, llm, core_voting$"):
        resolve("method", "knn", SPECS)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("unseen-drug", "unseen-drug"),
        ("Unseen_Drug", "unseen-drug"),
        ("UNSEEN DRUG", "unseen-drug"),
        ("open-world", "open-world"),
    ],
)
def test_check_choice_matches_exactly_or_by_name_key(value: str, expected: str) -> None:
    assert check_choice("regime", value, ("unseen-drug", "unseen-cell-line", "open-world")) == expected


@pytest.mark.parametrize(
    ("value", "shown"),
    [("unseen", "'unseen'"), ("", "''"), ("   ", "'   '"), (None, "None"), (3, "3"), (["de"], r"\['de'\]")],
)
def test_check_choice_error_wording(value: object, shown: str) -> None:
    with pytest.raises(UnknownNameError, match=rf"^unknown task {shown}; valid: de, dir$") as info:
        check_choice("task", value, ["de", "dir"])
    # one error class for every unknown choice: a ValidationError (and a KeyError for lookups)
    assert isinstance(info.value, ValidationError) and isinstance(info.value, KeyError)
    assert str(info.value) == f"unknown task {value!r}; valid: de, dir"  # not KeyError's repr
