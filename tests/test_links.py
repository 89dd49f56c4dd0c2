"""Tests of perturb_core.links: URL builders with hand-written expected URLs."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest

from perturb_core.links import drug_links, gene_links, go_links, node_links, pathway_links


def test_drug_links_by_id() -> None:
    links = drug_links("Tofacitinib", pubchem_cid="9926791", drugbank_id="DB08895")
    assert links == {
        "PubChem": "https://pubchem.ncbi.nlm.nih.gov/compound/9926791",
        "DrugBank": "https://go.drugbank.com/drugs/DB08895",
    }
    assert drug_links("x", pubchem_cid=9926791.0)["PubChem"].endswith("/compound/9926791")


@pytest.mark.parametrize("cid", [None, float("nan"), "", "abc", -3, 1.5])
def test_drug_links_search_when_no_id(cid: object) -> None:
    links = drug_links("18β-Glycyrrhetinic acid & co/x", pubchem_cid=cid, drugbank_id="not-an-id")
    assert set(links) == {"PubChem (search)", "DrugBank (search)"}
    assert links["PubChem (search)"] == (
        "https://pubchem.ncbi.nlm.nih.gov/#query=18%CE%B2-Glycyrrhetinic%20acid%20%26%20co%2Fx"
    )
    q = parse_qs(urlparse(links["DrugBank (search)"]).query)
    assert q == {"searcher": ["drugs"], "query": ["18β-Glycyrrhetinic acid & co/x"]}


def test_gene_links() -> None:
    assert gene_links("EGFR", entrez="entrez:1956") == {
        "NCBI Gene": "https://www.ncbi.nlm.nih.gov/gene/1956",
        "GeneCards": "https://www.genecards.org/cgi-bin/carddisp.pl?gene=EGFR",
    }
    links = gene_links("MT-ND5")
    q = parse_qs(urlparse(links["NCBI Gene (search)"]).query)
    assert q == {"term": ["MT-ND5[sym] AND human[orgn]"]}
    ens = gene_links("ENSG00000146648.18")
    assert ens["Ensembl"] == "https://www.ensembl.org/Homo_sapiens/Gene/Summary?g=ENSG00000146648"


def test_pathway_links() -> None:
    assert pathway_links("pathway:WP24_r79999") == {
        "WikiPathways": "https://www.wikipathways.org/pathways/WP24.html"
    }
    assert pathway_links("R-HSA-5673001") == {"Reactome": "https://reactome.org/content/detail/R-HSA-5673001"}
    reactome = pathway_links("PC7_7749", name="Synthesis of PIPs", source="reactome")
    ((label, url),) = reactome.items()
    assert label == "Reactome (search)"
    assert parse_qs(urlparse(url).query)["q"] == ["Synthesis of PIPs"]
    pid = pathway_links("PC7_10399", name="a4b7 Integrin signaling", source="pid")
    assert list(pid) == ["Pathway Commons (search)"]
    assert "q=a4b7+Integrin+signaling" in pid["Pathway Commons (search)"]


def test_go_links() -> None:
    assert go_links("go:GO:0006915") == {"QuickGO": "https://www.ebi.ac.uk/QuickGO/term/GO:0006915"}
    assert go_links("apoptosis <b>") == {
        "QuickGO (search)": "https://www.ebi.ac.uk/QuickGO/search/apoptosis%20%3Cb%3E"
    }


def test_node_links_by_kind() -> None:
    assert "NCBI Gene" in node_links("gene:EGFR", name="EGFR", detail="entrez:1956")
    assert "QuickGO" in node_links("go:GO:0006915")
    assert node_links("compound:DB01092", name="Ouabain")["DrugBank"].endswith("/DB01092")
    drug = node_links("drug:tofacitinib", name="Tofacitinib", drug_ids={"pubchem_cid": 9926791})
    assert drug["PubChem"].endswith("/9926791") and "DrugBank (search)" in drug
    assert node_links("mechanism:mek-inhibitor") == {}
    assert "Disease Ontology" in node_links("disease:DOID:0050156")
