"""Checks that a built (or imported) artifact is what the code expects, before anything uses it.

Every loader of ``data/processed`` and ``data/user`` passes what it read through one of these
functions. A file that fails a check raises :class:`~perturb_core.errors.DataError` naming the
file, what is wrong with it and the fix: ``data build --force`` for the project's own artifacts,
re-importing for a user's dataset. Checks look at structure (columns, kinds, shapes, ranges) and
at the provenance stamp a signature file carries in ``uns`` (``dataset`` and ``provenance``,
written by :func:`perturb_core.data.signatures.to_anndata`), so a valid but foreign ``.h5ad``
put in place of ``tahoe.h5ad`` is refused rather than analysed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import anndata as ad
import numpy as np
import pandas as pd

from perturb_core.errors import DataError

__all__ = [
    "REBUILD",
    "REIMPORT",
    "check_drug_fingerprints",
    "check_signatures",
    "check_table",
    "read_json_object",
]

REBUILD = "rebuild it with `python -m perturb_core data build --force`"
REIMPORT = "re-import it with `python -m perturb_core data import PATH --name NAME`"

ColumnKind = Literal["text", "category", "int", "float", "bool", "list", "any"]

SIGNATURE_OBS = ("cell_line", "cell_line_id", "drug", "drug_id")


def _fail(path: Path | str, problem: str, fix: str) -> DataError:
    return DataError(f"{path} {problem}; {fix}")


def _kind_ok(series: pd.Series, kind: ColumnKind) -> bool:
    if kind == "any":
        return True
    if kind == "category":
        return isinstance(series.dtype, pd.CategoricalDtype)
    if kind == "int":
        return pd.api.types.is_integer_dtype(series.dtype)
    if kind == "float":
        return pd.api.types.is_float_dtype(series.dtype) or pd.api.types.is_integer_dtype(series.dtype)
    if kind == "bool":
        return pd.api.types.is_bool_dtype(series.dtype)
    if kind == "text":
        if isinstance(series.dtype, pd.CategoricalDtype):
            series = series.astype(object)
        if not (pd.api.types.is_object_dtype(series.dtype) or pd.api.types.is_string_dtype(series.dtype)):
            return False
        sample = series.dropna().head(1000)
        return bool(sample.map(lambda v: isinstance(v, str)).all())
    if kind == "list":
        sample = series.dropna().head(1000)
        return bool(sample.map(lambda v: isinstance(v, (list, tuple, np.ndarray))).all())
    raise AssertionError(kind)


def check_table(
    table: object,
    path: Path | str,
    columns: Mapping[str, ColumnKind],
    *,
    fix: str = REBUILD,
    allow_empty: bool = False,
    values: Mapping[str, frozenset] | None = None,
) -> pd.DataFrame:
    """Check that ``table`` has ``columns`` of the given kinds (and, where given, only ``values``).

    Raises:
        DataError: naming the file, the first column that is missing or of the wrong kind, and ``fix``.
    """
    if not isinstance(table, pd.DataFrame):
        raise _fail(path, f"is not a table (read a {type(table).__name__})", fix)
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise _fail(
            path, f"lacks the column(s) {', '.join(missing)} (has: {', '.join(map(str, table.columns))})", fix
        )
    if not allow_empty and table.empty:
        raise _fail(path, "is empty", fix)
    for col, kind in columns.items():
        if not _kind_ok(table[col], kind):
            raise _fail(path, f"has column {col!r} of type {table[col].dtype}, expected {kind}", fix)
    for col, allowed in (values or {}).items():
        seen = set(pd.unique(table[col].dropna()))
        bad = sorted(map(str, seen - allowed))
        if bad:
            raise _fail(
                path,
                f"has unexpected value(s) {', '.join(bad[:5])} in column {col!r} (allowed: "
                f"{', '.join(sorted(map(str, allowed)))})",
                fix,
            )
    return table


def check_signatures(adata: ad.AnnData, path: Path | str, *, dataset: str | None, fix: str) -> ad.AnnData:
    """Check a signature dataset: its stamp, the ``obs`` columns, a numeric 2-D ``X`` and unique rows.

    ``dataset`` is the name a built-in file must carry in ``uns["dataset"]``; ``None`` for a user
    import (which must carry a ``uns["provenance"]`` from ``data import``).

    Raises:
        DataError: naming the file, the problem and ``fix``.
    """
    uns = adata.uns
    stamp = uns.get("dataset")
    if not isinstance(uns.get("provenance"), Mapping) or not isinstance(stamp, str):
        raise _fail(
            path,
            "has no perturb_core provenance stamp (uns['dataset'], uns['provenance']): it was "
            "not written by this package",
            fix,
        )
    if dataset is not None and stamp != dataset:
        raise _fail(path, f"holds the dataset {stamp!r}, not {dataset!r}", fix)
    missing = [c for c in SIGNATURE_OBS if c not in adata.obs.columns]
    if missing:
        raise _fail(path, f"lacks the obs column(s) {', '.join(missing)}", fix)
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise _fail(path, f"is empty ({adata.n_obs} signatures x {adata.n_vars} genes)", fix)
    dtype = getattr(adata.X, "dtype", None)
    if adata.X is None or dtype is None or not np.issubdtype(dtype, np.floating):
        raise _fail(path, f"has a matrix X of type {dtype}, expected floating-point deltas", fix)
    if not adata.var_names.is_unique:
        raise _fail(path, "has duplicate gene names", fix)
    pairs = adata.obs[["cell_line", "drug"]].astype(str)
    if pairs.duplicated().any():
        c, d = pairs[pairs.duplicated()].iloc[0]
        raise _fail(path, f"has more than one signature for ({c}, {d})", fix)
    return adata


def check_drug_fingerprints(
    arrays: Mapping[str, np.ndarray], path: Path | str, n_drugs: int, *, fix: str = REBUILD
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check ``drug_fingerprints.npz``: ``drug_id`` strings, packed ``bits`` (uint8) and ``valid`` flags.

    Returns:
        ``(drug_id, bits, valid)``.
    """
    want = {"drug_id": "U", "bits": "u", "valid": "b"}
    for key, kind in want.items():
        if key not in arrays:
            raise _fail(path, f"lacks the array {key!r}", fix)
        if arrays[key].dtype.kind != kind:
            raise _fail(path, f"has {key!r} of type {arrays[key].dtype}", fix)
    ids, bits, valid = arrays["drug_id"], arrays["bits"], arrays["valid"]
    if not (ids.ndim == 1 and valid.ndim == 1 and bits.ndim == 2 and bits.shape[1] >= 256):
        raise _fail(path, f"has arrays of the wrong shape (bits {bits.shape}, needs 256 bytes per drug)", fix)
    if not (len(ids) == len(valid) == bits.shape[0] == n_drugs):
        raise _fail(path, f"covers {len(ids)} drugs, the drug table {n_drugs}", fix)
    return ids, bits, valid


def read_json_object(path: Path, *, fix: str = REBUILD) -> dict:
    """Read a JSON file that must hold an object (``{...}``).

    Raises:
        DataError: unreadable, not JSON, or not an object.
    """
    try:
        obj = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise _fail(path, f"is unreadable ({exc})", fix) from exc
    if not isinstance(obj, dict):
        raise _fail(path, f"holds a JSON {type(obj).__name__}, expected an object", fix)
    return obj
