"""Tests of perturb_core.chem: parsing, fingerprints, similarity and depictions."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose
from rdkit import Chem, DataStructs, rdBase
from rdkit.Chem import rdFingerprintGenerator, rdMolDescriptors

from perturb_core.chem import (
    canonical_smiles,
    cosine_similarity_matrix,
    depict_grid_svg,
    depict_svg,
    morgan_fingerprints,
    rdkit_quiet,
    tanimoto_matrix,
    to_mol,
)
from perturb_core.errors import ValidationError

ASPIRIN = "CC(=O)Oc1ccccc1C(=O)O"
ERLOTINIB = "COCCOc1cc2ncnc(Nc3cccc(C#C)c3)c2cc1OCCOC"
MOLECULES = [
    ASPIRIN,
    ERLOTINIB,
    "Cn1cnc2c1c(=O)n(C)c(=O)n2C",  # caffeine
    "CC(C)Cc1ccc(C(C)C(=O)O)cc1",  # ibuprofen
    "O=C(O)c1ccccc1O",  # salicylic acid
]


def test_to_mol_known_smiles() -> None:
    aspirin = to_mol(ASPIRIN)
    assert aspirin is not None and aspirin.GetNumHeavyAtoms() == 13
    erlotinib = to_mol(ERLOTINIB)
    assert erlotinib is not None
    assert rdMolDescriptors.CalcMolFormula(erlotinib) == "C22H23N3O4"


@pytest.mark.parametrize("smiles", ["", "   ", "not a smiles", "C1CC", "c1cccc1", "CC(C"])
def test_to_mol_invalid_gives_none(smiles: str, capfd: pytest.CaptureFixture[str]) -> None:
    assert to_mol(smiles) is None
    assert canonical_smiles(smiles) is None
    assert depict_svg(smiles) is None
    assert "SMILES Parse Error" not in capfd.readouterr().err


@pytest.mark.parametrize("value", [None, 1.5, float("nan"), b"CCO", ["CCO"]])
def test_to_mol_non_str_raises_type_error(value: object) -> None:
    with pytest.raises(TypeError, match="smiles must be a str"):
        to_mol(value)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        canonical_smiles(value)  # type: ignore[arg-type]


def test_canonical_smiles_and_largest_fragment() -> None:
    assert canonical_smiles("OC(=O)c1ccccc1OC(C)=O") == canonical_smiles(ASPIRIN)
    salt = ERLOTINIB + ".Cl"
    assert canonical_smiles(salt) != canonical_smiles(ERLOTINIB)
    assert canonical_smiles(salt, largest_fragment=True) == canonical_smiles(ERLOTINIB)
    assert canonical_smiles("[Na+].CC(=O)Oc1ccccc1C(=O)[O-]", largest_fragment=True) == (
        "CC(=O)Oc1ccccc1C(=O)[O-]"
    )


def test_rdkit_quiet_restores_log_state() -> None:
    before = rdBase.LogStatus()
    with rdkit_quiet():
        assert "enabled" not in rdBase.LogStatus()
    assert rdBase.LogStatus() == before


def test_morgan_fingerprints_shape_valid_and_rdkit_bits() -> None:
    smiles = [ASPIRIN, None, "not a smiles", ERLOTINIB, float("nan"), ASPIRIN]
    fps, valid = morgan_fingerprints(smiles, radius=2, n_bits=1024)  # type: ignore[arg-type]
    assert fps.shape == (6, 1024) and fps.dtype == np.bool_
    assert valid.tolist() == [True, False, False, True, False, True]
    assert not fps[~valid].any()
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=1024)
    expected = generator.GetFingerprintAsNumPy(Chem.MolFromSmiles(ERLOTINIB)).astype(bool)
    np.testing.assert_array_equal(fps[3], expected)
    np.testing.assert_array_equal(fps[0], fps[5])


def test_morgan_fingerprints_parent_of_salt() -> None:
    fps, valid = morgan_fingerprints([ERLOTINIB, ERLOTINIB + ".Cl"])
    assert valid.all()
    np.testing.assert_array_equal(fps[0], fps[1])
    fps_raw, _ = morgan_fingerprints([ERLOTINIB, ERLOTINIB + ".Cl"], largest_fragment=False)
    assert (fps_raw[0] != fps_raw[1]).any()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (
            {"radius": -1},
            ValidationError,
            r"radius must be a non-negative integer \(2 = ECFP4-like\); got -1",
        ),
        ({"n_bits": 0}, ValidationError, "n_bits must be a positive integer, e.g. 2048; got 0"),
        ({"smiles": "CCO"}, TypeError, "not one string"),
        ({"smiles": ["CCO", 3]}, TypeError, "smiles must be a str"),
    ],
)
def test_morgan_fingerprints_bad_inputs(kwargs, error, match) -> None:
    args = {"smiles": [ASPIRIN], **kwargs}
    with pytest.raises(error, match=match):
        morgan_fingerprints(args.pop("smiles"), **args)


def test_tanimoto_matches_rdkit_bulk() -> None:
    fps, valid = morgan_fingerprints(MOLECULES)
    assert valid.all()
    sim = tanimoto_matrix(fps)
    assert sim.shape == (5, 5) and sim.dtype == np.float32
    assert_allclose(np.diag(sim), 1.0)
    assert_allclose(sim, sim.T)
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    bitvects = [generator.GetFingerprint(Chem.MolFromSmiles(s)) for s in MOLECULES]
    for i, fp in enumerate(bitvects):
        assert_allclose(sim[i], DataStructs.BulkTanimotoSimilarity(fp, bitvects), rtol=1e-6)
        assert_allclose(
            cosine_similarity_matrix(fps)[i], DataStructs.BulkCosineSimilarity(fp, bitvects), rtol=1e-6
        )


def test_similarity_two_sets_and_empty_rows() -> None:
    a = np.array([[1, 1, 0, 0], [0, 0, 0, 0]], dtype=bool)
    b = np.array([[1, 0, 1, 0], [0, 0, 0, 0], [1, 1, 0, 0]], dtype=bool)
    # |a0 ∧ b0| = 1, |a0 ∨ b0| = 3; cos = 1 / √(2·2)
    assert_allclose(tanimoto_matrix(a, b), [[1 / 3, 0, 1], [0, 0, 0]])
    assert_allclose(cosine_similarity_matrix(a, b), [[0.5, 0, 1], [0, 0, 0]])
    # 0/1 integers are accepted as binary fingerprints
    assert_allclose(tanimoto_matrix(a.astype(int), b.astype(np.uint8)), tanimoto_matrix(a, b))


@pytest.mark.parametrize(
    ("func", "a", "b", "match"),
    [
        (tanimoto_matrix, np.zeros((2, 4), bool), np.zeros((2, 5), bool), r"\(2, 4\).*\(2, 5\)"),
        (tanimoto_matrix, np.zeros(4, bool), None, "2-D"),
        (tanimoto_matrix, np.full((2, 4), 0.5), None, "binary fingerprint"),
        (cosine_similarity_matrix, np.zeros((2, 4)), np.zeros((1, 3)), "same number of bits"),
        (cosine_similarity_matrix, np.array([["a"]]), None, "boolean or numeric"),
    ],
)
def test_similarity_bad_inputs(func, a, b, match) -> None:
    with pytest.raises(ValidationError, match=match):
        func(a, b)


def test_depict_svg() -> None:
    svg = depict_svg(ERLOTINIB, size=(300, 220), legend="erlotinib")
    assert svg is not None and svg.startswith("<svg")
    assert "</svg>" in svg and "300" in svg
    with pytest.raises(TypeError):
        depict_svg(None)  # type: ignore[arg-type]


def test_depict_grid_svg() -> None:
    svg = depict_grid_svg(
        [ASPIRIN, "not a smiles", ERLOTINIB], ["aspirin", "bad", "erlotinib"], mols_per_row=2
    )
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    with pytest.raises(ValidationError, match="legends has 1 entries but smiles_list has 2"):
        depict_grid_svg([ASPIRIN, ERLOTINIB], ["aspirin"])
    with pytest.raises(ValidationError, match="smiles_list is empty"):
        depict_grid_svg([])


# Hostile SMILES (issue 10, defect 16): each runs in a subprocess, so an RDKit segfault fails
# the test instead of killing pytest.
_HOSTILE_SMILES = {
    "20k-carbon chain (segfaulted RDKit)": "'C' * 20000",
    "just over the length cap": "'C' * 2001",
    "1,001 atoms within the length cap": "'[Na+].' * 143 + 'C' * 1000",
    "long ring-bond soup": "'C1' * 10000",
}


@pytest.mark.parametrize("expr", list(_HOSTILE_SMILES.values()), ids=list(_HOSTILE_SMILES))
@pytest.mark.parametrize("call", ["to_mol", "canonical_smiles", "depict_svg"])
def test_hostile_smiles_give_none_without_crashing(call: str, expr: str) -> None:
    import subprocess
    import sys

    code = f"from perturb_core import chem\nprint(repr(chem.{call}({expr})))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{call}({expr}) crashed (exit {done.returncode}): {done.stderr[-500:]}"
    assert done.stdout.strip() == "None"


def test_smiles_within_the_caps_still_parse() -> None:
    from perturb_core.chem import MAX_ATOMS, MAX_SMILES_CHARS

    assert (MAX_SMILES_CHARS, MAX_ATOMS) == (2000, 1000)
    mol = to_mol("C" * MAX_ATOMS)
    assert mol is not None and mol.GetNumAtoms() == MAX_ATOMS
    assert to_mol("C" * (MAX_ATOMS + 1)) is None


# --------------------------------------------------------------------------- salt forms and parents
ALMONERTINIB = "C=CC(=O)Nc1cc(Nc2nccc(-c3cn(C4CC4)c4ccccc34)n2)c(OC)cc1N(C)CCN(C)C"
TOFACITINIB = "CC1CCN(C(=O)CC#N)CC1N(C)c1ncnc2[nH]ccc12"
CITRIC_ACID = "O=C(O)CC(O)(CC(=O)O)C(=O)O"


def test_parent_smiles_strips_counter_ions_and_neutralises() -> None:
    from perturb_core.chem import parent_smiles

    assert parent_smiles(ALMONERTINIB + ".Cl") == canonical_smiles(ALMONERTINIB)
    assert parent_smiles(ALMONERTINIB + ".CS(=O)(=O)O") == canonical_smiles(ALMONERTINIB)
    assert parent_smiles(TOFACITINIB + "." + CITRIC_ACID) == canonical_smiles(TOFACITINIB)
    assert parent_smiles("CC(=O)Oc1ccccc1C(=O)[O-].[Na+]") == canonical_smiles(ASPIRIN)  # uncharged
    assert parent_smiles("not a smiles") is None


def test_parent_key_is_shared_by_salt_forms_only() -> None:
    from perturb_core.chem import parent_key

    base = parent_key(ALMONERTINIB)
    assert base is not None and len(base) == 27 and base.count("-") == 2
    assert parent_key(ALMONERTINIB + ".Cl") == parent_key(ALMONERTINIB + ".CS(=O)(=O)O") == base
    assert parent_key(TOFACITINIB + "." + CITRIC_ACID) == parent_key(TOFACITINIB) != base
    # the InChIKey of erlotinib as published by PubChem (CID 176870)
    assert parent_key(ERLOTINIB + ".Cl") == "AAKJLRGGTJKAMG-UHFFFAOYSA-N"
    assert parent_key(None) is None and parent_key(float("nan")) is None and parent_key("") is None
    assert parent_key("C[C@H](N)O") != parent_key("C[C@@H](N)O")  # stereo-isomers stay apart


def test_parent_groups_and_collapse() -> None:
    from perturb_core.chem import collapse_salt_forms, parent_groups

    smiles = {
        "Almonertinib mesylate": ALMONERTINIB + ".CS(=O)(=O)O",
        "Almonertinib hydrochloride": ALMONERTINIB + ".Cl",
        "Tofacitinib": TOFACITINIB,
        "Tofacitinib citrate": TOFACITINIB + "." + CITRIC_ACID,
        "Erlotinib": ERLOTINIB,
        "Unknown": None,
    }
    groups = parent_groups(smiles)
    assert list(groups.values()) == [
        ("Almonertinib hydrochloride", "Almonertinib mesylate"),
        ("Tofacitinib", "Tofacitinib citrate"),
    ]
    assert len(parent_groups(smiles, min_size=1)) == 3
    ranked = ["Almonertinib mesylate", "Erlotinib", "Unknown", "Almonertinib hydrochloride", "Not in map"]
    assert collapse_salt_forms(ranked, smiles) == [
        ("Almonertinib mesylate", ("Almonertinib hydrochloride",)),
        ("Erlotinib", ()),
        ("Unknown", ()),
        ("Not in map", ()),
    ]


def test_depictions_draw_the_parent() -> None:
    salt = depict_svg(TOFACITINIB + "." + CITRIC_ACID)
    assert salt == depict_svg(TOFACITINIB)
    assert depict_svg(TOFACITINIB + "." + CITRIC_ACID, parent=False) != salt
    grid = depict_grid_svg([ALMONERTINIB + ".Cl", ALMONERTINIB + ".CS(=O)(=O)O"], ["a", "b"])
    assert grid.count("<path") > 0
    assert depict_grid_svg([ALMONERTINIB + ".Cl"], ["a"]) == depict_grid_svg([ALMONERTINIB], ["a"])


@pytest.mark.realdata
def test_tahoe_salt_form_groups(real_data) -> None:
    import perturb_core as pc
    from perturb_core.chem import parent_groups

    table = pc.load_drugs().table
    names = set(pc.load_signatures("tahoe").drugs())
    sub = table[table["name"].isin(names)]
    groups = set(parent_groups(dict(zip(sub["name"], sub["smiles"], strict=True))).values())
    assert ("Almonertinib hydrochloride", "Almonertinib mesylate") in groups
    assert ("Tofacitinib", "Tofacitinib citrate") in groups
    assert len(groups) == 6  # listed in docs/compare.md
