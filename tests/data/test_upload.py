"""Uploads from the Data page (perturb_core.data.upload): limits, safe zips, atomicity, messages."""

from __future__ import annotations

import io
import stat
import tempfile
import tomllib
import zipfile
from pathlib import Path

import pytest

from perturb_core.config import get_settings, repo_root
from perturb_core.data.registry import list_datasets, load_signatures
from perturb_core.data.upload import MAX_ZIP_MEMBERS, check_upload_size, import_upload, safe_extract_zip
from perturb_core.errors import ConfigError, DataError, ValidationError
from perturb_core.testing.uploads import h5ad_bytes, signature_zip, zip_bytes


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # where upload scratch folders go
    (tmp_path / "tmp").mkdir()
    return get_settings().with_(data_dir=tmp_path / "data", upload_max_mb=1)


def _nothing_stored(settings, tmp_path: Path) -> None:
    user = settings.data_dir / "user"
    assert not user.exists() or not any(p.suffix == ".h5ad" for p in user.iterdir())
    assert not [d for d in list_datasets(settings) if d.user]
    assert not list((tmp_path / "tmp").iterdir()), "scratch folder left behind"


def test_good_h5ad_upload_is_registered_and_loadable(settings, tmp_path: Path) -> None:
    stages: list[str] = []
    res = import_upload(
        io.BytesIO(h5ad_bytes()),
        filename="C:\\Users\\me\\my screen.h5ad",
        name="my-screen",
        settings=settings,
        progress=lambda stage, done, total: stages.append(stage),
    )
    assert res.path.parent == settings.data_dir / "user" and res.name == "my-screen"
    assert res.source == "my screen.h5ad" and res.n_bytes == len(h5ad_bytes()) and res.skipped == ()
    assert stages[0] == "receiving" and stages[-1] == "done"
    info = next(d for d in list_datasets(settings) if d.user)
    assert info.name == "my-screen" and "my screen.h5ad" in info.description
    ds = load_signatures("my-screen", settings)
    assert ds.cell_lines == ["L1", "L2"] and ds.adata.n_obs == 6 and ds.adata.n_vars == 5
    assert not list((tmp_path / "tmp").iterdir())
    with pytest.raises(ValidationError, match="already imported"):
        import_upload(h5ad_bytes(), filename="again.h5ad", name="My_Screen", settings=settings)
    import_upload(
        h5ad_bytes(cell_lines=("L9",)),
        filename="v2.h5ad",
        name="my-screen",
        overwrite=True,
        settings=settings,
    )
    assert load_signatures("my-screen", settings).cell_lines == ["L9"]


def test_good_zip_of_signature_files(settings) -> None:
    res = import_upload(signature_zip(), filename="sigs.zip", name="zipped", settings=settings)
    ds = load_signatures("zipped", settings)
    assert sorted(ds.cell_lines) == ["L1", "L2"] and sorted(ds.drugs()) == ["D1", "D2"]
    assert res.skipped == ("sigs/README.txt",)


@pytest.mark.parametrize(
    ("filename", "data", "match"),
    [
        ("broken.h5ad", b"\x89HDF junk" * 50, r"^broken\.h5ad: not a readable \.h5ad"),
        ("cut.h5ad", h5ad_bytes()[:3000], r"^cut\.h5ad: not a readable \.h5ad"),
        ("empty.h5ad", b"", "is empty"),
        ("notes.txt", b"hello", r"unsupported file type \.txt"),
        ("noext", b"hello", r"unsupported file type \(no extension\)"),
        ("bad.zip", b"PK\x03\x04 not really", "not a readable zip archive"),
        ("none.zip", zip_bytes({"a.txt": b"x"}), r"holds no \.rda signature files \(passed over: a\.txt\)"),
        ("junk.zip", zip_bytes({"a.C1.rda": b"garbage"}), r"^junk\.zip/a\.C1\.rda: not an R data file"),
    ],
)
def test_corrupt_uploads_change_nothing(
    settings, tmp_path: Path, filename: str, data: bytes, match: str
) -> None:
    with pytest.raises(DataError, match=match) as err:
        import_upload(data, filename=filename, name="mine", settings=settings)
    assert str(tmp_path) not in str(err.value)  # no server path in a message
    _nothing_stored(settings, tmp_path)


