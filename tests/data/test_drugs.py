"""Drug-name normalisation and the drug table join."""

from __future__ import annotations

import pandas as pd
import pytest

from perturb_core.data.drugs import build_drug_table, split_targets
from perturb_core.data.names import drug_keys, slug


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Almonertinib hydrochloride", "Almonertinib (hydrochloride)"),
        ("Erlotinib HCl", "erlotinib"),
        ("ABT-199 (GDC-0199)", "GDC-0199"),
        ("Imatinib mesylate", "IMATINIB"),
    ],
)
def test_equivalent_names_share_a_key(a: str, b: str) -> None:
    assert set(drug_keys(a)) & set(drug_keys(b))


def test_slug() -> None:
    assert slug("  Almonertinib (HCl) ") == "almonertinib-hcl"
    assert slug("NCI-H23") == "nci-h23"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PSMB1, PSMB2; psmb5", ["PSMB1", "PSMB2", "PSMB5"]),
        (None, []),
        ("unclear", []),
        ("EGFR|EGFR", ["EGFR"]),
    ],
)
def test_split_targets(text, expected) -> None:
    assert split_targets(text) == expected


def test_join_prefers_tahoe_then_lincs_and_keeps_unmatched() -> None:
    tahoe = pd.DataFrame(
        {
            "drug": ["Afatinib", "Mystery (hydrochloride)"],
            "targets": ["EGFR, ERBB2", None],
            "moa-broad": ["inhibitor/antagonist", "unclear"],
            "moa-fine": ["EGFR/ERBB inhibitor", "unclear"],
            "canonical_smiles": ["C", None],
            "pubchem_cid": [10184653.0, float("nan")],
        }
    )
    lincs = pd.DataFrame(
        {
            "pert_iname": ["mystery", "other"],
            "compound_aliases": [None, "alias-x"],
            "canonical_smiles": ["CC", "CCC"],
            "MOA": ["HDAC inhibitor", None],
            "mergeMOA": [None, None],
            "mergeTargets": ["HDAC1; HDAC2", None],
            "DrugBank_ID": [None, None],
        }
    )
    het = pd.DataFrame({"id": ["Compound::DB08916"], "name": ["Afatinib"]})
    table = build_drug_table(
        {"tahoe": ["Afatinib", "Mystery hydrochloride"], "other": ["Alias-X", "Nobody"]},
        tahoe_metadata=tahoe,
        lincs=lincs,
        hetionet_compounds=het,
    )
    assert table.loc["afatinib", "targets"] == ["EGFR", "ERBB2"]
    assert table.loc["afatinib", "hetionet_id"] == "DB08916"
    mystery = table.loc["mystery-hydrochloride"]
    assert mystery["source"] == "tahoe_metadata" and mystery["smiles"] == "CC"  # filled from LINCS
    assert mystery["moa_fine"] == "HDAC inhibitor" and mystery["moa_broad"] == "inhibitor/antagonist"
    assert table.loc["alias-x", "source"] == "lincs"
    assert table.loc["nobody", "source"] == "unmatched"


@pytest.mark.parametrize(
    ("a", "b"),
    [("AMD-070 (hydrochloride)", "Cysteamine (hydrochloride)"), ("X (sodium salt)", "Y (sodium salt)")],
)
def test_a_salt_word_in_parentheses_is_not_an_alias(a: str, b: str) -> None:
    # Once, "AMD-070 (hydrochloride)" took cysteamine's structure through the shared "alias" hydrochloride.
    assert not set(drug_keys(a)) & set(drug_keys(b))
    assert "gdc0199" in drug_keys("ABT-199 (GDC-0199)")
