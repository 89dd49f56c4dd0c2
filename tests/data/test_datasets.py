"""Loaded real datasets: counts match the sources; lookups are forgiving; errors are clear."""

from __future__ import annotations

import numpy as np
import pytest

from perturb_core.data.registry import list_datasets, load_drugs, load_labels, load_signatures
from perturb_core.errors import UnknownNameError, ValidationError

pytestmark = pytest.mark.realdata


def test_tahoe_counts(real_data) -> None:
    ds = load_signatures("tahoe", real_data)
    assert len(ds.cell_lines) == 40
    assert len(ds.drugs()) == 110
    assert {"C32", "LoVo", "NCI-H23"} <= set(ds.cell_lines)
    sizes = ds.adata.obs.groupby("cell_line", observed=True).size()
    assert sizes["NCI-H661"] == 41 and sizes["SW 1088"] == 45 and sizes["SW 1271"] == 76
    assert sizes.max() <= 110
    x = ds.adata.X
    assert np.isnan(x).any() and np.isfinite(x[np.isfinite(x)]).all()
    assert ds.adata.uns["provenance"]["sha256"]


def test_other_signature_datasets(real_data) -> None:
    sp = load_signatures("sciplex", real_data)
    assert sp.cell_lines == ["A549", "K562", "MCF7"]
    assert not any(g.startswith("ENSG") for g in sp.genes[:50])  # Ensembl ids mapped to symbols
    op = load_signatures("openproblems", real_data)
    assert op.cell_lines == ["B cells", "Myeloid cells", "NK cells", "T cells"]
    assert len(op.drugs()) == 135 and op.adata.n_vars == 6349


@pytest.mark.parametrize(
    ("query", "expected"),
    [("nci h23", "NCI-H23"), ("NCI_H23", "NCI-H23"), ("lovo", "LoVo"), ("hepg2c3a", None)],
)
def test_cell_line_lookup_is_insensitive(real_data, query, expected) -> None:
    ds = load_signatures("tahoe", real_data)
    if expected is None:
        with pytest.raises(UnknownNameError, match="closest known"):
            ds.resolve_cell_line(query)
    else:
        assert ds.resolve_cell_line(query) == expected


def test_drug_lookup_and_errors(real_data) -> None:
    ds = load_signatures("tahoe", real_data)
    assert ds.resolve_drug("almonertinib (hydrochloride)") == "Almonertinib hydrochloride"
    with pytest.raises(
        UnknownNameError, match="unknown drug in dataset 'tahoe': 'Afatinibb'; closest known: Afatinib"
    ):
        ds.resolve_drug("Afatinibb")
    v = ds.delta("c32", "afatinib")
    assert v.shape == (ds.adata.n_vars,)


def test_perturbqa_counts(real_data) -> None:
    de = load_labels("perturbqa-k562", "de", real_data).table
    assert (de["split"] == "train").sum() == 134_467
    assert (de["split"] == "test").sum() == 23_212
    train_p = set(de.loc[de["split"] == "train", "pert"])
    test_p = set(de.loc[de["split"] == "test", "pert"])
    assert not train_p & test_p  # disjoint perturbations
    d = load_labels("PerturbQA K562", "dir", real_data)
    assert d.perturbation_kind == "knockdown" and set(d.table["label"].unique()) == {0, 1}
    with pytest.raises(ValidationError, match="unknown task"):
        load_labels("perturbqa-k562", "up")


def test_tahoe_drug_labels(real_data) -> None:
    ls = load_labels("tahoe-c32", "de", real_data)
    assert ls.cell_line == "C32" and ls.perturbation_kind == "drug"
    t = ls.table
    assert 0.05 < t["label"].mean() < 0.5
    assert not set(t.loc[t["split"] == "train", "pert"]) & set(t.loc[t["split"] == "test", "pert"])
    assert len([d for d in list_datasets(real_data) if d.name.startswith("tahoe-")]) == 40


def test_drug_table(real_data) -> None:
    drugs = load_drugs(real_data)
    t = drugs.table
    tahoe = t[t["datasets"].str.contains("tahoe")]
    assert len(tahoe) == 110
    with_smiles = tahoe["smiles"].notna().to_numpy()
    rows = drugs.rows(list(tahoe.index))
    assert drugs.valid[rows][with_smiles].all()  # every Tahoe drug with SMILES has a fingerprint
    assert drugs.fingerprints[rows][with_smiles].any(axis=1).all()
    assert "EGFR" in t.loc["afatinib", "targets"]
    assert t.loc[drugs.resolve("Erlotinib"), "moa_fine"] if "erlotinib" in t.index else True
    unmatched = t[t["source"] == "unmatched"]
    assert len(unmatched) < 30  # listed by `data info`, not dropped


def test_salt_forms_are_separate_drugs_and_a_bare_name_is_ambiguous(real_data) -> None:
    ds = load_signatures("tahoe", real_data)
    assert ds.resolve_drug("Tofacitinib") == "Tofacitinib"  # exact name wins over the citrate
    assert ds.resolve_drug("tofacitinib citrate") == "Tofacitinib citrate"
    with pytest.raises(
        UnknownNameError, match="ambiguous .* matches Almonertinib hydrochloride, Almonertinib mesylate"
    ):
        ds.resolve_drug("Almonertinib")
    labels = load_labels("tahoe-c32", "de", real_data)
    with pytest.raises(UnknownNameError, match="ambiguous"):
        labels.resolve_perturbation("almonertinib")


def test_pair_codes_accept_any_spelling(real_data) -> None:
    labels = load_labels("perturbqa-k562", "de", real_data)
    pc, gc = labels.pair_codes(["aars2", "AARS2"], ["mt-nd5", "MT-ND5"])
    assert pc[0] == pc[1] and gc[0] == gc[1] >= 0
    with pytest.raises(UnknownNameError, match="closest known"):
        labels.pair_codes(["NOTAGENE1"], ["MT-ND5"])
