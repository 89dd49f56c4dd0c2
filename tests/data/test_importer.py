"""Bring-your-own-data imports: good files register, bad ones get one clear message."""

from __future__ import annotations

import os
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from perturb_core.config import get_settings
from perturb_core.data.importer import import_dataset
from perturb_core.data.registry import list_datasets, load_signatures
from perturb_core.errors import DataError, ValidationError
from perturb_core.testing.rxdr import signature_rda


@pytest.fixture
def settings(tmp_path: Path):
    return get_settings().with_(data_dir=tmp_path / "data")


def _h5ad(tmp_path: Path, *, x=None, obs=None, name: str = "in.h5ad") -> Path:
    obs = obs if obs is not None else pd.DataFrame({"cell_line": ["A", "A", "B"], "drug": ["x", "y", "x"]})
    x = x if x is not None else np.arange(9, dtype=np.float32).reshape(3, 3)
    a = ad.AnnData(X=x, obs=obs.set_axis([f"r{i}" for i in range(len(obs))]))
    a.var_names = ["G1", "G2", "G3"]
    p = tmp_path / name
    a.write_h5ad(p)
    return p


def test_import_h5ad_is_usable_like_builtin(tmp_path: Path, settings) -> None:
    import_dataset(_h5ad(tmp_path), name="my-screen", settings=settings)
    assert "my-screen" in [d.name for d in list_datasets(settings)]
    ds = load_signatures("My Screen", settings)
    assert ds.cell_lines == ["A", "B"]
    np.testing.assert_allclose(ds.delta("a", "Y"), [3, 4, 5])


def test_import_folder_of_signature_files(tmp_path: Path, settings) -> None:
    folder = tmp_path / "sigs"
    folder.mkdir()
    (folder / "mine.line1.rda").write_bytes(signature_rda({"D1": ["G1", "G2"], "D2": ["G2", "G1"]}))
    import_dataset(folder, name="folder_ds", settings=settings)
    ds = load_signatures("folder_ds", settings)
    assert ds.cell_lines == ["line1"] and ds.drugs() == ["D1", "D2"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"obs": pd.DataFrame({"cell": ["A"], "foo": ["x"]}), "x": np.ones((1, 3), np.float32)},
            "needs a drug column",
        ),
        (
            {
                "obs": pd.DataFrame({"cell_line": ["A", "A"], "drug": ["x", "X"]}),
                "x": np.ones((2, 3), np.float32),
            },
            "duplicate \\(cell line, drug\\)",
        ),
        (
            {"x": np.array([[0, np.nan, 0]] * 3, dtype=np.float32)},
            "non-finite values \\(NaN at row 'r0', gene 'G2'\\)",
        ),
        ({"x": np.array([[0, 0, np.inf]] * 3, dtype=np.float32)}, "infinite at row"),
    ],
)
def test_bad_h5ad(tmp_path: Path, settings, kwargs, match) -> None:
    with pytest.raises(DataError, match=match):
        import_dataset(_h5ad(tmp_path, **kwargs), name="bad", settings=settings)
    assert not (settings.data_dir / "user" / "bad.h5ad").exists()


@pytest.mark.parametrize(
    ("name", "exc", "match"),
    [
        ("tahoe", ValidationError, "taken by a built-in"),
        ("bad name!", ValidationError, "letters, digits"),
        # names that normalise to a built-in dataset would be unreachable after import
        ("sci_plex", ValidationError, r"taken by a built-in dataset \('sciplex'"),
        ("Open-Problems", ValidationError, r"taken by a built-in dataset \('openproblems'"),
        ("PerturbQA_K562", ValidationError, "taken by a built-in"),
        ("TAHOE", ValidationError, "taken by a built-in"),
    ],
)
def test_bad_names(tmp_path: Path, settings, name, exc, match) -> None:
    with pytest.raises(exc, match=match):
        import_dataset(_h5ad(tmp_path), name=name, settings=settings)


def test_missing_and_corrupt_paths(tmp_path: Path, settings) -> None:
    with pytest.raises(DataError, match="does not exist"):
        import_dataset(tmp_path / "nope.h5ad", name="x", settings=settings)
    bad = tmp_path / "broken.h5ad"
    bad.write_bytes(b"\x89HDF\r\n garbage")
    with pytest.raises(DataError, match="not a readable .h5ad"):
        import_dataset(bad, name="x", settings=settings)
    txt = tmp_path / "table.csv"
    txt.write_text("a,b\n")
    with pytest.raises(DataError, match="unsupported file type"):
        import_dataset(txt, name="x", settings=settings)


def test_names_differing_only_in_spelling_collide(tmp_path: Path, settings) -> None:
    import_dataset(_h5ad(tmp_path), name="u-good", settings=settings)
    with pytest.raises(ValidationError, match="already imported"):
        import_dataset(_h5ad(tmp_path), name="U_Good", settings=settings)
    import_dataset(_h5ad(tmp_path), name="U_Good", overwrite=True, settings=settings)
    assert [d.name for d in list_datasets(settings) if d.user] == ["U_Good"]