def test_size_limit_is_checked_before_anything_is_written(settings, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"is 2,048\.0 MB; the upload limit is 1 MB"):
        check_upload_size(2 * 2**30, settings=settings, name="huge.h5ad")
    with pytest.raises(DataError, match="upload limit is 1 MB"):
        import_upload(b"\0" * (2**20 + 1), filename="big.h5ad", name="mine", settings=settings)

    class Endless(io.RawIOBase):  # a stream that claims 10 bytes but never ends
        def readable(self) -> bool:
            return True

        def readinto(self, b) -> int:  # type: ignore[override]
            b[:] = b"\0" * len(b)
            return len(b)

    with pytest.raises(DataError, match="larger than the upload limit"):
        import_upload(
            io.BufferedReader(Endless()), filename="s.h5ad", name="mine", size=10, settings=settings
        )
    _nothing_stored(settings, tmp_path)


@pytest.mark.parametrize(
    ("member", "match"),
    [
        ("../evil.rda", "points outside"),
        ("sigs/../../evil.rda", "points outside"),
        ("/etc/evil.rda", "points outside"),
        ("C:/evil.rda", "points outside"),
        ("..\\evil.rda", "points outside"),
    ],
)
def test_zip_members_outside_the_folder_are_refused(
    settings, tmp_path: Path, member: str, match: str
) -> None:
    data = zip_bytes({member: b"x", "ok.C1.rda": b"y"})
    with pytest.raises(DataError, match=match):
        import_upload(data, filename="evil.zip", name="mine", settings=settings)
    _nothing_stored(settings, tmp_path)
    assert not (tmp_path / "evil.rda").exists() and not (tmp_path / "tmp" / "evil.rda").exists()


def test_zip_symlinks_bombs_and_member_counts(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        link = zipfile.ZipInfo("link.rda")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
    archive = tmp_path / "a.zip"
    archive.write_bytes(buf.getvalue())
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(DataError, match="symbolic link"):
        safe_extract_zip(archive, dest, max_total=2**20)
    # 8 MB of zeros compress to ~8 kB: refused by its inflated size
    archive.write_bytes(zip_bytes({"a.C1.rda": b"\0" * (8 * 2**20)}))
    with pytest.raises(DataError, match="zip bomb"):
        safe_extract_zip(archive, dest, max_total=4 * 2**20)
    archive.write_bytes(zip_bytes({f"f{i}.rda": b"" for i in range(MAX_ZIP_MEMBERS + 1)}))
    with pytest.raises(DataError, match=f"at most {MAX_ZIP_MEMBERS:,}"):
        safe_extract_zip(archive, dest, max_total=2**20)
    archive.write_bytes(zip_bytes({"x/a.C1.rda": b"1", "y/a.C1.rda": b"2"}))
    with pytest.raises(DataError, match="same file name"):
        safe_extract_zip(archive, dest, max_total=2**20)
    assert not list(dest.iterdir())


def test_the_upload_limit_is_configured_once(monkeypatch: pytest.MonkeyPatch) -> None:
    app = tomllib.loads((repo_root() / "perturb_core.toml").read_text())["app"]
    server = tomllib.loads((repo_root() / ".streamlit" / "config.toml").read_text())["server"]
    assert app["upload_max_mb"] == server["maxUploadSize"] == get_settings().upload_max_mb
    monkeypatch.setenv("PERTURB_CORE_UPLOAD_MAX_MB", "12")
    assert get_settings().upload_max_mb == 12
    monkeypatch.setenv("PERTURB_CORE_UPLOAD_MAX_MB", "lots")
    with pytest.raises(ConfigError, match="upload_max_mb"):
        get_settings()
