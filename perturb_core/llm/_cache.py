"""The content-addressed disk cache of LLM answers: one atomic, human-readable JSON line per entry."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perturb_core.errors import ValidationError
from perturb_core.llm._files import _dumps_line

__all__ = ["ResponseCache"]

log = logging.getLogger(__name__)

_KEY_RE = re.compile(r"^[0-9a-f]{64}$")
STALE_TMP_S = 60.0
"""A temporary file older than this is an orphan of a killed writer (a write takes milliseconds)."""


def _check_key(key: str) -> str:
    if not isinstance(key, str) or not _KEY_RE.match(key):
        raise ValidationError(
            f"cache key {key!r:.80} is not 64 lower-case hex digits; compute it with cache_key()"
        )
    return key


@dataclass(frozen=True)
class ResponseCache:
    """Content-addressed disk cache of LLM answers.

    Entry ``key`` lives in ``directory/<key[:2]>/<key>.jsonl`` as ONE JSON line with fields
    ``key, model, messages, options, response, created`` (ISO 8601, UTC) and ``elapsed_s``.
    Writes go to a temporary file in the same folder and are renamed into place
    (``os.replace``), so readers in any process see a whole entry or none, and a writer killed
    mid-write leaves no partial entry. A killed writer can leave its temporary ``.*.tmp`` file:
    the first use of a cache object removes those older than :data:`STALE_TMP_S` (a live
    writer's file is milliseconds old, so it is never touched). An unreadable entry file reads as
    a miss. The API key is never part of an entry.

    Attributes:
        directory: the cache folder (created on first write).
    """

    directory: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "directory", Path(self.directory).expanduser())
        self.remove_orphans()

    def remove_orphans(self, older_than_s: float = STALE_TMP_S) -> int:
        """Delete temporary files left by writers killed mid-write (only those older than ``older_than_s``).

        Returns:
            The number of files removed (errors, e.g. a read-only folder, are ignored).
        """
        if not self.directory.is_dir():
            return 0
        cutoff = time.time() - older_than_s
        n = 0
        for tmp in self.directory.glob("??/.*.tmp"):
            with contextlib.suppress(OSError):
                if tmp.stat().st_mtime < cutoff:
                    tmp.unlink()
                    n += 1
        if n:
            log.info("removed %d orphaned temporary file(s) from the LLM cache %s", n, self.directory)
        return n

    def path_for(self, key: str) -> Path:
        """The file that holds (or would hold) entry ``key``."""
        _check_key(key)
        return self.directory / key[:2] / f"{key}.jsonl"

    def get(self, key: str) -> dict[str, Any] | None:
        """Read entry ``key``.

        Args:
            key: a :func:`cache_key`.

        Returns:
            The record, or ``None`` when absent or unreadable (truncated, not JSON, wrong key
            or no ``response`` text); an unreadable file is logged and later overwritten.
        """
        path = self.path_for(key)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            log.warning("ignoring unreadable LLM cache entry %s: %s", path, exc)
            return None
        record = self._parse(text)
        if record is None or record.get("key") != key:
            log.warning("ignoring corrupt LLM cache entry %s", path)
            return None
        return record

    @staticmethod
    def _parse(text: str) -> dict[str, Any] | None:
        try:
            record = json.loads(text)
        except json.JSONDecodeError:
            return None
        if not isinstance(record, dict) or not isinstance(record.get("response"), str):
            return None
        return record

    def put(self, record: Mapping[str, Any]) -> Path:
        """Store ``record`` atomically under ``record["key"]``, replacing any older entry.

        Args:
            record: a mapping with at least ``key`` (a :func:`cache_key`) and ``response`` (str).

        Returns:
            The entry's file.

        Raises:
            ValidationError: ``key`` or ``response`` is missing or malformed.
            OSError: the folder is not writable (no partial entry is left behind).
        """
        path = self.path_for(record.get("key", ""))
        if not isinstance(record.get("response"), str):
            raise ValidationError(f"cache record {record.get('key')} has no 'response' text")
        line = _dumps_line(record)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem[:16]}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return path

    def _entry_files(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(p for p in self.directory.glob("??/*.jsonl") if _KEY_RE.match(p.stem))

    def iter_records(self) -> Iterator[dict[str, Any]]:
        """Yield every readable entry, in key order; unreadable ones are skipped."""
        for path in self._entry_files():
            with contextlib.suppress(OSError, UnicodeDecodeError):
                record = self._parse(path.read_text(encoding="utf-8"))
                if record is not None and record.get("key") == path.stem:
                    yield record

    def stats(self) -> dict[str, Any]:
        """Size of the cache.

        Returns:
            ``{"n_entries": int, "bytes": int, "directory": str}``.
        """
        n = size = 0
        for path in self._entry_files():
            with contextlib.suppress(OSError):
                size += path.stat().st_size
                n += 1
        return {"n_entries": n, "bytes": size, "directory": str(self.directory)}

    def clear(self) -> int:
        """Delete every entry (and temporary files left by killed writers).

        Returns:
            The number of entries removed.
        """
        n = 0
        for path in self._entry_files():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                n += 1
        if self.directory.is_dir():
            for tmp in self.directory.glob("??/.*.tmp"):
                with contextlib.suppress(OSError):
                    tmp.unlink()
            for sub in self.directory.iterdir():
                with contextlib.suppress(OSError):
                    sub.rmdir()  # only succeeds when empty
        return n