def test_corrupt_registry_is_reported_not_dropped(tmp_path: Path, settings) -> None:
    import_dataset(_h5ad(tmp_path), name="first", settings=settings)
    (settings.data_dir / "user" / "datasets.json").write_text("{not json")
    with pytest.raises(DataError, match="is corrupt"):
        import_dataset(_h5ad(tmp_path), name="second", settings=settings)


def test_rows_without_a_drug_are_refused(tmp_path: Path, settings) -> None:
    obs = pd.DataFrame({"cell_line": ["A", "A", "B"], "drug": ["x", None, "x"]})
    with pytest.raises(DataError, match="1 rows have no drug in obs column 'drug'"):
        import_dataset(_h5ad(tmp_path, obs=obs), name="gaps", settings=settings)


@pytest.mark.parametrize(
    ("registry", "match"),
    [
        ({"evil": {"file": "/etc/passwd"}}, "outside the user data folder"),
        ({"evil": {"file": "../processed/tahoe.h5ad"}}, "outside the user data folder"),
        ({"evil": {"file": "sub/x.h5ad"}}, "outside the user data folder"),
        ({"evil": {"path": "/etc/passwd"}}, "not a registry of imported datasets"),
        (["a", "b"], "not a registry of imported datasets"),
    ],
)
def test_user_registry_entries_are_confined_to_the_user_folder(settings, registry, match) -> None:
    import json

    user = settings.data_dir / "user"
    user.mkdir(parents=True, exist_ok=True)
    (user / "datasets.json").write_text(json.dumps(registry))
    with pytest.raises(DataError, match=match):
        list_datasets(settings)


def test_a_folder_with_two_files_of_one_cell_line_is_refused(tmp_path: Path, settings) -> None:
    folder = tmp_path / "sigs"
    folder.mkdir()
    (folder / "a.C32.rda").write_bytes(signature_rda({"D1": ["G1", "G2", "G3"]}))
    (folder / "b.c-32.rda").write_bytes(signature_rda({"D2": ["G1", "G2", "G3"]}))
    with pytest.raises(DataError, match=r"a\.C32\.rda and b\.c-32\.rda both hold cell line"):
        import_dataset(folder, name="dupe", settings=settings)


def test_a_folder_import_reads_any_case_and_says_what_it_skipped(tmp_path: Path, settings) -> None:
    folder = tmp_path / "sigs"
    folder.mkdir()
    (folder / "x.L1.RDA").write_bytes(signature_rda({"D1": ["G1", "G2", "G3"], "D2": ["G3", "G2", "G1"]}))
    (folder / "x.L2.rda").write_bytes(signature_rda({"D1": ["G2", "G1", "G3"], "D2": ["G1", "G3", "G2"]}))
    (folder / ".x.L3.rda").write_bytes(b"hidden")
    (folder / "notes.txt").write_text("not a signature")
    import_dataset(folder, name="mixed", settings=settings)
    info = next(d for d in list_datasets(settings) if d.name == "mixed")
    assert "2 .rda files" in info.description
    assert ".x.L3.rda (hidden)" in info.description and "notes.txt" in info.description
    assert load_signatures("mixed", settings).cell_lines == ["L1", "L2"]


def test_a_write_failure_leaves_no_half_written_file(tmp_path: Path, settings, monkeypatch) -> None:
    import errno

    def full_disk(self, filename, *args, **kwargs):
        Path(filename).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    source = _h5ad(tmp_path)
    monkeypatch.setattr(ad.AnnData, "write_h5ad", full_disk)
    with pytest.raises(DataError, match=r"No space left on device.*needs about \d+ MB free"):
        import_dataset(source, name="full", settings=settings)
    user = settings.data_dir / "user"
    assert not list(user.glob("*full*")) and not list(user.glob(".*.tmp"))
    assert "full" not in {d.name for d in list_datasets(settings)}


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_pipes_and_devices_are_refused_before_reading(tmp_path: Path, settings, kind) -> None:
    path = tmp_path / f"{kind}.h5ad"
    if kind == "fifo":
        os.mkfifo(path)  # opening it for reading would block forever
    else:
        os.symlink("/dev/zero", path)
    with pytest.raises(DataError, match="not a regular file"):
        import_dataset(path, name="mine", settings=settings)


def test_a_broken_file_of_the_users_gets_the_users_fix_only(tmp_path: Path, settings) -> None:
    # issue 10, defect 11: re-fetching the project's data cannot repair a user's own .rda file
    folder = tmp_path / "sigs"
    folder.mkdir()
    (folder / "x.L1.rda").write_bytes(b"RDX3\n" + b"\x00" * 64)
    with pytest.raises(DataError) as info:
        import_dataset(folder, name="broken", settings=settings)
    message = str(info.value)
    assert "save your file again from R" in message and "data fetch" not in message
