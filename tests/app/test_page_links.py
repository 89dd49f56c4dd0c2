"""Identity links wherever drugs, genes and gene sets are shown (issue 13, item 6), on the real data."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.realdata


def _table_with(at, column: str):
    return next(d.value for d in at.dataframe if column in d.value.columns)


def test_retrieval_neighbours_link_to_pubchem(real_data, open_with_query, assert_clean) -> None:
    at = open_with_query("retrieval", {"cell_line": "C32", "drug": "Trametinib", "selector": "kg_mechanism"})
    assert_clean(at)
    urls = _table_with(at, "PubChem")["PubChem"]
    assert urls.notna().all() and all(u.startswith("https://pubchem.ncbi.nlm.nih.gov/") for u in urls)
    assert any("[PubChem](https://pubchem.ncbi.nlm.nih.gov/" in c.value for c in at.caption)


def test_evidence_items_link_to_ncbi_gene(real_data, open_with_query, assert_clean) -> None:
    at = open_with_query("evidence", {"dataset": "perturbqa-k562", "perturbation": "INTS1", "gene": "LIMD2"})
    assert_clean(at)
    urls = _table_with(at, "NCBI Gene")["NCBI Gene"]
    assert len(urls) > 0 and all(u.startswith("https://www.ncbi.nlm.nih.gov/gene") for u in urls)
    assert any("GeneCards" in c.value and "LIMD2" in c.value for c in at.caption)


def test_gene_view_links_its_gene_sets(real_data, open_with_query, assert_clean) -> None:
    at = open_with_query("gene", {"gene": "EGR1"})
    assert_clean(at)
    sets = [d.value for d in at.dataframe if "link" in d.value.columns]
    assert len(sets) == 2  # pathways, GO terms
    assert all(u.startswith("https://") for t in sets for u in t["link"])
    assert any("QuickGO" in u for u in sets[1]["link"])
