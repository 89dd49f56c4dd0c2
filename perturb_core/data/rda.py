"""A fast reader for the R ``.rda`` files of the signature mirror (XDR serialisation).

The generic :mod:`rdata` package needs ~20 s per Tahoe file because it builds one Python
object per string through a general converter. These files are nested named lists of
character vectors, so this reader parses the R serialisation stream itself and decodes
each character vector with NumPy in one pass (the headers of consecutive strings are found
by a vectorised scan and checked to chain exactly; any irregularity falls back to a plain
sequential decode). It supports the SEXP types those files and data frames use (NULL,
symbols, pairlists, lists, character, integer, logical, double, ALTREP compact sequences
and wrappers) and raises :class:`~perturb_core.errors.DataError` for anything else.
"""

from __future__ import annotations

import bz2
import lzma
import os
import stat
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from perturb_core.errors import DataError

_NILVALUE, _REF, _ALTREP = 254, 255, 238
_EMPTYENV, _BASEENV, _GLOBALENV, _UNBOUND, _MISSINGARG, _BASENAMESPACE = (
    242,
    241,
    253,
    252,
    251,
    247,
)
_SPECIAL_NILS = {_NILVALUE, _EMPTYENV, _BASEENV, _GLOBALENV, _UNBOUND, _MISSINGARG, _BASENAMESPACE}
_NA_INT = -(2**31)
MAX_EXPANSION = 100
"""A compressed file may expand at most this many times (the signature files here expand <= 17x)."""
MIN_DECOMPRESSED_CAP = 64 * 2**20
"""...but a small file may always expand to this many bytes."""
MAX_FILE_BYTES = 2 * 2**30
"""Files larger than this are refused before reading."""
MAX_COMPACT_LENGTH = 10**8
"""ALTREP compact sequences longer than this are refused (they would be materialised)."""
PROJECT_FIX = "`python -m perturb_core data fetch` restores a verified copy of the project's file"
USER_FIX = "save your file again from R with save(..., version = 2 or 3)"
_FIX = (
    "for the project's data, `python -m perturb_core data fetch` restores a verified copy; for your own "
    "file, save it again from R with save(..., version = 2 or 3)"
)


def fit_fix(exc: DataError, fix: str) -> DataError:
    """The same error with the one fix that fits the caller (``PROJECT_FIX`` or ``USER_FIX``)."""
    return type(exc)(str(exc).replace(_FIX, fix))


class RList(list):
    """An R list (VECSXP) with its attributes; ``names`` gives element names or ``None``."""

    attributes: dict[str, Any]

    def __init__(self, items: list[Any], attributes: dict[str, Any] | None = None) -> None:
        super().__init__(items)
        self.attributes = attributes or {}

    @property
    def names(self) -> list[str] | None:
        names = self.attributes.get("names")
        return None if names is None else [str(n) for n in names]

    def to_dict(self) -> dict[str, Any]:
        """Map element names to elements (raises when the list is unnamed)."""
        if self.names is None:
            raise DataError("this R list has no names; index it by position instead")
        if len(self.names) != len(self):
            raise DataError(f"this R list has {len(self)} elements but {len(self.names)} names; {_FIX}")
        return dict(zip(self.names, self, strict=True))


def _decompressor(raw: bytes) -> tuple[str, object] | None:
    if raw[:2] == b"\x1f\x8b":
        return "gzip", zlib.decompressobj(wbits=31)
    if raw[:3] == b"BZh":
        return "bzip2", bz2.BZ2Decompressor()
    if raw[:6] == b"\xfd7zXZ\x00":
        return "xz", lzma.LZMADecompressor()
    return None


def _decompress(raw: bytes, path: Path) -> bytes:
    """The decompressed stream, refusing more than ``MAX_EXPANSION`` x the file (a decompression bomb)."""
    found = _decompressor(raw)
    if found is None:
        return raw
    kind, d = found
    cap = max(MIN_DECOMPRESSED_CAP, MAX_EXPANSION * len(raw))
    try:
        out = d.decompress(raw, max_length=cap + 1)  # type: ignore[attr-defined]
    except (OSError, EOFError, ValueError, lzma.LZMAError, zlib.error) as exc:
        raise DataError(f"{path}: the compressed stream is corrupt or truncated ({exc}); {_FIX}") from exc
    if len(out) > cap:
        raise DataError(
            f"{path}: the {kind} stream expands past {cap / 2**20:,.0f} MB ({MAX_EXPANSION}x the file; R "
            f"signature files expand about 17x): refused as corrupt or hostile; {_FIX}"
        )
    if not d.eof:  # type: ignore[attr-defined]
        raise DataError(f"{path}: the compressed stream is corrupt or truncated (no end marker); {_FIX}")
    return out


