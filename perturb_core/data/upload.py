"""Import an uploaded file (an ``.h5ad`` or a zip of ``.rda`` signature files) as a user dataset.

The app's Data page hands the uploaded bytes here; the validation, the messages and the stored
result are those of :func:`~perturb_core.data.importer.import_dataset` (``data import``). What
this module adds is what a file from a browser needs:

- a size limit stated up front (:attr:`Settings.upload_max_mb`, ``[app] upload_max_mb``), checked
  before a byte is written and again while the bytes are copied;
- safe zip extraction: no member outside the extraction folder (``..``, absolute paths, drive
  letters, symbolic links), at most :data:`MAX_ZIP_MEMBERS` members, at most
  :data:`ZIP_EXPANSION_LIMIT` x the upload limit uncompressed in total (counted on the bytes
  actually inflated, not the sizes the archive claims), no encrypted members;
- atomicity: everything is unpacked into a private temporary folder that is removed afterwards,
  and the dataset is registered only after it validated and was written in full, so a corrupt,
  hostile or oversized upload changes nothing stored;
- messages that name the uploaded file, never a server path.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from perturb_core.config import Settings, get_settings
from perturb_core.data.importer import import_dataset
from perturb_core.errors import DataError, PerturbCoreError

__all__ = [
    "MAX_ZIP_MEMBERS",
    "UPLOAD_TYPES",
    "ZIP_EXPANSION_LIMIT",
    "UploadResult",
    "check_upload_size",
    "import_upload",
    "safe_extract_zip",
]

UPLOAD_TYPES = ("h5ad", "zip")
"""File types the Data page accepts."""
MAX_ZIP_MEMBERS = 2_000
"""Most members a zip may hold (Tahoe has 40 signature files, one per cell line)."""
ZIP_EXPANSION_LIMIT = 4
"""A zip may inflate to at most this many times the upload limit in total (``.rda`` files are
already compressed, so a real signature zip inflates about 1x; more is a zip bomb)."""
_CHUNK = 1 << 20

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class UploadResult:
    """A registered upload.

    Attributes:
        name: the dataset name, usable everywhere a dataset name is.
        path: its ``.h5ad`` under ``<data dir>/user/``.
        source: the uploaded file's name.
        n_bytes: the upload's size in bytes.
        skipped: zip members passed over (not ``.rda``, hidden, ``__MACOSX``).
    """

    name: str
    path: Path
    source: str
    n_bytes: int
    skipped: tuple[str, ...] = ()


def _mb(n: int) -> str:
    return f"{n / 2**20:,.1f} MB"


def check_upload_size(size: int, *, settings: Settings | None = None, name: str = "the upload") -> None:
    """Refuse an upload larger than ``settings.upload_max_mb`` (before anything is written).

    Raises:
        DataError: the size exceeds the limit (the message gives both and how to raise it).
    """
    limit_mb = (settings or get_settings()).upload_max_mb
    if size > limit_mb * 2**20:
        raise DataError(
            f"{name} is {_mb(size)}; the upload limit is {limit_mb} MB. Import larger files from the command "
            "line (`python -m perturb_core data import PATH --name NAME`), or raise [app] upload_max_mb in "
            "perturb_core.toml together with server.maxUploadSize in .streamlit/config.toml"
        )
    if size == 0:
        raise DataError(f"{name} is empty (0 bytes); choose the file again")


def _safe_member(info: zipfile.ZipInfo, archive: str) -> PurePosixPath | None:
    """The member's path if it is a regular file that stays inside the folder; ``None`` for folders.

    Raises:
        DataError: absolute path, ``..`` component, drive letter, symbolic link or encryption.
    """
    raw = info.filename.replace("\\", "/")
    if info.is_dir():
        return None
    path = PurePosixPath(raw)
    if raw.startswith("/") or ".." in path.parts or re.match(r"^[A-Za-z]:", raw):
        raise DataError(
            f"{archive}: member {info.filename!r} points outside the archive's folder; refused "
            "(zip the signature files themselves, with plain relative names)"
        )
    mode = info.external_attr >> 16
    if mode and stat.S_ISLNK(mode):
        raise DataError(f"{archive}: member {info.filename!r} is a symbolic link; refused")
    if info.flag_bits & 0x1:
        raise DataError(f"{archive}: member {info.filename!r} is encrypted; zip the files without a password")
    return path


def safe_extract_zip(
    archive: Path,
    dest: Path,
    *,
    max_total: int,
    max_members: int = MAX_ZIP_MEMBERS,
    name: str | None = None,
    progress: Progress | None = None,
) -> tuple[list[Path], list[str]]:
    """Extract the ``.rda`` files of a zip into ``dest`` (flat), safely.

    Args:
        archive: the zip file.
        dest: an empty folder to extract into.
        max_total: most bytes the extracted files may hold in total (counted while inflating).
        max_members: most members the archive may list.
        name: the archive's name for messages (default: its file name).
        progress: ``progress("extracting", done, total)`` per member.

    Returns:
        ``(extracted files, names passed over)``: other files (not ``.rda``, hidden, macOS
        ``__MACOSX`` metadata) are passed over and listed, as ``data import`` does for a folder.

    Raises:
        DataError: not a zip, too many members, a member outside the folder, a symbolic link or
            encrypted member, two members with one file name, or more than ``max_total`` bytes.
    """
    label = name or archive.name
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{label}: not a readable zip archive ({exc}); check the file is complete") from exc
    with zf:
        infos = zf.infolist()
        if len(infos) > max_members:
            raise DataError(
                f"{label}: {len(infos):,} members; at most {max_members:,} are accepted (one .rda file per cell line)"
            )
        wanted: list[tuple[zipfile.ZipInfo, str]] = []
        skipped: list[str] = []
        seen: dict[str, str] = {}
        for info in infos:
            path = _safe_member(info, label)
            if path is None:
                continue
            base = path.name
            if "__MACOSX" in path.parts or base.startswith(".") or not base.lower().endswith(".rda"):
                skipped.append(info.filename)
                continue
            if base in seen:
                raise DataError(
                    f"{label}: {seen[base]!r} and {info.filename!r} have the same file name; keep one"
                )
            seen[base] = info.filename
            wanted.append((info, base))
        claimed = sum(i.file_size for i, _ in wanted)
        if claimed > max_total:
            raise DataError(
                f"{label}: the signature files inflate to {_mb(claimed)}, more than the {_mb(max_total)} "
                f"accepted ({ZIP_EXPANSION_LIMIT}x the upload limit); refused as too large or a zip bomb"
            )
        total = 0
        out: list[Path] = []
        for n, (info, base) in enumerate(wanted, 1):
            target = dest / base
            try:
                with zf.open(info) as src, open(target, "xb") as dst:
                    while chunk := src.read(_CHUNK):
                        total += len(chunk)
                        if total > max_total:  # the archive lied about sizes
                            raise DataError(
                                f"{label}: inflates past {_mb(max_total)} ({ZIP_EXPANSION_LIMIT}x the upload "
                                "limit); refused as a zip bomb"
                            )
                        dst.write(chunk)
            except PerturbCoreError:
                raise
            except Exception as exc:  # BadZipFile, zlib.error, EOFError, OSError: a corrupt member
                raise DataError(f"{label}: member {info.filename!r} is corrupt ({exc})") from exc
            out.append(target)
            if progress:
                progress("extracting", n, len(wanted))
    return out, skipped


def _copy(
    src: BinaryIO | bytes, dest: Path, size: int, limit: int, name: str, progress: Progress | None
) -> None:
    """Write the upload to ``dest`` in chunks, stopping as soon as it passes ``limit`` bytes."""
    if isinstance(src, bytes | bytearray | memoryview):
        data = bytes(src)
        if len(data) > limit:
            raise DataError(f"{name} is {_mb(len(data))}; the upload limit is {_mb(limit)}")
        dest.write_bytes(data)
        if progress:
            progress("receiving", len(data), len(data))
        return
    done = 0
    with open(dest, "xb") as out:
        while chunk := src.read(_CHUNK):
            done += len(chunk)
            if done > limit:
                raise DataError(f"{name} is larger than the upload limit of {_mb(limit)}")
            out.write(chunk)
            if progress:
                progress("receiving", done, max(size, done))


def _clean_name(filename: str) -> str:
    """The uploaded file's own name, without folders or characters a file system dislikes."""
    base = PurePosixPath(str(filename).replace("\\", "/")).name
    base = re.sub(r"[^A-Za-z0-9._\- ]", "_", base).strip(" .") or "upload"
    return base[:120]


