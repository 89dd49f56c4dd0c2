"""The error hierarchy: every error a user can cause is a :class:`PerturbCoreError`."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

__all__ = [
    "ConfigError",
    "DataError",
    "LLMError",
    "NotBuiltError",
    "PerturbCoreError",
    "UnknownNameError",
    "ValidationError",
]


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