class _Reader:
    def __init__(self, buf: bytes, path: Path) -> None:
        self.buf = buf
        self.pos = 0
        self.path = path
        self.refs: list[Any] = []
        arr = np.frombuffer(buf, dtype=np.uint8)
        # Candidate CHARSXP headers: flags 0x00??_??09 (type 9, no object/attr/tag bits).
        cand = np.flatnonzero((arr[:-7] == 0) & (arr[3:-4] == 9) & ((arr[2:-5] & 0x07) == 0))
        self._cand = cand
        self._arr = arr

    def fail(self, what: str) -> DataError:
        return DataError(
            f"{self.path}: {what} at byte {self.pos}; the file is not an R data file of the expected layout; {_FIX}"
        )

    def length(self, n: int, item_bytes: int) -> int:
        """A declared vector length, checked against the bytes left (each item needs ``item_bytes``)."""
        if n < 0 or n * item_bytes > len(self.buf) - self.pos:
            raise self.fail(f"a vector declares {n} items but the data holds fewer")
        return n

    def int(self) -> int:
        if self.pos + 4 > len(self.buf):
            raise self.fail("unexpected end of data")
        (v,) = struct.unpack_from(">i", self.buf, self.pos)
        self.pos += 4
        return v

    def string(self, n: int) -> str:
        s = self.buf[self.pos : self.pos + n]
        if len(s) != n:
            raise self.fail("unexpected end of data")
        self.pos += n
        return s.decode("utf-8", errors="replace")

    def item(self) -> Any:
        flags = self.int()
        sxp = flags & 0xFF
        has_attr = bool(flags & (1 << 9))
        has_tag = bool(flags & (1 << 10))
        if sxp in _SPECIAL_NILS:
            return None
        if sxp == _REF:
            idx = flags >> 8
            if idx == 0:
                idx = self.int()
            return self.refs[idx - 1]
        if sxp == 1:  # SYMSXP
            name = self.item()
            self.refs.append(name)
            return name
        if sxp == 9:  # CHARSXP
            n = self.int()
            return None if n == -1 else self.string(n)
        if sxp in (2, 6):  # LISTSXP / LANGSXP (pairlist): dict of tag -> value
            out: dict[str, Any] = {}
            while True:
                attrs = self.item() if has_attr else None
                del attrs
                tag = self.item() if has_tag else f"_{len(out)}"
                out[str(tag)] = self.item()
                nxt = self.int()
                sxp_n = nxt & 0xFF
                if sxp_n == _NILVALUE:
                    return out
                if sxp_n not in (2, 6):
                    self.pos -= 4
                    out["_cdr"] = self.item()
                    return out
                has_attr = bool(nxt & (1 << 9))
                has_tag = bool(nxt & (1 << 10))
        if sxp == _ALTREP:
            info = self.item()
            state = self.item()
            attr = self.item()
            cls = str(next(iter(info.values()))) if isinstance(info, dict) else ""
            if cls in ("compact_intseq", "compact_realseq"):
                n, start, step = (float(x) for x in state)
                if not 0 <= n <= MAX_COMPACT_LENGTH:
                    raise self.fail(f"a compact sequence of {n:.0f} items (at most {MAX_COMPACT_LENGTH:,})")
                if cls == "compact_intseq":
                    return int(start) + int(step) * np.arange(int(n), dtype=np.int64)
                return start + step * np.arange(int(n), dtype=np.float64)
            if cls.startswith("wrap_"):
                return state["_0"] if isinstance(state, dict) else state[0]
            if cls == "deferred_string":
                return np.asarray(state["_0"] if isinstance(state, dict) else state, dtype=str)
            del attr
            raise self.fail(f"unsupported ALTREP class {cls!r}")
        if sxp == 22:  # EXTPTRSXP (e.g. data.table's self reference): kept as None
            self.refs.append(None)
            self.item()  # protected value
            self.item()  # tag
            value = None
        elif sxp == 23:  # WEAKREFSXP
            self.refs.append(None)
            value = None
        elif sxp == 4:  # ENVSXP: skipped, kept as None
            self.refs.append(None)
            self.int()  # locked
            for _ in range(4):  # enclosure, frame, hash table, attributes
                self.item()
            return None
        elif sxp == 16:  # STRSXP
            value: Any = self._strings(self.length(self.int(), 8))
        elif sxp in (10, 13):  # LGLSXP / INTSXP
            n = self.length(self.int(), 4)
            value = np.frombuffer(self.buf, ">i4", n, self.pos).astype(np.int64)
            self.pos += 4 * n
            if sxp == 10:
                value = np.where(value == _NA_INT, -1, value).astype(np.int8)
        elif sxp == 14:  # REALSXP
            n = self.length(self.int(), 8)
            value = np.frombuffer(self.buf, ">f8", n, self.pos).astype(np.float64)
            self.pos += 8 * n
        elif sxp in (19, 20):  # VECSXP / EXPRSXP
            n = self.length(self.int(), 4)
            value = RList([self.item() for _ in range(n)])
        else:
            raise self.fail(f"unsupported R object type {sxp}")
        if has_attr:
            attrs = self.item()
            if isinstance(value, RList):
                value.attributes = attrs or {}
            elif isinstance(value, np.ndarray) and isinstance(attrs, dict) and "levels" in attrs:
                levels = np.asarray(attrs["levels"], dtype=object)
                codes = value.astype(np.int64)
                value = np.where(codes > 0, levels[np.clip(codes - 1, 0, None)], None)
        return value

    def _strings(self, n: int) -> np.ndarray:
        """Decode ``n`` consecutive CHARSXPs into an object array of str (None for NA)."""
        if n == 0:
            return np.empty(0, dtype=object)
        start = self.pos
        i0 = int(np.searchsorted(self._cand, start))
        window = self._cand[i0 : i0 + 2 * n + 1]
        # a length field of 9 (00 00 00 09) looks like a header: it sits 4 bytes after one
        heads = window[~np.isin(window - 4, window)][:n]
        if len(heads) == n and heads[0] == start:
            a = self._arr
            lens = (
                (a[heads + 4].astype(np.int64) << 24)
                | (a[heads + 5].astype(np.int64) << 16)
                | (a[heads + 6].astype(np.int64) << 8)
                | a[heads + 7].astype(np.int64)
            )
            na = lens == 0xFFFFFFFF
            lens = np.where(na, 0, lens)
            ends = heads + 8 + lens
            if np.array_equal(ends[:-1], heads[1:]) and lens.max() < 4096:
                self.pos = int(ends[-1])
                width = int(max(lens.max(), 1))
                idx = heads[:, None] + 8 + np.arange(width)[None, :]
                block = a[np.minimum(idx, len(a) - 1)]
                block[np.arange(width)[None, :] >= lens[:, None]] = 0
                fixed = np.ascontiguousarray(block).view(f"S{width}").ravel()
                out = np.char.decode(fixed, "utf-8", errors="replace").astype(object)
                if na.any():
                    out[na] = None
                return out
        return np.array([self.item() for _ in range(n)], dtype=object)