def import_upload(
    data: BinaryIO | bytes,
    *,
    filename: str,
    name: str,
    size: int | None = None,
    overwrite: bool = False,
    cell_line_col: str | None = None,
    drug_col: str | None = None,
    settings: Settings | None = None,
    progress: Progress | None = None,
) -> UploadResult:
    """Validate and register an uploaded ``.h5ad`` or zip of ``.rda`` signature files.

    Args:
        data: the file's bytes, or a binary stream (Streamlit's ``UploadedFile``).
        filename: the name the user's file had (its extension picks the format).
        name: the dataset name (as ``data import --name``).
        size: the upload's size in bytes if known (checked before reading; default: ``len(data)``
            or the stream's length).
        overwrite: replace a dataset already imported under this name.
        cell_line_col, drug_col: ``obs`` columns of an ``.h5ad`` (auto-detected when ``None``).
        settings: where the data lives and the upload limit.
        progress: ``progress(stage, done, total)``; stages ``receiving``, ``extracting``,
            ``validating``, ``done``.

    Returns:
        The :class:`UploadResult` (dataset name, written ``.h5ad``, zip members passed over).

    Raises:
        ValidationError: bad dataset name (or taken, unless ``overwrite``).
        DataError: too large, empty, an unsupported type, a corrupt or hostile file, or any
            content problem ``data import`` reports; nothing is stored then.
    """
    settings = settings or get_settings()
    shown = _clean_name(filename)
    ext = shown.rsplit(".", 1)[-1].lower() if "." in shown else ""
    if ext not in UPLOAD_TYPES:
        raise DataError(
            f"{shown}: unsupported file type {('.' + ext) if ext else '(no extension)'}; upload an .h5ad "
            "(obs with cell line and drug columns, X = deltas) or a .zip of .rda signature files"
        )
    if size is None:
        if isinstance(data, bytes | bytearray | memoryview):
            size = len(data)
        else:
            pos = data.tell()
            size = data.seek(0, os.SEEK_END) - pos
            data.seek(pos)
    check_upload_size(size, settings=settings, name=shown)
    limit = settings.upload_max_mb * 2**20
    tmp = Path(tempfile.mkdtemp(prefix="perturb-upload-"))
    skipped: list[str] = []
    try:
        src = tmp / shown
        _copy(data, src, size, limit, shown, progress)
        if ext == "zip":
            folder = tmp / "signatures"
            folder.mkdir()
            files, skipped = safe_extract_zip(
                src, folder, max_total=ZIP_EXPANSION_LIMIT * limit, name=shown, progress=progress
            )
            if not files:
                hint = f" (passed over: {', '.join(skipped[:5])})" if skipped else ""
                raise DataError(f"{shown}: the zip holds no .rda signature files{hint}")
            src.unlink()
            target = folder
        else:
            target = src
        if progress:
            progress("validating", 0, 1)
        try:
            out = import_dataset(
                target,
                name=name,
                cell_line_col=cell_line_col,
                drug_col=drug_col,
                overwrite=overwrite,
                settings=settings,
                source_name=shown,
            )
        except PerturbCoreError as exc:  # name the upload, never the server's temporary folder
            raise type(exc)(str(exc).replace(f"{target}", shown).replace(f"{tmp}{os.sep}", "")) from exc
        if progress:
            progress("done", 1, 1)
        return UploadResult(name=name, path=out, source=shown, n_bytes=size, skipped=tuple(skipped))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
