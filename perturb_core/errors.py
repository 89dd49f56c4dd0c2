"""The error hierarchy: every error a user can cause is a :class:`PerturbCoreError`."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from typing import TypeVar

import numpy as np

__all__ = [
    "MAX_K",
    "MAX_N_BOOT",
    "SEED_LIMIT",
    "ConfigError",
    "DataError",
    "LLMError",
    "NotBuiltError",
    "PerturbCoreError",
    "UnknownNameError",
    "ValidationError",
    "check_choice",
    "check_int_range",
    "check_k",
    "check_n_boot",
    "check_seed",
    "name_key",
    "unknown_name",
]

S = TypeVar("S", bound=str)


class PerturbCoreError(Exception):
    """Base class of the errors this package raises on purpose."""


class ConfigError(PerturbCoreError):
    """A setting (config file or environment variable) is invalid."""


class DataError(PerturbCoreError):
    """A raw or processed data file is missing, corrupt or inconsistent."""


class NotBuiltError(DataError):
    """Processed data is missing: the message says which command builds it."""


class ValidationError(PerturbCoreError, ValueError):
    """An argument is out of range or of the wrong form."""


class UnknownNameError(ValidationError, KeyError):
    """A cell line, drug, gene, dataset or method name is not known."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class LLMError(PerturbCoreError):
    """The language-model endpoint failed, timed out or answered nonsense."""


def name_key(name: str) -> str:
    """Lookup key of a name: lower case with all non-alphanumerics removed."""
    return re.sub(r"[^0-9a-z]", "", str(name).lower())


def unknown_name(kind: str, name: str, known: Iterable[str], *, limit: int = 5) -> UnknownNameError:
    """Build the error for an unknown ``kind`` named ``name`` with the closest known names."""
    known = list(known)
    by_key = {name_key(k): k for k in known}
    close = difflib.get_close_matches(name_key(name), list(by_key), n=limit, cutoff=0.5)
    suggestions = [by_key[c] for c in close] or sorted(known)[:limit]
    more = f" (and {len(known) - len(suggestions)} more)" if len(known) > len(suggestions) else ""
    return UnknownNameError(
        f"unknown {kind}: {name!r}; closest known: {', '.join(suggestions)}{more} "
        "(names are case-, space- and punctuation-insensitive)"
    )


def check_choice(kind: str, value: object, choices: Iterable[S]) -> S:
    """The canonical spelling of a string choice (method, regime, selector, metric, task, ...).

    Every unknown-choice error of the package comes from here, in one wording. A choice matches
    exactly or by :func:`name_key` (``Unseen_Drug`` finds ``unseen-drug``).

    Args:
        kind: what is being chosen, e.g. ``"selector"``; used in the message.
        value: the user's choice.
        choices: the valid choices, in the order the message lists them.

    Returns:
        The matching element of ``choices``.

    Raises:
        UnknownNameError: ``value`` is not one of ``choices`` (the message lists them).
    """
    options = tuple(choices)
    if isinstance(value, str):
        if value in options:
            return value  # type: ignore[return-value]
        by_key = {name_key(c): c for c in options}
        hit = by_key.get(name_key(value))
        if hit is not None and value.strip():
            return hit
    raise UnknownNameError(f"unknown {kind} {value!r}; valid: {', '.join(options)}")


SEED_LIMIT = 2**32
"""Seeds are integers with ``0 <= seed < 2**32`` (NumPy's legacy seeding range)."""
MAX_N_BOOT = 100_000
"""Most bootstrap replicates accepted (200 to 1,000 is usual; more only costs memory and time)."""
MAX_K = 1_000
"""Most neighbours per query accepted (a cap far above any useful k; a pool may be smaller)."""


def check_int_range(name: str, value: object, low: int, high: int, *, hint: str = "") -> int:
    """``value`` as an int, if it is an integer (not a bool) with ``low <= value <= high``.

    Raises:
        ValidationError: otherwise; the message names the argument, the value and the range.
    """
    ok = not isinstance(value, bool) and isinstance(value, int | np.integer) and low <= value <= high
    if not ok:
        extra = f" ({hint})" if hint else ""
        raise ValidationError(f"{name} must be an integer in {low}..{high}{extra}; got {value!r}")
    return int(value)  # type: ignore[arg-type]


def check_seed(value: object, name: str = "seed") -> int:
    """A seed: an integer ``0 <= seed < 2**32`` (see :data:`SEED_LIMIT`)."""
    return check_int_range(name, value, 0, SEED_LIMIT - 1, hint="0 <= seed < 2**32")


def check_n_boot(value: object) -> int:
    """A number of bootstrap replicates: an integer in ``1..MAX_N_BOOT`` (100,000)."""
    return check_int_range("n_boot", value, 1, MAX_N_BOOT, hint="bootstrap replicates, e.g. 1000")


def check_k(value: object) -> int:
    """A number of neighbours: an integer in ``1..MAX_K`` (1,000)."""
    return check_int_range("k", value, 1, MAX_K, hint="neighbours per query, e.g. 10")
