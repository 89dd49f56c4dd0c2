"""The manifest of raw files: path, size, sha256, public URL and licence of each."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from perturb_core.config import repo_root
from perturb_core.errors import DataError

__all__ = ["ManifestEntry", "load_manifest"]


@dataclass(frozen=True)
class ManifestEntry:
    """One raw file: ``file`` is its path relative to the raw folder."""

    file: str
    bytes: int
    sha256: str
    url: str
    source_repo: str
    licence: str

    @property
    def group(self) -> str:
        """The top folder (``tahoe_signatures``, ``kg``, ...)."""
        return self.file.split("/", 1)[0]


def load_manifest(path: Path | None = None) -> tuple[ManifestEntry, ...]:
    """Read ``data/manifest.tsv`` (or ``path``).

    Raises:
        DataError: the manifest is missing or malformed.
    """
    path = path or repo_root() / "data" / "manifest.tsv"
    try:
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
    except OSError as exc:
        raise DataError(f"cannot read the manifest {path}: {exc.strerror}") from exc
    try:
        return tuple(
            ManifestEntry(
                file=r["file"],
                bytes=int(r["bytes"]),
                sha256=r["sha256"].lower(),
                url=r["url"],
                source_repo=r["source_repo"],
                licence=r["licence"],
            )
            for r in rows
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"malformed manifest {path}: {exc!r}; restore it from git") from exc
