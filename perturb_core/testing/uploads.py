"""Upload payloads built in code: a small valid ``.h5ad``, zips of signature files, hostile zips."""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from perturb_core.testing.rxdr import signature_rda

__all__ = ["h5ad_bytes", "signature_zip", "zip_bytes"]


def h5ad_bytes(
    *, cell_lines: tuple[str, ...] = ("L1", "L2"), drugs: tuple[str, ...] = ("D1", "D2", "D3")
) -> bytes:
    """A valid delta ``.h5ad`` (every line x drug, 5 genes G1..G5, seed 3) as bytes."""
    rng = np.random.default_rng(3)
    pairs = [(c, d) for c in cell_lines for d in drugs]
    obs = pd.DataFrame(
        {"cell_line": [c for c, _ in pairs], "drug": [d for _, d in pairs]},
        index=[f"r{i}" for i in range(len(pairs))],
    )
    a = ad.AnnData(X=rng.normal(size=(len(pairs), 5)).astype(np.float32), obs=obs)
    a.var_names = [f"G{i}" for i in range(1, 6)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.h5ad"
        a.write_h5ad(path)
        return path.read_bytes()


def zip_bytes(members: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip holding ``members`` (name -> bytes); names are written as given (``../x`` too)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data, compress_type=compression)
    return buf.getvalue()


def signature_zip() -> bytes:
    """A zip of two Tahoe-format signature files (cell lines L1 and L2, drugs D1 and D2, genes G1..G3)."""
    return zip_bytes(
        {
            "sigs/mine.L1.rda": signature_rda({"D1": ["G1", "G2", "G3"], "D2": ["G3", "G2", "G1"]}),
            "sigs/mine.L2.rda": signature_rda({"D1": ["G2", "G1", "G3"], "D2": ["G1", "G3", "G2"]}),
            "sigs/README.txt": b"not a signature",
        }
    )
