"""Mechanism tags (perturb_core.retrieval.mechanism): tag rules, programs, ADME filtering, coverage on the real drug table."""

from __future__ import annotations

import pandas as pd
import pytest

from perturb_core.config import Settings
from perturb_core.errors import UnknownNameError, ValidationError
from perturb_core.retrieval.mechanism import (
    PROGRAMS,
    TAG_RULES,
    annotate_drugs,
    drug_mechanism,
    is_adme_gene,
    mechanism_tags,
    mechanism_targets,
    programs_of,
    tag_coverage,
)


@pytest.mark.parametrize(
    ("targets", "moa", "tags"),
    [
        (["EGFR", "ERBB2"], "EGFR/ERBB inhibitor", ("EGFR/ERBB inhibition",)),
        (["MAP2K1", "MAP2K2"], "MEK inhibitor", ("MEK/ERK inhibition",)),
        (["CDK4", "CDK6"], None, ("CDK4/6 inhibition",)),
        (["HDAC1", "HDAC2", "HDAC3"], "HDAC inhibitor", ("HDAC inhibition",)),
        (["PSMB5"], "unclear", ("proteasome inhibition",)),
        (
            ["TOP1"],
            "DNA synthesis/repair inhibitor",
            ("topoisomerase I inhibition", "DNA synthesis/repair inhibition"),
        ),
        ([], "Microtubule inhibitor", ("microtubule disruption",)),
        ([], "unclear", ()),
        ([], None, ()),
        (["CYP3A4", "ABCB1"], None, ()),  # ADME genes are not mechanism
    ],
)
def test_mechanism_tags(targets: list[str], moa: str | None, tags: tuple[str, ...]) -> None:
    assert mechanism_tags(targets, moa) == tags


def test_text_tags_win_and_targets_refine_only_their_programs() -> None:
    # cytarabine: DrugBank lists BCR among its targets; RTK/MAPK is not a program of its mechanism
    tags = mechanism_tags(["POLA1", "BCR", "ABL1", "DCK"], "DNA synthesis/repair inhibitor")
    assert "DNA polymerase / nucleoside analogue" in tags
    assert "BCR-ABL/SRC inhibition" not in tags
    # without a mechanism text every target speaks
    assert "BCR-ABL/SRC inhibition" in mechanism_tags(["ABL1"], None)


def test_keywords_respect_word_boundaries() -> None:
    assert mechanism_tags([], "HMGCR inhibitor") == ("HMG-CoA reductase inhibition (statin)",)
    assert "JAK/STAT inhibition" not in mechanism_tags([], "statin")
    assert mechanism_tags([], "Bacterial 50S ribosomal subunit inhibitor") == ("antibacterial",)
    assert "protein synthesis inhibition" not in mechanism_tags([], "Bacterial protein synthesis inhibitor")


def test_programs_and_rules() -> None:
    assert programs_of(["HDAC inhibition", "EGFR/ERBB inhibition", "ion channel modulation"]) == (
        "RTK/MAPK signalling",
        "epigenetic or proteostasis stress",
    )
    assert programs_of([]) == ()
    with pytest.raises(ValidationError, match="unknown mechanism tag"):
        programs_of(["telepathy"])
    assert len(PROGRAMS) == 5
    assert {r.program for r in TAG_RULES} - {None} == set(PROGRAMS)
    assert len({r.tag for r in TAG_RULES}) == len(TAG_RULES)


def test_adme_filter() -> None:
    assert is_adme_gene("cyp3a4") and is_adme_gene("ABCB1") and is_adme_gene("NR1I2")
    assert not is_adme_gene("CYP51A1")  # the sterol-synthesis target, not a metabolising enzyme
    assert not is_adme_gene("EGFR") and not is_adme_gene("SLC6A4")
    assert mechanism_targets(["egfr", "CYP3A4", "EGFR", " erbb2 "]) == ["EGFR", "ERBB2"]


def test_annotate_small_table_and_coverage() -> None:
    table = pd.DataFrame(
        {
            "name": ["A", "B", "C"],
            "targets": [["EGFR"], None, ["CYP2D6"]],
            "moa_fine": ["EGFR/ERBB inhibitor", "unclear", "unclear"],
            "moa_broad": ["inhibitor/antagonist", "unclear", "unclear"],
        },
        index=["a", "b", "c"],
    )
    ann = annotate_drugs(table)
    assert ann.loc["a", "tags"] == ("EGFR/ERBB inhibition",)
    assert ann.loc["a", "programs"] == ("RTK/MAPK signalling",)
    assert ann.loc["a", "evidence"]["EGFR/ERBB inhibition"].startswith("mechanism: EGFR/ERBB inhibitor")
    assert ann.loc["b", "tags"] == () and ann.loc["c", "mechanism_targets"] == ()
    cov = tag_coverage(ann)
    assert cov["n_drugs"] == 3 and cov["with_tags"] == 1 and cov["with_programs"] == 1
    assert cov["untagged"] == ["B", "C"] and cov["untagged_with_information"] == []
    assert cov["per_program"]["RTK/MAPK signalling"] == 1
    with pytest.raises(ValidationError, match="lacks column"):
        annotate_drugs(table.drop(columns=["moa_fine"]))


@pytest.mark.realdata
def test_every_tahoe_drug_with_information_is_tagged(real_data: Settings) -> None:
    from perturb_core.data.registry import load_drugs

    drugs = load_drugs(real_data)
    ann = annotate_drugs(drugs)
    tahoe = drugs.table.index[drugs.table["datasets"].str.contains("tahoe")]
    cov = tag_coverage(ann, tahoe)
    assert cov["n_drugs"] == 110
    assert cov["untagged_with_information"] == []
    assert cov["tag_fraction"] >= 0.8
    assert cov["with_programs"] >= 30
    assert all(cov["per_program"][p] > 0 for p in PROGRAMS)
    tram = drug_mechanism("trametinib", settings=real_data)
    assert tram.tags == ("MEK/ERK inhibition",) and tram.programs == ("RTK/MAPK signalling",)
    assert tram.to_dict()["mechanism_targets"] == ["MAP2K1", "MAP2K2"]
    with pytest.raises(UnknownNameError, match="closest known"):
        drug_mechanism("tramatinibb", settings=real_data)
