"""Bring your own data: register an ``.h5ad`` of deltas or a folder of signature files.

The result is a signature dataset like the built-in ones (same ``obs``/``var`` layout),
written to ``<data dir>/user/<name>.h5ad`` and listed by ``data info``.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import tempfile
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from perturb_core.config import Settings, get_settings
from perturb_core.data.build import SIGNATURE_DATASETS
from perturb_core.data.names import slug
from perturb_core.data.rda import USER_FIX, fit_fix
from perturb_core.data.registry import _user_registry, label_dataset_names
from perturb_core.data.signatures import signatures_to_anndata
from perturb_core.errors import DataError, ValidationError, name_key

__all__ = [
    "CELL_LINE_COLUMNS",
    "DRUG_COLUMNS",
    "check_dataset_name",
    "import_dataset",
    "validate_delta_anndata",
    "write_user_dataset",
]

CELL_LINE_COLUMNS = ("cell_line", "cell_name", "cell_type", "cell_line_id", "cellline", "cell")
DRUG_COLUMNS = ("drug", "perturbation", "compound", "pert_iname", "treatment", "condition")


def _pick(obs: pd.DataFrame, given: str | None, candidates: tuple[str, ...], what: str, path: Path) -> str:
    if given is not None:
        if given not in obs.columns:
            raise DataError(
                f"{path}: obs has no column {given!r} for the {what}; columns are {list(obs.columns)}"
            )
        return given
    for c in candidates:
        if c in obs.columns:
            return c
    raise DataError(
        f"{path}: obs needs a {what} column (one of {', '.join(candidates)}); found {list(obs.columns)}. "
        f"Name it with --{what.replace(' ', '-')}-col"
    )


def validate_delta_anndata(
    adata: ad.AnnData, *, path: Path, cell_line_col: str | None = None, drug_col: str | None = None
) -> ad.AnnData:
    """Check an AnnData of deltas and return it in the standard layout.

    Raises:
        DataError: missing columns, duplicate (cell line, drug) rows, NaN or infinite values,
            non-numeric X, empty data.
    """
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise DataError(f"{path}: the AnnData is empty ({adata.n_obs} x {adata.n_vars})")
    cc = _pick(adata.obs, cell_line_col, CELL_LINE_COLUMNS, "cell line", path)
    dc = _pick(adata.obs, drug_col, DRUG_COLUMNS, "drug", path)
    X = adata.X.toarray() if sp.issparse(adata.X) else np.asarray(adata.X)
    if not np.issubdtype(X.dtype, np.number):
        raise DataError(f"{path}: X must be numeric deltas, found dtype {X.dtype}")
    X = X.astype(np.float32)
    bad = ~np.isfinite(X)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        kind = "NaN" if np.isnan(X[r, c]) else "infinite"
        raise DataError(
            f"{path}: X has {int(bad.sum())} non-finite values ({kind} at row {adata.obs_names[r]!r}, "
            f"gene {adata.var_names[c]!r}); replace or drop them before importing"
        )
    for col, what in ((cc, "cell line"), (dc, "drug")):
        values = adata.obs[col]
        empty = values.isna().to_numpy() | (values.astype(str).str.strip() == "").to_numpy()
        if empty.any():
            rows = list(adata.obs_names[empty][:3])
            raise DataError(
                f"{path}: {int(empty.sum())} rows have no {what} in obs column {col!r} (e.g. {rows}); "
                "fill or drop them before importing"
            )
    cells = adata.obs[cc].astype(str).str.strip()
    drugs = adata.obs[dc].astype(str).str.strip()
    pair = cells.map(slug) + "|" + drugs.map(slug)
    dup = pair[pair.duplicated()]
    if len(dup):
        raise DataError(
            f"{path}: {len(dup)} duplicate (cell line, drug) rows, e.g. {dup.iloc[0]!r}; "
            "average or drop replicates so each pair appears once"
        )
    genes = pd.Index(adata.var_names.astype(str))
    if not genes.is_unique:
        raise DataError(
            f"{path}: duplicate gene names, e.g. {genes[genes.duplicated()][0]!r}; make var_names unique"
        )
    obs = pd.DataFrame(
        {
            "cell_line": cells.to_numpy(),
            "cell_line_id": cells.map(slug).to_numpy(),
            "drug": drugs.to_numpy(),
            "drug_id": drugs.map(slug).to_numpy(),
            "n_genes_tested": np.full(len(cells), X.shape[1], dtype=np.int32),
            "n_up_significant": np.zeros(len(cells), dtype=np.int32),
        },
        index=pd.Index(pair.to_numpy(), name="signature"),
    )
    for col in ("cell_line", "cell_line_id", "drug", "drug_id"):
        obs[col] = obs[col].astype("category")
    var = pd.DataFrame({"gene_id": genes, "n_signatures": len(cells)}, index=pd.Index(genes, name="gene"))
    return ad.AnnData(X=X, obs=obs, var=var)


def signature_files(folder: Path) -> tuple[dict[str, Path], list[str]]:
    """The signature files of a folder by cell line, and the names of the files passed over.

    A file ``PREFIX.LINE.rda`` (any case of ``.rda``) holds cell line ``LINE``; hidden files
    (``.name.rda``) and other files are passed over and listed. Two files of one cell line (in any
    spelling: ``a.C32.rda`` and ``b.c-32.rda``) are refused with both names, never one dropped.

    Raises:
        DataError: two files map to the same cell line.
    """
    files: dict[str, Path] = {}
    by_key: dict[str, Path] = {}
    skipped: list[str] = []
    for p in sorted(folder.iterdir()):
        if p.name.startswith(".") or not p.is_file() or p.suffix.lower() != ".rda":
            skipped.append(p.name + (" (hidden)" if p.name.startswith(".") else ""))
            continue
        line = p.name[: -len(p.suffix)].split(".", 1)[-1]
        other = by_key.get(name_key(line))
        if other is not None:
            raise DataError(
                f"{other.name} and {p.name} both hold cell line {line!r} (names are case- and punctuation-"
                "insensitive); keep one per cell line, or merge them, and import again"
            )
        by_key[name_key(line)] = p
        files[line] = p
    return files, skipped


def import_dataset(
    path: str | Path,
    *,
    name: str,
    cell_line_col: str | None = None,
    drug_col: str | None = None,
    overwrite: bool = False,
    settings: Settings | None = None,
    source_name: str | None = None,
) -> Path:
    """Validate and register a user dataset.

    Args:
        path: an ``.h5ad`` (obs with cell line and drug columns, X deltas) or a folder of
            ``.rda`` signature files in the Tahoe format (one file per cell line; the cell
            line is the file name without extension and without a ``prefix.``).
        name: dataset name (letters, digits, ``-``, ``_``; not a built-in name).
        cell_line_col, drug_col: obs columns (auto-detected when ``None``).
        overwrite: replace a dataset already imported under this name (any spelling).
        source_name: how messages and the provenance name the input (default: ``path``); an
            upload passes the user's file name so no server path reaches a message.

    Returns:
        The written ``.h5ad``.

    Raises:
        ValidationError: bad name. DataError: invalid content (one message per problem).
    """
    settings = settings or get_settings()
    path = Path(path)
    shown = Path(source_name) if source_name else path
    check_dataset_name(name, overwrite=overwrite, settings=settings)
    if not path.exists():
        raise DataError(f"{path} does not exist; give an .h5ad file or a folder of .rda signature files")
    if not (path.is_dir() or path.is_file()):  # a pipe or a device would block or never end
        raise DataError(f"{path} is not a regular file (a pipe, device or socket); give an .h5ad file")
    if path.is_dir():
        files, skipped = signature_files(path)
        if not files:
            hint = f" (skipped: {', '.join(skipped)})" if skipped else ""
            raise DataError(f"{shown}: no .rda signature files in this folder{hint}")
        try:
            adata = signatures_to_anndata(files, dataset=name, workers=1)
        except DataError as exc:  # the user's own files: re-fetching the project's data cannot help
            raise fit_fix(exc, USER_FIX) from exc
        source = f"signature folder, {len(files)} .rda files" + (
            f"; skipped {', '.join(skipped)}" if skipped else ""
        )
    elif path.suffix == ".h5ad":
        try:
            raw = ad.read_h5ad(path)
        except (OSError, KeyError, ValueError) as exc:
            raise DataError(f"{shown}: not a readable .h5ad ({exc}); check the file is complete") from exc
        adata = validate_delta_anndata(raw, path=shown, cell_line_col=cell_line_col, drug_col=drug_col)
        source = "h5ad"
    else:
        raise DataError(
            f"{shown}: unsupported file type {path.suffix!r}; give an .h5ad or a folder of .rda files"
        )
    adata.uns["dataset"] = name
    adata.uns["provenance"] = {
        "source": source,
        "imported_from": shown.name,
        "imported": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    return write_user_dataset(
        adata, name=name, description=f"user dataset ({source}: {shown.name})", settings=settings
    )


def check_dataset_name(name: str, *, overwrite: bool = False, settings: Settings | None = None) -> None:
    """Check ``name`` can be used for a new user dataset (before any work is done).

    Raises:
        ValidationError: bad form, a built-in name, or already imported (unless ``overwrite``).
    """
    settings = settings or get_settings()
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_\-]{0,63}", name):
        raise ValidationError(f"dataset name {name!r} must be letters, digits, '-' or '_' (e.g. my-screen)")
    builtin = [*SIGNATURE_DATASETS, *label_dataset_names(settings)]
    taken = next((b for b in builtin if name_key(b) == name_key(name)), None)
    if taken or slug(name).startswith(("perturbqa", "tahoe-")) or name_key(name).startswith("perturbqa"):
        what = repr(taken) if taken else "the PerturbQA / Tahoe label datasets"
        raise ValidationError(
            f"dataset name {name!r} is taken by a built-in dataset ({what}; names are compared case- and "
            "punctuation-insensitively); choose another, e.g. my-screen"
        )
    clash = [n for n in _user_registry(settings) if name_key(n) == name_key(name)]
    if clash and not overwrite:
        raise ValidationError(
            f"a dataset named {clash[0]!r} is already imported; choose another name or replace it "
            "(--force on the command line, overwrite=True in Python)"
        )


def write_user_dataset(
    adata: ad.AnnData, *, name: str, description: str, settings: Settings | None = None
) -> Path:
    """Write a validated signature AnnData to ``<data dir>/user/`` atomically and register it under ``name``.

    Call :func:`check_dataset_name` first. The file is written to a temporary name and renamed,
    then the registry is rewritten atomically under a lock: no half-written dataset on any error.

    Raises:
        DataError: the file could not be written (disk full, read-only folder, ...).
    """
    settings = settings or get_settings()
    out_dir = settings.data_dir / "user"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{name_key(name)}.h5ad"
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        adata.write_h5ad(tmp)
        os.replace(tmp, out)
    except OSError as exc:  # disk full, read-only folder, ...; never leave a half-written file
        tmp.unlink(missing_ok=True)
        need = (np.asarray(adata.X).nbytes + 2**20) / 2**20
        raise DataError(
            f"could not write {out} ({exc.strerror or exc}); the dataset needs about {need:,.0f} MB free "
            f"in {out_dir}: free some space (or set PERTURB_CORE_DATA_DIR elsewhere) and import again"
        ) from exc
    except BaseException:  # anything else (an unwritable value, Ctrl-C): no half-written file either
        tmp.unlink(missing_ok=True)
        raise
    with open(out_dir / ".datasets.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # several processes may import at once
        reg = {n: m for n, m in _user_registry(settings).items() if name_key(n) != name_key(name)}
        reg[name] = {"file": out.name, "description": description}
        fd, tmpname = tempfile.mkstemp(dir=out_dir, prefix=".datasets.")
        with os.fdopen(fd, "w") as fh:
            json.dump(reg, fh, indent=1)
        os.replace(tmpname, out_dir / "datasets.json")
    return out
