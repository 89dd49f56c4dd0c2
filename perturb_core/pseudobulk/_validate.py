"""Checks of pseudobulk inputs and options: one clear message per problem, before any heavy work."""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from perturb_core.errors import DataError, ValidationError, check_int_range, unknown_name

__all__ = [
    "SCHEDULERS",
    "NonIntegerCountsWarning",
    "check_chunk_cells",
    "check_controls_present",
    "check_genes_match",
    "check_labels",
    "check_scheduler",
    "warn_nonint",
]

SCHEDULERS = ("synchronous", "local", "tcp://HOST:PORT")
_ADDRESS = re.compile(r"(tcp|tls)://[A-Za-z0-9.\-\[\]:]+:\d{1,5}")


class NonIntegerCountsWarning(UserWarning):
    """The count matrix holds values that are not whole numbers (normalised data instead of raw counts?)."""


def check_scheduler(scheduler: str) -> str:
    """``synchronous``, ``local`` or a ``tcp://HOST:PORT`` scheduler address.

    Raises:
        ValidationError: anything else.
    """
    s = str(scheduler).strip()
    if s in ("synchronous", "local") or _ADDRESS.fullmatch(s):
        return s
    raise ValidationError(
        f"unknown scheduler {scheduler!r}; use synchronous (one process), local (a LocalCluster on this "
        "machine) or the address a `dask scheduler` prints, e.g. tcp://10.0.0.5:8786"
    )


def check_chunk_cells(chunk_cells: int) -> int:
    """Cells per Dask block, 1 ... 10,000,000."""
    return check_int_range("chunk_cells", chunk_cells, 1, 10_000_000)


def check_labels(obs: pd.DataFrame, *, path: str, columns: Sequence[str]) -> None:
    """Every cell has a value in each label column.

    Raises:
        DataError: missing values (naming the column, how many cells, and the fix).
    """
    for col in columns:
        missing = obs[col].isna().to_numpy()
        if missing.any():
            raise DataError(
                f"{path}: {int(missing.sum())} cells have no value in obs column {col!r} (e.g. cell "
                f"#{int(np.flatnonzero(missing)[0])}); fill or drop them before pseudobulking"
            )


def check_controls_present(drugs: pd.Series, control: str) -> None:
    """The control label occurs in the drug column.

    Raises:
        UnknownNameError: it does not (with the closest labels).
    """
    labels = pd.unique(drugs.astype(str))
    if control not in set(labels):
        raise unknown_name("control label (--control) in the drug column", control, list(labels))


def check_genes_match(first: pd.Index, other: pd.Index, *, first_path: str, other_path: str) -> None:
    """Two files have the same genes in the same order.

    Raises:
        DataError: they differ (count, first differing position, and the fix).
    """
    if first.equals(other):
        return
    if len(first) != len(other):
        what = f"{len(first)} genes vs {len(other)}"
    else:
        i = int(np.flatnonzero(first.to_numpy() != other.to_numpy())[0])
        what = f"gene #{i} is {first[i]!r} vs {other[i]!r}"
    raise DataError(
        f"gene axis of {other_path} differs from {first_path} ({what}); every input must have the same "
        "var_names in the same order: subset and reorder them (adata[:, genes]) and write the files again"
    )


def warn_nonint(n_nonint: int, n_values: str) -> None:
    """Warn once that counts are not integers (the result is still computed)."""
    if n_nonint:
        warnings.warn(
            f"{n_nonint:,} of {n_values} stored values are not whole numbers: pseudobulk expects raw counts "
            "(normalised or log values give meaningless library sizes); pass --layer with the raw counts if the "
            "file has them",
            NonIntegerCountsWarning,
            stacklevel=3,
        )
