"""Pseudobulk deltas: planted effects recovered, batch effects removed, same numbers on every scheduler."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose

from perturb_core.pseudobulk import PSEUDOBULK_UNITS, pseudobulk
from perturb_core.testing.cells import SyntheticCells, simulate_cells, write_h5ad

from .conftest import COLUMNS


def _truth_rows(cells: SyntheticCells, obs) -> np.ndarray:
    t = cells.truth
    return np.stack(
        [t.loc[(c, d)].to_numpy() for c, d in zip(obs["cell_line"], obs["compound"], strict=True)]
    )


def _expressed(cells: SyntheticCells) -> np.ndarray:
    """Genes with at least 2 expected counts per cell (enough counts for a stable pseudobulk)."""
    return cells.base * 2_000 >= 2.0


def test_recovers_planted_deltas_per_condition(cells: SyntheticCells, files: dict[str, Path]) -> None:
    res = pseudobulk([files["h5ad"]], **COLUMNS, chunk_cells=1_000)
    a = res.adata
    assert a.n_obs == 12 and a.uns["units"] == PSEUDOBULK_UNITS
    truth, ok = _truth_rows(cells, a.obs), _expressed(cells)
    assert ok.sum() > 100
    for i in range(a.n_obs):
        x, t = a.X[i], truth[i]
        keep = ok & ~np.isnan(x)
        assert np.corrcoef(x[keep], t[keep])[0, 1] >= 0.95, a.obs_names[i]
    assert set(a.obs["n_batches"]) == {1}  # Tahoe's layout: a drug is on one plate
    prov = a.uns["provenance"]
    assert prov["inputs"]["name"][0] == "cells.h5ad" and len(prov["inputs"]["sha256"][0]) == 64
    assert prov["parameters"]["control"] == "DMSO_TF" and prov["n_cells"] == 8_000


def test_batch_effect_is_removed_by_control_matching(
    cells: SyntheticCells, files: dict[str, Path], tmp_path: Path
) -> None:
    """Residuals do not depend on the plate effect (slope ~ 0); with controls pooled over plates they do (~ 1).

    Each drug is on one plate (Tahoe's layout), so plate and drug are confounded unless controls are
    matched per plate. (The residual's overall mean is not 0: total-count normalisation shifts every
    gene of a condition by the log of its library change, as in any library-size normalisation.)
    """
    matched = pseudobulk([files["h5ad"]], **COLUMNS).adata
    truth, ok = _truth_rows(cells, matched.obs), _expressed(cells)
    drugs = list(cells.obs["drug"].cat.categories)
    plate_of = {d: drugs.index(d) % 3 for d in drugs if d != "DMSO_TF"}
    effect = np.stack(
        [cells.batch_effect[plate_of[d]] - cells.batch_effect.mean(0) for d in matched.obs["compound"]]
    )

    def slope(adata) -> float:
        r = adata.X - truth
        r = r - np.nanmean(r[:, ok], axis=1, keepdims=True)  # per-condition shift (library composition)
        e = effect[:, ok].ravel()
        return float(np.polyfit(e, r[:, ok].ravel(), 1)[0])

    one_batch = replace(cells, obs=cells.obs.assign(pool="all"))
    path = write_h5ad(one_batch, tmp_path / "pooled.h5ad", chunk_cells=8_000)
    pooled = pseudobulk([path], **{**COLUMNS, "batch_col": "pool"}).adata
    assert abs(slope(matched)) < 0.05
    assert slope(pooled) > 0.7


@pytest.mark.parametrize("processes", [False, True])
def test_identical_across_schedulers_chunks_and_formats(files: dict[str, Path], processes: bool) -> None:
    ref = pseudobulk([files["h5ad"]], **COLUMNS, chunk_cells=8_000).adata
    seen: list[tuple[int, int]] = []
    runs = {
        "chunk 700": pseudobulk([files["h5ad"]], **COLUMNS, chunk_cells=700).adata,
        "local cluster": pseudobulk(
            [files["h5ad"]], **COLUMNS, chunk_cells=1_000, scheduler="local", local_processes=processes,
            progress=lambda done, total: seen.append((done, total)),
        ).adata,
    }  # fmt: skip
    if not processes:
        runs["zarr"] = pseudobulk([files["zarr"]], **COLUMNS, chunk_cells=1_500).adata
        runs["dense layer"] = pseudobulk(
            [files["dense_layer"]], **COLUMNS, layer="counts", chunk_cells=999
        ).adata
    for name, a in runs.items():
        assert list(a.obs_names) == list(ref.obs_names), name
        assert_allclose(a.X, ref.X, atol=1e-6, rtol=0, equal_nan=True, err_msg=name)
    assert seen and seen[-1][0] == seen[-1][1]  # distributed's progress hook still reports


def test_two_files_are_one_dataset(cells: SyntheticCells, tmp_path: Path) -> None:
    a = write_h5ad(cells, tmp_path / "a.h5ad", chunk_cells=8_000)
    b = write_h5ad(cells, tmp_path / "b.h5ad", chunk_cells=8_000)
    one = pseudobulk([a], **COLUMNS).adata
    two = pseudobulk([a, b], **COLUMNS).adata
    both = ~np.isnan(one.X)  # twice the counts: fewer genes under min_counts, same normalised profiles
    assert (~np.isnan(two.X))[both].all()
    assert_allclose(two.X[both], one.X[both], atol=1e-6)
    assert (two.obs["n_cells"].to_numpy() == 2 * one.obs["n_cells"].to_numpy()).all()


def test_doses_give_one_signature_per_drug_and_dose(tmp_path: Path) -> None:
    c = simulate_cells(4_000, 200, n_plates=2, n_cell_lines=2, n_drugs=2, doses=(0.1, 1.0), seed=5)
    a = pseudobulk([write_h5ad(c, tmp_path / "d.h5ad")], **COLUMNS, dose_col="dose").adata
    assert a.n_obs == 8 and set(a.obs["dose"]) == {"0.1", "1.0"}
    assert "drug1 (1.0)" in set(a.obs["drug"])
    low = a.X[(a.obs["compound"] == "drug1").to_numpy() & (a.obs["dose"] == "0.1").to_numpy()]
    high = a.X[(a.obs["compound"] == "drug1").to_numpy() & (a.obs["dose"] == "1.0").to_numpy()]
    assert np.nanmean(np.abs(low)) < np.nanmean(np.abs(high))  # planted effect scales with dose


def test_de_calls_find_planted_genes_and_spare_null_ones(
    cells: SyntheticCells, files: dict[str, Path]
) -> None:
    a = pseudobulk([files["h5ad"]], **COLUMNS, de=True, chunk_cells=1_000).adata
    b = pseudobulk([files["h5ad"]], **COLUMNS, de=True, chunk_cells=8_000).adata
    assert (a.layers["de"] == b.layers["de"]).all()
    assert_allclose(a.layers["qvalue"], b.layers["qvalue"], atol=1e-6, equal_nan=True)
    truth, ok = _truth_rows(cells, a.obs), cells.base * 2_000 >= 0.5
    de = a.layers["de"]
    planted, null = (np.abs(truth) >= 0.7) & ok, (truth == 0) & ok
    assert (de[planted] != 0).mean() > 0.8  # power on clear effects
    assert (de[null] != 0).mean() < 0.01  # false calls on genes without a planted effect
    called = planted & (de != 0)
    assert (np.sign(de[called]) == np.sign(truth[called])).all()
    assert (a.obs["n_up_significant"].to_numpy() == (de > 0).sum(axis=1)).all()
    assert "Welch" in a.uns["de_definition"]


def test_a_gene_subset_gives_the_same_deltas_for_those_genes(files: dict[str, Path]) -> None:
    full = pseudobulk([files["h5ad"]], **COLUMNS, de=True).adata
    pick = list(full.var_names[[5, 0, 42, 17]])
    sub = pseudobulk([files["h5ad"]], **COLUMNS, de=True, genes=[g.lower() for g in pick]).adata
    assert list(sub.var_names) == pick  # in the order given, any case
    assert_allclose(sub.X, full[:, pick].X, atol=1e-6, equal_nan=True)  # libraries still count every gene
    assert (sub.layers["de"] == full[:, pick].layers["de"]).all()
