"""Ranked-gene-list signatures -> AnnData of signed rank scores (the LGR "delta").

A signature is a full ranked gene list (most up-regulated first). Its delta is the
inverse-normal rank score ``z = Φ⁻¹(1 − (r − ½)/n)`` for the gene at rank ``r`` of ``n``
tested genes: the top gene gets the largest positive score, the last the most negative,
the middle ≈ 0. A gene absent from a list was not tested there and is missing (NaN), not 0.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
from scipy.special import ndtri

from perturb_core.data.names import slug
from perturb_core.data.rda import RList, read_rda
from perturb_core.errors import DataError

__all__ = ["RankedSignatures", "rank_score", "read_signature_file", "signatures_to_anndata"]

SCORE_DEFINITION = (
    "inverse-normal rank score z = Phi^-1(1 - (r - 0.5) / n) of the gene at rank r (1 = most "
    "up-regulated, by log2FC * -log10(padj)) among the n genes tested in that signature; "
    "genes not tested are NaN (missing), not 0"
)


@dataclass(frozen=True)
class RankedSignatures:
    """The signatures of one file (one cell line), genes as codes into ``genes``."""

    source: str
    drugs: tuple[str, ...]
    genes: np.ndarray  # object array of gene ids, the file's vocabulary
    codes: tuple[np.ndarray, ...]  # per drug, int32 codes in rank order (most up first)
    n_up: tuple[int, ...]  # per drug, size of the significant-up list


def rank_score(n: int) -> np.ndarray:
    """Scores of ranks 1..n (float32), largest first."""
    r = np.arange(1, n + 1, dtype=np.float64)
    return (-ndtri((r - 0.5) / n)).astype(np.float32)


def read_signature_file(path: str | Path) -> RankedSignatures:
    """Read one ``.rda`` of the sigrecon format: ``drug -> {up, up_full}``.

    Raises:
        DataError: the file is not in that format (names which part is wrong).
    """
    path = Path(path)
    objs = read_rda(path)
    if len(objs) != 1:
        raise DataError(f"{path}: expected one object (drug -> up/up_full lists), found {list(objs)}")
    top = next(iter(objs.values()))
    if not isinstance(top, RList) or top.names is None:
        raise DataError(f"{path}: expected a named list of drugs, found {type(top).__name__}")
    drugs, chunks, n_up = [], [], []
    for drug, entry in zip(top.names, top, strict=True):
        if not isinstance(entry, RList) or entry.names is None or "up_full" not in entry.names:
            raise DataError(f"{path}: drug {drug!r} has no 'up_full' ranked gene list")
        parts = entry.to_dict()
        full = parts["up_full"]
        if not isinstance(full, np.ndarray) or full.dtype != object:
            raise DataError(f"{path}: drug {drug!r}: 'up_full' is not a character vector")
        full = full[pd.notna(full)]
        # a gene listed twice keeps its first (higher) rank
        full = full[~pd.Index(full).duplicated()]
        drugs.append(str(drug).strip())
        chunks.append(full)
        up = parts.get("up")
        n_up.append(0 if up is None else len(up))
    if not drugs:
        raise DataError(f"{path}: the file holds no signatures")
    allg = np.concatenate(chunks) if chunks else np.empty(0, dtype=object)
    codes_all, vocab = pd.factorize(allg)
    bounds = np.cumsum([0] + [len(c) for c in chunks])
    codes = tuple(codes_all[a:b].astype(np.int32) for a, b in itertools.pairwise(bounds))
    return RankedSignatures(path.name, tuple(drugs), np.asarray(vocab, dtype=object), codes, tuple(n_up))


def _read_many(paths: Sequence[Path], workers: int | None) -> list[RankedSignatures]:
    workers = min(workers or os.cpu_count() or 1, len(paths))
    if workers <= 1:
        return [read_signature_file(p) for p in paths]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(read_signature_file, paths))


def signatures_to_anndata(
    files: Mapping[str, Path],
    *,
    dataset: str,
    gene_symbols: Mapping[str, str] | None = None,
    min_fraction: float = 0.0,
    workers: int | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    provenance: Mapping[str, object] | None = None,
) -> ad.AnnData:
    """Build the AnnData of one signature dataset.

    Args:
        files: cell line display name -> signature file.
        dataset: dataset name recorded in ``uns``.
        gene_symbols: Ensembl id -> symbol; mapped ids take the symbol unless the
            symbol is already tested in the same list (then the id is dropped).
        min_fraction: keep genes tested in at least this fraction of signatures.
        workers: parallel readers (default: all cores).
        progress: ``progress(done, total, name)`` per file read.
        provenance: extra entries for ``uns["provenance"]``.

    Returns:
        AnnData: ``X`` float32 rank scores (NaN = not tested), ``layers["rank"]`` uint16/32
        ranks (0 = not tested); ``obs`` cell_line, cell_line_id, drug, drug_id,
        n_genes_tested, n_up_significant; ``var`` gene_id, n_signatures.

    Raises:
        DataError: duplicate (cell line, drug) pairs or unreadable files.
    """
    names = list(files)
    paths = [Path(files[n]) for n in names]
    sigs: list[RankedSignatures] = []
    workers = min(workers or os.cpu_count() or 1, len(paths))
    if workers <= 1:
        for i, p in enumerate(paths, 1):
            sigs.append(read_signature_file(p))
            if progress:
                progress(i, len(paths), names[i - 1])
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for i, s in enumerate(pool.map(read_signature_file, paths), 1):
                sigs.append(s)
                if progress:
                    progress(i, len(paths), names[i - 1])

    symbols = dict(gene_symbols or {})
    # file vocabularies -> one global vocabulary (symbols where known)
    vocabs = []
    for s in sigs:
        v = pd.Series(s.genes).map(lambda g: symbols.get(g.split(".")[0], g) if g.startswith("ENS") else g)
        vocabs.append(v.to_numpy(dtype=object))
    glob_vocab = pd.Index(pd.unique(np.concatenate(vocabs)))
    rows: list[tuple[str, str, np.ndarray, int]] = []
    for cell_line, s, v in zip(names, sigs, vocabs, strict=True):
        local = glob_vocab.get_indexer(v).astype(np.int32)
        for drug, codes, n_up in zip(s.drugs, s.codes, s.n_up, strict=True):
            g = local[codes]
            g = g[~pd.Index(g).duplicated()]  # id and symbol both present: keep the first
            rows.append((cell_line, drug, g, n_up))

    obs = pd.DataFrame(
        {
            "cell_line": [r[0] for r in rows],
            "cell_line_id": [slug(r[0]) for r in rows],
            "drug": [r[1] for r in rows],
            "drug_id": [slug(r[1]) for r in rows],
            "n_genes_tested": np.array([len(r[2]) for r in rows], dtype=np.int32),
            "n_up_significant": np.array([r[3] for r in rows], dtype=np.int32),
        }
    )
    obs.index = obs["cell_line_id"] + "|" + obs["drug_id"]
    dup = obs.index[obs.index.duplicated()]
    if len(dup):
        raise DataError(
            f"dataset {dataset!r}: duplicate (cell line, drug) signatures {list(dup[:5])}; "
            "each pair must appear once — rename or drop the duplicates"
        )
    counts = np.bincount(np.concatenate([r[2] for r in rows]), minlength=len(glob_vocab))
    keep = np.flatnonzero(counts >= max(1, np.ceil(min_fraction * len(rows))))
    colmap = np.full(len(glob_vocab), -1, dtype=np.int64)
    colmap[keep] = np.arange(len(keep))
    n_max = max(len(r[2]) for r in rows)
    rank_dtype = np.uint16 if n_max < np.iinfo(np.uint16).max else np.uint32
    X = np.full((len(rows), len(keep)), np.nan, dtype=np.float32)
    R = np.zeros((len(rows), len(keep)), dtype=rank_dtype)
    for i, r in enumerate(rows):
        g = r[2]
        cols = colmap[g]
        ok = cols >= 0
        X[i, cols[ok]] = rank_score(len(g))[ok]
        R[i, cols[ok]] = (np.arange(1, len(g) + 1))[ok]
    var_names = glob_vocab[keep].astype(str)
    reverse = {v: k for k, v in symbols.items()}
    var = pd.DataFrame(
        {
            "gene_id": [reverse.get(g, g) for g in var_names],
            "n_signatures": counts[keep].astype(np.int32),
        },
        index=pd.Index(var_names, name="gene"),
    )
    obs.index.name = "signature"
    adata = ad.AnnData(X=X, obs=obs, var=var, layers={"rank": R})
    for col in ("cell_line", "cell_line_id", "drug", "drug_id"):
        adata.obs[col] = adata.obs[col].astype("category")
    adata.uns["dataset"] = dataset
    adata.uns["score"] = SCORE_DEFINITION
    adata.uns["provenance"] = {
        "files": {n: p.name for n, p in zip(names, paths, strict=True)},
        "min_fraction": float(min_fraction),
        "n_genes_total": len(glob_vocab),
        **dict(provenance or {}),
    }
    return adata