def read_rda(path: str | Path) -> dict[str, Any]:
    """Read an R ``.rda``/``.RData`` file (gzip, bzip2, xz or uncompressed).

    Args:
        path: the file.

    Returns:
        A dict from object name to value: character vectors become object arrays of
        ``str``, numeric vectors NumPy arrays, factors object arrays of their levels,
        lists :class:`RList` (with ``.names`` and ``.attributes``).

    Raises:
        DataError: the file is missing, corrupt, truncated or uses an unsupported layout.
    """
    path = Path(path)
    try:
        info = os.stat(path)  # follows links: a link to a device or pipe is refused too
        if not stat.S_ISREG(info.st_mode):
            raise DataError(f"{path} is not a regular file (a pipe, device or folder); give an .rda file")
        if info.st_size > MAX_FILE_BYTES:
            raise DataError(f"{path} is {info.st_size / 2**30:.1f} GB; R data files above 2 GB are refused")
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}") from exc
    buf = _decompress(raw, path)
    if buf[:5] not in (b"RDX2\n", b"RDX3\n") or buf[5:7] != b"X\n":
        raise DataError(f"{path}: not an R data file in XDR format (header {buf[:7]!r}); {_FIX}")
    reader = _Reader(buf, path)
    reader.pos = 7
    version = reader.int()
    reader.int()  # R version that wrote it
    reader.int()  # minimal R version to read it
    if version == 3:
        reader.string(reader.int())  # native encoding
    try:
        top = reader.item()
    except RecursionError as exc:
        raise reader.fail("objects nested too deeply") from exc
    except (IndexError, ValueError, TypeError, KeyError, AttributeError, struct.error, MemoryError) as exc:
        raise reader.fail(f"malformed data ({type(exc).__name__}: {exc})") from exc
    if not isinstance(top, dict):
        raise DataError(f"{path}: expected a pairlist of named objects at top level")
    return top
