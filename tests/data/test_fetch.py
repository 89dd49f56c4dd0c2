"""Fetching raw files: mirror copies, URL downloads, hash checks, atomic writes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from perturb_core.config import get_settings
from perturb_core.data import fetch as fetch_mod
from perturb_core.data.fetch import fetch
from perturb_core.data.manifest import ManifestEntry, load_manifest
from perturb_core.errors import DataError


def _entry(name: str, content: bytes, url: str = "https://example.invalid/x") -> ManifestEntry:
    return ManifestEntry(name, len(content), hashlib.sha256(content).hexdigest(), url, "owner/repo", "CC0")


@pytest.fixture
def setup(tmp_path: Path):
    mirror = tmp_path / "mirror"
    (mirror / "grp").mkdir(parents=True)
    files = {"grp/a.txt": b"alpha\n", "grp/b.txt": b"beta\n"}
    for rel, content in files.items():
        (mirror / rel).write_bytes(content)
    settings = get_settings().with_(data_dir=tmp_path / "data", mirror=mirror)
    entries = [_entry(rel, content) for rel, content in files.items()]
    return settings, entries, mirror


def test_copies_then_skips(setup) -> None:
    settings, entries, _ = setup
    first = fetch(settings=settings, entries=entries)
    assert [r.status for r in first] == ["copied", "copied"]
    assert (settings.raw_dir / "grp/a.txt").read_bytes() == b"alpha\n"
    second = fetch(settings=settings, entries=entries)
    assert [r.status for r in second] == ["present", "present"]


def test_hash_mismatch_refuses_the_file_and_shows_both_hashes(setup) -> None:
    settings, entries, mirror = setup
    (mirror / "grp/a.txt").write_bytes(b"ALPHA\n")  # same size, other content
    with pytest.raises(DataError, match=r"sha256 mismatch, got [0-9a-f]{64}, expected [0-9a-f]{64}"):
        fetch(settings=settings, entries=entries, mirror=mirror)
    assert not (settings.raw_dir / "grp/a.txt").exists()
    assert not list(settings.raw_dir.rglob("*.part"))


def test_size_mismatch_is_named(setup) -> None:
    settings, entries, mirror = setup
    (mirror / "grp/b.txt").write_bytes(b"be")
    with pytest.raises(DataError, match="size 2 bytes, expected 5"):
        fetch(settings=settings, entries=entries[1:], mirror=mirror)


def test_missing_mirror_file_names_file_and_url(setup, tmp_path: Path) -> None:
    settings, _, mirror = setup
    (mirror / "grp/b.txt").unlink()
    e = _entry("grp/b.txt", b"beta\n", url=(tmp_path / "nowhere.txt").as_uri())
    with pytest.raises(DataError, match=r"grp/b.txt is missing from the mirror .* put the file from file:"):
        fetch(settings=settings, entries=[e], mirror=mirror)


def test_downloads_from_url_without_mirror(setup, tmp_path: Path) -> None:
    settings, _, _ = setup
    src = tmp_path / "public.txt"
    src.write_bytes(b"gamma\n")
    e = _entry("grp/c.txt", b"gamma\n", url=src.as_uri())
    res = fetch(settings=settings, entries=[e], mirror=None)
    assert res[0].status == "downloaded"
    assert (settings.raw_dir / "grp/c.txt").read_bytes() == b"gamma\n"


def test_missing_mirror_folder(setup, tmp_path: Path) -> None:
    settings, entries, _ = setup
    with pytest.raises(DataError, match="mirror folder .* does not exist"):
        fetch(settings=settings, entries=entries, mirror=tmp_path / "absent")


def test_interrupted_copy_leaves_no_half_file(setup, monkeypatch: pytest.MonkeyPatch) -> None:
    settings, entries, _ = setup

    def boom(src, dst):
        Path(dst).write_bytes(b"alp")  # half written
        raise KeyboardInterrupt

    monkeypatch.setattr(fetch_mod.shutil, "copyfile", boom)
    with pytest.raises(KeyboardInterrupt):
        fetch(settings=settings, entries=entries)
    assert not (settings.raw_dir / "grp/a.txt").exists()
    assert not [p for p in settings.raw_dir.rglob("*") if p.is_file() and p.name != ".verified.json"]


def test_tampered_local_copy_is_replaced(setup) -> None:
    settings, entries, _ = setup
    fetch(settings=settings, entries=entries)
    target = settings.raw_dir / "grp/a.txt"
    target.write_bytes(b"tampered")
    res = fetch(settings=settings, entries=entries)
    assert res[0].status == "copied"
    assert target.read_bytes() == b"alpha\n"


def test_manifest_lists_every_raw_file_with_url_and_licence() -> None:
    entries = load_manifest()
    assert len(entries) == 74
    assert all(e.url.startswith("https://") and len(e.sha256) == 64 and e.licence for e in entries)
    groups = {e.group for e in entries}
    assert {"tahoe_signatures", "perturbqa", "kg", "tahoe_metadata"} <= groups
