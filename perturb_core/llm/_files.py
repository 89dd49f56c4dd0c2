"""JSON and JSONL files: a JSON fallback for NumPy values, paths and datetimes; locked JSONL appends and tolerant reads."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

try:  # POSIX only; on other systems appends rely on a single write() per line
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

__all__ = ["append_jsonl", "read_jsonl"]

log = logging.getLogger(__name__)


def _json_default(obj: object) -> object:
    """JSON fallback for NumPy scalars/arrays, paths and datetimes."""
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, datetime):
        return obj.isoformat()
    if hasattr(obj, "tolist"):  # NumPy scalar or array
        return obj.tolist()
    raise TypeError(f"cannot write {type(obj).__name__} {obj!r:.60} as JSON; convert it to str, int or float")


def _dumps_line(record: Mapping[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, default=_json_default) + "\n"


def append_jsonl(path: str | os.PathLike[str], record: Mapping[str, Any]) -> None:
    """Append one record as one JSON line, safely when several processes append at once.

    The file is locked (``fcntl.flock``) while the line is written, parent folders are
    created, and a line left unfinished by a killed writer is closed off first so the new
    record stays readable.

    Args:
        path: the ``.jsonl`` log file.
        record: a JSON-serialisable mapping (NumPy values, paths and datetimes are converted).

    Raises:
        TypeError: a value cannot be written as JSON.
    """
    path = Path(path)
    data = _dumps_line(record).encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as fh:
        if fcntl is not None:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            end = fh.seek(0, os.SEEK_END)
            if end > 0:
                fh.seek(end - 1)
                if fh.read(1) != b"\n":
                    data = b"\n" + data
            fh.write(data)
            fh.flush()
        finally:
            if fcntl is not None:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read the records of a JSONL file, skipping blank and unreadable lines.

    Args:
        path: the ``.jsonl`` file; a missing file reads as no records.

    Returns:
        The records (JSON objects) in file order.
    """
    path = Path(path)
    if not path.exists():
        return []
    records = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                log.warning("skipping unreadable line %d of %s", lineno, path)
                continue
            if isinstance(record, dict):
                records.append(record)
    return records
