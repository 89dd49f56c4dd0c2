"""One spec shape for every method registry: LGR selectors and baselines, CORE methods, evaluable methods.

The app, the CLI listings and the docs read a method's label and definition from its spec;
nothing is declared twice. A registry is a read-only mapping from name to spec, built with
:func:`registry` (names are unique, in the order given).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Generic, Protocol, TypeVar

from perturb_core.errors import check_choice

__all__ = ["MethodSpec", "registry", "resolve"]

F = TypeVar("F", bound=Callable[..., Any])


class _Named(Protocol):
    @property
    def name(self) -> str: ...


N = TypeVar("N", bound=_Named)


@dataclass(frozen=True)
class MethodSpec(Generic[F]):
    """One method of a registry.

    Attributes:
        name: snake_case name, as in the CLI contract.
        label: human label; says what the method is (an LLM, rule-based, a baseline, a floor, a ceiling).
        definition: one-line definition (a formula where there is one).
        fn: the function that runs it; its signature is the registry's.
        needs_llm: whether it calls the LLM endpoint.
    """

    name: str
    label: str
    definition: str
    fn: F = field(repr=False, compare=False)
    needs_llm: bool = False


def registry(*specs: N) -> Mapping[str, N]:
    """A read-only name -> spec mapping of ``specs`` (in order); any spec with a ``name`` works.

    Raises:
        ValueError: two specs share a name (a programming error, not user input).
    """
    names = [s.name for s in specs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"duplicate names in a registry: {dupes}")
    return MappingProxyType({s.name: s for s in specs})


def resolve(kind: str, name: object, specs: Mapping[str, MethodSpec[F]]) -> MethodSpec[F]:
    """The spec named ``name`` (case-, space- and punctuation-insensitive).

    Raises:
        UnknownNameError: unknown name (the message lists the valid ones; see :func:`check_choice`).
    """
    return specs[check_choice(kind, name, specs)]
