"""AppTest of the Compare page on the real data: the three modes, salt-form collapsing, links."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

pytestmark = pytest.mark.realdata


def _neighbours(at: AppTest) -> list:
    return [d.value for d in at.dataframe if "in both" in d.value.columns]


def _differences(at: AppTest) -> str:
    return next(m.value for m in at.markdown if m.value.startswith("- "))


def test_compare_two_drugs_by_default(real_data, open_page) -> None:
    at = open_page("compare")
    assert at.title[0].value == "Compare"
    assert at.subheader[0].value == "Trametinib in C32, kg_mechanism  vs  Binimetinib in C32, kg_mechanism"
    left, right = _neighbours(at)
    assert len(left) == len(right) == 10
    shared = set(left.loc[left["in both"], "drug"])
    assert shared == set(right.loc[right["in both"], "drug"]) and len(shared) >= 5
    assert "Binimetinib" in set(left["drug"]) and "Trametinib" in set(right["drug"])  # each other's neighbour
    assert all(str(u).startswith("https://pubchem.ncbi.nlm.nih.gov/") for u in left["PubChem"])
    tiles = [m for m in at.metric if m.label == "Pearson r"]
    assert len(tiles) == 2 and {t.delta for t in tiles} <= {"better", "worse", "tie"}
    assert len(at.get("plotly_chart")) == 2  # one scatter per side
    assert "neighbours shared" in _differences(at)
    metrics = next(d.value for d in at.dataframe if "right − left" in d.value.columns)
    assert set(metrics["better"]) <= {"left", "right", "tie", "—"}
    assert any("lgr compare" in c.value for c in at.code)


def test_compare_selectors_and_cell_lines(real_data, open_page, assert_clean) -> None:
    at = open_page("compare")
    at.radio(key="cmp_mode").set_value("selectors").run()
    assert_clean(at)
    assert at.subheader[0].value.endswith("Trametinib in C32, transcriptome_knn")
    assert "the two predictions correlate" in _differences(at)
    at.radio(key="cmp_mode").set_value("cell_lines").run()
    assert_clean(at)
    assert at.subheader[0].value == "Trametinib in C32, kg_mechanism  vs  Trametinib in NCI-H23, kg_mechanism"
    assert "observed responses correlate" in _differences(at)


def test_collapse_salt_forms(real_data, open_page, assert_clean) -> None:
    at = open_page("compare")
    left = _neighbours(at)[0]
    assert {"Almonertinib hydrochloride", "Almonertinib mesylate"} <= set(left["drug"])
    at.toggle(key="cmp_collapse").set_value(True).run()
    assert_clean(at)
    left = _neighbours(at)[0]
    assert "Almonertinib hydrochloride (+ Almonertinib mesylate)" in set(left["drug"])
    assert "Almonertinib mesylate" not in set(left["drug"])


def test_compare_from_a_link(real_data, open_with_query, assert_clean) -> None:
    at = open_with_query(
        "compare", {"mode": "drugs", "cell_line": "nci h23", "drug": "trametinib", "drug_b": "binimetinib"}
    )
    assert_clean(at)
    assert at.subheader[0].value.startswith("Trametinib in NCI-H23")
    bad = open_with_query("compare", {"mode": "drugs", "drug": "Trametinb"})
    assert any("Link parameter ignored" in w.value and "Trametinib" in w.value for w in bad.warning)
