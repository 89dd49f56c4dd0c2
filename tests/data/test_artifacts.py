"""Damaged or foreign built artifacts: every loader refuses them with the file, the problem and the fix.

Each case copies the real processed folder as symlinks into a temporary data folder, replaces one
artifact with hostile content and calls the loader that reads it (issue 10, defect 10).
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from perturb_core.cli import main
from perturb_core.config import Settings
from perturb_core.data.artifacts import check_signatures, check_table
from perturb_core.data.registry import label_dataset_names, load_drugs, load_labels, load_signatures
from perturb_core.errors import DataError
from perturb_core.kg import load_graph


def _mirror(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True)
    for item in src.iterdir():
        if item.is_dir():
            _mirror(item, dst / item.name)
        else:
            os.symlink(item, dst / item.name)


@pytest.fixture
def damaged(real_data: Settings, tmp_path: Path) -> Callable[[str, object], Settings]:
    """``damage(relative path, content)``: a data folder whose one artifact holds ``content``."""
    settings = real_data.with_(data_dir=tmp_path / "data")
    _mirror(real_data.processed_dir, settings.processed_dir)

    def damage(rel: str, content: object) -> Settings:
        path = settings.processed_dir / rel
        path.unlink()
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, pd.DataFrame):
            content.to_parquet(path)
        elif isinstance(content, ad.AnnData):
            content.write_h5ad(path)
        elif isinstance(content, Path):
            os.symlink(content, path)
        else:
            path.write_text(str(content))
        return settings

    return damage


def _npz(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _foreign_h5ad() -> ad.AnnData:
    obs = pd.DataFrame({"cell_line": ["A"], "drug": ["x"]}, index=["r0"])
    return ad.AnnData(X=np.zeros((1, 2), dtype=np.float32), obs=obs)


GARBAGE = b"\x00not a file of this kind\xff" * 20
EMPTY_EDGES = pd.DataFrame(
    {
        "src": pd.Series([], dtype=object),
        "dst": pd.Series([], dtype=object),
        "relation": pd.Series([], dtype=object),
    }
)


def _graph(s: Settings) -> object:
    return load_graph(s)


def _k562(s: Settings) -> object:
    return load_labels("perturbqa-k562", "de", s)


CASES = [
    ("kg_edges.parquet", GARBAGE, _graph, "unreadable"),
    ("kg_edges.parquet", EMPTY_EDGES, _graph, "is empty"),
    ("kg_edges.parquet", pd.DataFrame({"a": [1]}), _graph, "lacks the column"),
    ("kg_edges.parquet", pd.DataFrame({"src": ["x"], "dst": ["y"], "relation": ["loves"]}), _graph, "loves"),
    (
        "kg_edges.parquet",
        pd.DataFrame({"src": ["nope"], "dst": ["nada"], "relation": ["binds"]}),
        _graph,
        "do not fit together",
    ),
    (
        "kg_nodes.parquet",
        pd.DataFrame({"id": [1, 2], "name": ["a", "b"], "kind": ["g", "g"]}),
        _graph,
        "expected text",
    ),
    ("labels/perturbqa-k562.de.parquet", GARBAGE, _k562, "unreadable"),
    ("labels/perturbqa-k562.de.parquet", pd.DataFrame({"pert": ["a"]}), _k562, "lacks the column"),
    (
        "labels/perturbqa-k562.de.parquet",
        pd.DataFrame({"pert": ["a"], "gene": ["g"], "label": [1], "split": ["dev"]}).astype(
            {"pert": "category", "gene": "category", "split": "category"}
        ),
        _k562,
        "unexpected value",
    ),
    ("labels/tahoe.parquet", GARBAGE, label_dataset_names, "unreadable"),
    ("labels/tahoe.parquet", pd.DataFrame({"cell_line": ["C32"]}), label_dataset_names, "lacks the column"),
    ("drugs.parquet", pd.DataFrame({"name": ["x"]}), load_drugs, "lacks the column"),
    ("drug_fingerprints.npz", GARBAGE, load_drugs, "unreadable"),
    ("drug_fingerprints.npz", _npz(drug_id=np.array([{"a": 1}], dtype=object)), load_drugs, "unreadable"),
    (
        "drug_fingerprints.npz",
        _npz(drug_id=np.array(["a"]), bits=np.zeros((1, 256), np.uint8), valid=np.ones(1, bool)),
        load_drugs,
        "covers 1 drugs",
    ),
    ("sciplex.h5ad", GARBAGE, lambda s: load_signatures("sciplex", s), "unreadable"),
    ("sciplex.h5ad", _foreign_h5ad(), lambda s: load_signatures("sciplex", s), "provenance stamp"),
]


@pytest.mark.parametrize(("rel", "content", "load", "match"), CASES, ids=[f"{c[0]}-{c[3]}" for c in CASES])
def test_damaged_artifacts_are_refused_with_the_rebuild_command(damaged, rel, content, load, match) -> None:
    settings = damaged(rel, content)
    with pytest.raises(DataError, match=match) as info:
        load(settings)
    assert "data build --force" in str(info.value)
    assert rel.split("/")[-1] in str(info.value)


def test_another_datasets_file_in_place_of_sciplex_is_refused(damaged, real_data: Settings) -> None:
    settings = damaged("sciplex.h5ad", real_data.processed_dir / "openproblems.h5ad")
    with pytest.raises(DataError, match="holds the dataset 'openproblems', not 'sciplex'"):
        load_signatures("sciplex", settings)


@pytest.mark.parametrize("content", ["[1, 2]", "{not json"])
def test_corrupt_dropped_edge_summary_ends_data_info_in_one_line(
    damaged, monkeypatch, capsys, content
) -> None:
    settings = damaged("kg_dropped.json", content)
    monkeypatch.setenv("PERTURB_CORE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setattr("perturb_core.data.registry.SIGNATURE_DATASETS", {})  # skip the large files
    assert main(["data", "info", "--json"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "kg_dropped.json" in err and "Traceback" not in err


def test_cli_names_the_damaged_label_table(damaged, monkeypatch, capsys) -> None:
    settings = damaged("labels/tahoe.parquet", GARBAGE)
    monkeypatch.setenv("PERTURB_CORE_DATA_DIR", str(settings.data_dir))
    assert main(["core", "evaluate", "--dataset", "perturbqa-k562", "--methods", "gene_frequency"]) == 2
    err = capsys.readouterr().err
    assert "tahoe.parquet" in err and "data build --force" in err


def test_checks_accept_what_the_build_writes(real_data: Settings) -> None:
    ds = load_signatures("sciplex", real_data)
    assert check_signatures(ds.adata, "sciplex.h5ad", dataset="sciplex", fix="-") is ds.adata
    table = load_labels("perturbqa-k562", "dir", real_data).table
    assert check_table(table, "x", {"pert": "category", "label": "int"}) is table
