"""A tiny writer of R's XDR serialisation, to build ``.rda`` fixtures in code.

Supports what the signature files use: named lists of character vectors (with NA), plus
integer and double vectors.
"""

from __future__ import annotations

import bz2
import gzip
import struct
from typing import Any

import numpy as np


def _int(v: int) -> bytes:
    return struct.pack(">i", v)


def _charsxp(s: str | None) -> bytes:
    if s is None:
        return _int(0x00000009) + _int(-1)
    b = s.encode("utf-8")
    flags = 0x00040009 if s.isascii() else 0x00008009
    return _int(flags) + _int(len(b)) + b


def _symbol(name: str, refs: list[str]) -> bytes:
    if name in refs:
        return _int(((refs.index(name) + 1) << 8) | 0xFF)
    refs.append(name)
    return _int(1) + _charsxp(name)


def _item(obj: Any, refs: list[str]) -> bytes:
    if isinstance(obj, dict):  # named list
        names = list(obj)
        out = _int(0x00000213) + _int(len(names))
        for v in obj.values():
            out += _item(v, refs)
        # attributes pairlist: names = character vector
        out += _int(0x00000402) + _symbol("names", refs) + _item([str(n) for n in names], refs) + _int(254)
        return out
    if isinstance(obj, list):  # character vector
        return _int(0x00000010) + _int(len(obj)) + b"".join(_charsxp(s) for s in obj)
    arr = np.asarray(obj)
    if arr.dtype.kind == "i":
        return _int(0x0000000D) + _int(len(arr)) + arr.astype(">i4").tobytes()
    if arr.dtype.kind == "f":
        return _int(0x0000000E) + _int(len(arr)) + arr.astype(">f8").tobytes()
    raise TypeError(type(obj))


def serialize_rda(objects: dict[str, Any], *, compression: str = "bz2") -> bytes:
    """Bytes of an ``.rda`` file holding ``objects`` (name -> value)."""
    refs: list[str] = []
    body = b"RDX3\nX\n" + _int(3) + _int(0x040402) + _int(0x030500) + _int(5) + b"UTF-8"
    for name, value in objects.items():
        body += _int(0x00000402) + _symbol(name, refs) + _item(value, refs)
    body += _int(254)
    return {"bz2": bz2.compress, "gzip": gzip.compress, "none": lambda b: b}[compression](body)


def signature_rda(drugs: dict[str, list[str]], *, name: str = "sig", up: int = 2) -> bytes:
    """An ``.rda`` in the sigrecon layout: ``drug -> {up: first genes, up_full: all}``."""
    return serialize_rda({name: {d: {"up": genes[:up], "up_full": genes} for d, genes in drugs.items()}})
