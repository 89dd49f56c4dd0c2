"""Ranked lists -> AnnData of inverse-normal rank scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import norm

from perturb_core.data.signatures import rank_score, read_signature_file, signatures_to_anndata
from perturb_core.errors import DataError
from perturb_core.testing.rxdr import serialize_rda, signature_rda


def test_rank_score_is_inverse_normal_of_the_rank() -> None:
    s = rank_score(4)
    np.testing.assert_allclose(s, norm.isf([0.125, 0.375, 0.625, 0.875]), rtol=1e-6)
    assert s[0] > 0 > s[-1]
    np.testing.assert_allclose(s, -s[::-1], rtol=1e-6)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    a = tmp_path / "tahoe.line_a.rda"
    a.write_bytes(signature_rda({"Drug X": ["G1", "G2", "G3", "G4"], "Drug Y": ["G4", "ENSG0001", "G1"]}))
    b = tmp_path / "tahoe.line_b.rda"
    b.write_bytes(signature_rda({"Drug X": ["G2", "G1", "G1", "G5"]}))  # G1 twice: first rank kept
    return {"Line A": a, "Line B": b}


def test_anndata_layout(files: dict[str, Path]) -> None:
    ad = signatures_to_anndata(files, dataset="t", gene_symbols={"ENSG0001": "G9"}, workers=1)
    assert ad.shape == (3, 6)
    assert list(ad.obs["cell_line"]) == ["Line A", "Line A", "Line B"]
    assert list(ad.obs["drug_id"]) == ["drug-x", "drug-y", "drug-x"]
    assert "G9" in ad.var_names and ad.var.loc["G9", "gene_id"] == "ENSG0001"
    x = ad.to_df()
    np.testing.assert_allclose(x.loc["line-a|drug-x", ["G1", "G2", "G3", "G4"]], rank_score(4), rtol=1e-6)
    assert np.isnan(x.loc["line-a|drug-x", "G5"])  # not tested: missing, not zero
    np.testing.assert_allclose(x.loc["line-b|drug-x", ["G2", "G1", "G5"]], rank_score(3), rtol=1e-6)
    assert ad.layers["rank"][2, list(ad.var_names).index("G5")] == 3
    assert list(ad.obs["n_genes_tested"]) == [4, 3, 3]
    assert list(ad.obs["n_up_significant"]) == [2, 2, 2]


def test_min_fraction_drops_rare_genes(files: dict[str, Path]) -> None:
    ad = signatures_to_anndata(files, dataset="t", min_fraction=0.6, workers=1)
    assert set(ad.var_names) == {"G1", "G2", "G4"}


def test_duplicate_pairs_are_refused(tmp_path: Path) -> None:
    p = tmp_path / "x.rda"
    p.write_bytes(signature_rda({"Drug X": ["A", "B"], "drug-x": ["B", "A"]}))
    with pytest.raises(DataError, match="duplicate \\(cell line, drug\\)"):
        signatures_to_anndata({"L": p}, dataset="t", workers=1)


def test_wrong_layout_is_named(tmp_path: Path) -> None:
    p = tmp_path / "x.rda"
    p.write_bytes(serialize_rda({"sig": {"Drug X": {"up": ["A"]}}}))
    with pytest.raises(DataError, match="no 'up_full' ranked gene list"):
        read_signature_file(p)
