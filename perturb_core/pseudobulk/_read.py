"""Lazy reading of single-cell files: obs columns into memory, the count matrix as a Dask array of cell chunks."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import anndata as ad
import dask.array as da
import h5py
import pandas as pd
import zarr

from perturb_core.errors import DataError

__all__ = ["CellFile", "file_fingerprint", "open_cells"]

_HASH_LIMIT = 2**30  # files up to 1 GiB get a sha256; larger ones size + mtime (hashing 20 GB is not free)


@dataclass(frozen=True)
class CellFile:
    """One input file: the obs columns asked for, the gene names and the lazy count matrix.

    ``counts`` is a Dask array of shape (cells, genes), chunked along cells only; its blocks
    are ``scipy.sparse.csr_matrix`` (CSR input) or ``numpy.ndarray`` (dense input). Each
    block reopens the file by path, so the graph runs on threads, processes or remote
    workers that see the same path.
    """

    path: Path
    obs: pd.DataFrame
    genes: pd.Index
    counts: da.Array
    encoding: str

    @property
    def n_cells(self) -> int:
        """Number of cells."""
        return int(self.counts.shape[0])


def _open_group(path: Path) -> tuple[h5py.File | zarr.Group, str]:
    if not path.exists():
        raise DataError(f"{path} does not exist; give an .h5ad file or an AnnData .zarr store")
    if path.is_dir():
        try:
            return zarr.open_group(path, mode="r"), "zarr"
        except (OSError, ValueError, KeyError) as exc:
            raise DataError(
                f"{path}: not an AnnData zarr store ({exc}); write it with AnnData.write_zarr"
            ) from exc
    if path.suffix.lower() != ".h5ad":
        raise DataError(
            f"{path}: unsupported input {path.suffix!r}; give an .h5ad file or an AnnData .zarr store"
        )
    try:
        return h5py.File(path, "r"), "h5ad"
    except OSError as exc:
        raise DataError(f"{path}: not a readable .h5ad ({exc}); check the file is complete") from exc


def open_cells(
    path: str | Path, *, columns: list[str], layer: str | None = None, chunk_cells: int = 20_000
) -> CellFile:
    """Open a ``.h5ad`` or AnnData zarr store lazily.

    Args:
        path: the file (``.h5ad``) or store (a ``.zarr`` folder).
        columns: obs columns to load (only these are read into memory).
        layer: read ``layers[layer]`` instead of ``X``.
        chunk_cells: cells per Dask block.

    Raises:
        DataError: missing file, unreadable file, missing obs column or layer, unsupported matrix encoding.
    """
    path = Path(path)
    group, kind = _open_group(path)
    try:
        if "obs" not in group or "var" not in group:
            raise DataError(f"{path}: not an AnnData file (no obs/var); write it with anndata")
        obs_group = group["obs"]
        have = [c for c in obs_group if c != obs_group.attrs.get("_index", "_index")]
        missing = [c for c in columns if c not in obs_group]
        if missing:
            raise DataError(
                f"{path}: obs has no column {missing[0]!r}"
                + (f" (nor {missing[1:]})" if missing[1:] else "")
                + f"; columns are {sorted(have)}. Name the right one with --cell-line-col / --drug-col / "
                "--batch-col / --dose-col"
            )
        obs = pd.DataFrame({c: ad.io.read_elem(obs_group[c]) for c in dict.fromkeys(columns)})
        var = group["var"]
        genes = pd.Index([str(g) for g in ad.io.read_elem(var[var.attrs["_index"]])])
        key = "X" if layer is None else f"layers/{layer}"
        if key not in group:
            layers = sorted(group["layers"].keys()) if "layers" in group else []
            raise DataError(
                f"{path}: no {key!r} matrix; layers are {layers}. Pick one with --layer (or none for X)"
            )
        elem = group[key]
        encoding = str(elem.attrs.get("encoding-type", "array"))
        if encoding not in ("csr_matrix", "array"):
            raise DataError(
                f"{path}: {key} is stored as {encoding!r}; pseudobulk reads cells in row chunks and needs CSR or "
                "dense (convert with adata.X = adata.X.tocsr() and write again)"
            )
        counts = ad.experimental.read_elem_lazy(elem, chunks=(chunk_cells, len(genes)))
    except (KeyError, OSError, ValueError, TypeError) as exc:
        raise DataError(f"{path}: could not read it as AnnData ({exc}); check the file is complete") from exc
    finally:
        if kind == "h5ad":
            group.close()  # anndata's lazy h5 reader reopens the file by path in each block
    if not genes.is_unique:
        raise DataError(
            f"{path}: duplicate gene names in var, e.g. {genes[genes.duplicated()][0]!r}; make them unique "
            "(adata.var_names_make_unique()) and write the file again"
        )
    if counts.shape != (len(obs), len(genes)):
        raise DataError(f"{path}: {key} has shape {counts.shape} but obs x var is {(len(obs), len(genes))}")
    return CellFile(path=path, obs=obs, genes=genes, counts=counts, encoding=encoding)


def file_fingerprint(path: Path) -> dict[str, object]:
    """Provenance of an input: name, size, mtime and sha256 (files up to 1 GiB; folders and larger files: ``""``)."""
    out: dict[str, object] = {"name": path.name}
    if path.is_dir():
        files = [p for p in path.rglob("*") if p.is_file()]
        out["size"] = sum(p.stat().st_size for p in files)
        out["mtime"] = max((p.stat().st_mtime for p in files), default=path.stat().st_mtime)
        out["sha256"] = ""
        return out
    st = os.stat(path)
    out["size"], out["mtime"], out["sha256"] = st.st_size, st.st_mtime, ""
    if st.st_size <= _HASH_LIMIT:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(2**20), b""):
                h.update(block)
        out["sha256"] = h.hexdigest()
    return out
