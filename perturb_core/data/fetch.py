"""Fetch raw files from a mirror folder or their public URLs, verifying every sha256.

Files are written to a temporary name in the destination folder and moved into place with
``os.replace`` only after their hash matched, so a killed fetch never leaves a half file.
A file already present with the right size and hash is skipped (its hash is remembered in
a small stamp file keyed by size and mtime, so re-checks are instant).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from perturb_core.config import Settings, get_settings
from perturb_core.data.manifest import ManifestEntry, load_manifest
from perturb_core.errors import DataError

__all__ = ["FetchResult", "fetch", "sha256_file", "verify_file"]

_CHUNK = 1 << 20
_STAMPS = ".verified.json"


@dataclass(frozen=True)
class FetchResult:
    """What happened to one file."""

    file: str
    status: Literal["present", "copied", "downloaded"]
    path: Path


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _load_stamps(raw_dir: Path) -> dict[str, list]:
    try:
        return json.loads((raw_dir / _STAMPS).read_text())
    except (OSError, ValueError):
        return {}


def _save_stamps(raw_dir: Path, stamps: dict[str, list]) -> None:
    raw_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=raw_dir, prefix=".stamps.")
    with os.fdopen(fd, "w") as fh:
        json.dump(stamps, fh)
    os.replace(tmp, raw_dir / _STAMPS)


def verify_file(path: Path, entry: ManifestEntry) -> None:
    """Check size and sha256 of ``path`` against ``entry``.

    Raises:
        DataError: size or hash differ; the message shows both hashes.
    """
    size = path.stat().st_size
    if size != entry.bytes:
        raise DataError(
            f"{entry.file}: size {size} bytes, expected {entry.bytes} (truncated or wrong file at {path}); "
            "the file was refused — fetch it again from the public URL in data/manifest.tsv"
        )
    digest = sha256_file(path)
    if digest != entry.sha256:
        raise DataError(
            f"{entry.file}: sha256 mismatch, got {digest}, expected {entry.sha256} (file {path}); "
            "the file was refused — replace it with the public copy at " + entry.url
        )


def _is_verified(path: Path, entry: ManifestEntry, stamps: dict[str, list]) -> bool:
    if not path.exists():
        return False
    info = path.stat()
    stamp = [info.st_size, info.st_mtime_ns, entry.sha256]
    if stamps.get(entry.file) == stamp:
        return True
    try:
        verify_file(path, entry)
    except DataError:
        return False
    stamps[entry.file] = stamp
    return True


def _download(url: str, out: Path, timeout: float) -> None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(out, "wb") as fh:
            shutil.copyfileobj(resp, fh, _CHUNK)
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise DataError(
            f"cannot download {url}: {exc}; without network, point PERTURB_CORE_MIRROR "
            "(or --mirror) at a folder holding a copy of the raw files"
        ) from exc


def _place(entry: ManifestEntry, dest: Path, source: Callable[[Path], None]) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        source(tmp)
        verify_file(tmp, entry)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def fetch(
    *,
    mirror: Path | Literal["settings"] | None = "settings",
    settings: Settings | None = None,
    entries: Sequence[ManifestEntry] | None = None,
    include_optional: bool | None = None,
    timeout: float = 120.0,
    progress: Callable[[int, int, str], None] | None = None,
) -> list[FetchResult]:
    """Copy (from ``mirror``) or download every manifest file into ``settings.raw_dir``.

    Args:
        mirror: a mirror folder; ``"settings"`` uses the configured one; ``None`` downloads.
        settings: paths; default from :func:`get_settings`.
        entries: a subset of the manifest (default: all of it).
        include_optional: fetch CORUM (non-commercial licence); default follows
            ``settings.enable_corum``.
        timeout: seconds per download.
        progress: ``progress(done, total, file)`` after each file.

    Returns:
        One :class:`FetchResult` per file.

    Raises:
        DataError: a file is missing from the mirror and cannot be downloaded, or a hash
            does not match. Files already placed stay; nothing half-written remains.
    """
    settings = settings or get_settings()
    mirror_dir = settings.mirror if mirror == "settings" else mirror
    if mirror_dir is not None and not Path(mirror_dir).is_dir():
        raise DataError(
            f"mirror folder {mirror_dir} does not exist; pass --mirror DIR, set PERTURB_CORE_MIRROR, "
            "or remove `mirror` from perturb_core.toml to download from the public URLs"
        )
    corum = settings.enable_corum if include_optional is None else include_optional
    todo = [e for e in (entries or load_manifest()) if corum or "corum" not in e.file]
    raw_dir = settings.raw_dir
    stamps = _load_stamps(raw_dir)
    results: list[FetchResult] = []
    try:
        for i, entry in enumerate(todo, 1):
            dest = raw_dir / entry.file
            if _is_verified(dest, entry, stamps):
                results.append(FetchResult(entry.file, "present", dest))
            elif mirror_dir is not None and (Path(mirror_dir) / entry.file).exists():
                src = Path(mirror_dir) / entry.file
                _place(entry, dest, lambda tmp, src=src: shutil.copyfile(src, tmp))
                results.append(FetchResult(entry.file, "copied", dest))
            else:
                try:
                    _place(entry, dest, lambda tmp, url=entry.url: _download(url, tmp, timeout))
                except DataError as exc:
                    if mirror_dir is None:
                        raise
                    raise DataError(
                        f"{entry.file} is missing from the mirror {mirror_dir} and the download "
                        f"failed ({exc}); put the file from {entry.url} into the mirror folder"
                    ) from exc
                results.append(FetchResult(entry.file, "downloaded", dest))
            info = dest.stat()
            stamps[entry.file] = [info.st_size, info.st_mtime_ns, entry.sha256]
            if progress is not None:
                progress(i, len(todo), entry.file)
    finally:
        _save_stamps(raw_dir, stamps)
    return results
