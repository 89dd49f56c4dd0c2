"""The dataset-level LGR index: built from a passed drug table and graph, kept in the dataset's memo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from perturb_core.config import Settings
from perturb_core.errors import ValidationError
from perturb_core.kg import KnowledgeGraph
from perturb_core.retrieval import LGRIndex, lgr_index
from perturb_core.testing.signatures import tiny_dataset, tiny_drugs, tiny_graph


def settings_in(tmp_path: Path, name: str = "data") -> Settings:
    return Settings(mirror=None, data_dir=tmp_path / name, cache_dir=tmp_path / "cache")


def test_index_from_a_passed_drug_table_and_graph(tmp_path: Path) -> None:
    ds, drugs, graph = tiny_dataset(), tiny_drugs(), tiny_graph()
    index = lgr_index(ds, drugs=drugs, graph=graph, settings=settings_in(tmp_path))  # no data on disk
    assert index.dataset == "tiny" and index.cell_lines == ("C1", "C2", "C3")
    assert index.drugs == ("Afatinib", "Binimetinib", "Mysterium", "Trametinib", "Tucidinostat")
    # Tucidinostat's table id differs from the dataset's: found by name; Mysterium is unknown
    assert index.drug_ids == ("afatinib", "binimetinib", "", "trametinib", "chidamide")
    assert list(index.fp_valid) == [True, True, False, True, True]
    assert not index.fingerprints[index.drug_index("Mysterium")].any()
    assert index.rows[2, index.drug_index("Tucidinostat")] == -1 and index.present.sum() == 14
    mech = index.mechanism.set_index("name")
    assert mech.at["Trametinib", "mechanism_targets"] == ("MAP2K1", "MAP2K2")  # CYP3A4 (ADME) dropped
    assert mech.at["Tucidinostat", "tags"] == ("HDAC inhibition",)
    assert mech.at["Mysterium", "tags"] == () and mech.at["Mysterium", "direction"] == "unclear"
    assert index.graph is graph and index.kg.mechanism_nodes[index.drug_index("Binimetinib")] == (
        "mechanism:mek-inhibitor"
    )
    x = np.asarray(ds.adata.X, dtype=np.float64)
    np.testing.assert_allclose(index.gene_sum, np.nansum(x, 0))
    np.testing.assert_array_equal(index.gene_count, (~np.isnan(x)).sum(0))


def test_the_index_is_kept_in_the_dataset_memo_per_drug_table_graph_and_folder(tmp_path: Path) -> None:
    ds, drugs, graph = tiny_dataset(), tiny_drugs(), tiny_graph()
    settings = settings_in(tmp_path)
    index = lgr_index(ds, drugs=drugs, graph=graph, settings=settings)
    assert lgr_index(ds, drugs=drugs, graph=graph, settings=settings) is index
    assert lgr_index(ds, drugs=drugs, graph=graph, settings=settings.with_(cache_dir=tmp_path / "x")) is index
    others = [
        lgr_index(ds, drugs=tiny_drugs(), graph=graph, settings=settings),  # another drug table object
        lgr_index(ds, drugs=drugs, graph=tiny_graph(), settings=settings),  # another graph object
        lgr_index(ds, drugs=drugs, graph=None, settings=settings),  # the graph from the data folder
        lgr_index(ds, drugs=drugs, graph=graph, settings=settings_in(tmp_path, "other")),  # another folder
    ]
    assert all(o is not index for o in others) and len({id(o) for o in others}) == 4
    assert (
        lgr_index(tiny_dataset(), drugs=drugs, graph=graph, settings=settings) is not index
    )  # another dataset
    ds.memo.clear()
    assert lgr_index(ds, drugs=drugs, graph=graph, settings=settings) is not index


def test_the_graph_is_loaded_from_the_settings_on_first_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import perturb_core.kg

    calls: list[Settings | None] = []
    graph = tiny_graph()

    def load_graph(settings: Settings | None = None) -> KnowledgeGraph:
        calls.append(settings)
        return graph

    monkeypatch.setattr(perturb_core.kg, "load_graph", load_graph)
    settings = settings_in(tmp_path)
    index = lgr_index(tiny_dataset(), drugs=tiny_drugs(), settings=settings)
    assert index.graph is None and calls == []
    evidence = index.kg
    assert calls == [settings] and index.kg is evidence
    assert evidence.target_genes == lgr_index(tiny_dataset(), drugs=tiny_drugs(), graph=graph).kg.target_genes


def test_lgr_index_takes_its_options_by_keyword_and_checks_the_dataset() -> None:
    with pytest.raises(TypeError):
        lgr_index(tiny_dataset(), tiny_drugs())  # type: ignore[misc]
    with pytest.raises(ValidationError, match="ds must be a SignatureDataset or a dataset name; got int"):
        lgr_index(42, drugs=tiny_drugs(), graph=tiny_graph())  # type: ignore[arg-type]
    assert isinstance(lgr_index(tiny_dataset(), drugs=tiny_drugs(), graph=tiny_graph()), LGRIndex)
