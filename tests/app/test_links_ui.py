"""pages/_links.py: the UI helpers over perturb_core.links and the salt-form grouping (no data needed)."""

from __future__ import annotations

import pandas as pd

from pages import _links as links

TOFA = "CC1CCN(C(=O)CC#N)CC1N(C)c1ncnc2[nH]ccc12"
CITRATE = "O=C(O)CC(O)(CC(=O)O)C(=O)O"
TABLE = pd.DataFrame(
    {
        "name": ["Tofacitinib", "Binimetinib"],
        "pubchem_cid": ["9926791", None],
        "hetionet_id": ["DB08895", None],
    }
)


def test_drug_ids_and_urls() -> None:
    assert links.drug_ids(TABLE, ["Tofacitinib", "Other"]) == {
        "Tofacitinib": {"pubchem_cid": "9926791", "drugbank_id": "DB08895"}
    }
    assert links.drug_urls(TABLE, ["Tofacitinib", "Binimetinib"]) == [
        "https://pubchem.ncbi.nlm.nih.gov/compound/9926791",
        "https://pubchem.ncbi.nlm.nih.gov/#query=Binimetinib",
    ]
    assert links.drug_urls(TABLE, ["Tofacitinib"], site="DrugBank") == [
        "https://go.drugbank.com/drugs/DB08895"
    ]
    assert links.gene_urls(["EGFR"], site="GeneCards") == [
        "https://www.genecards.org/cgi-bin/carddisp.pl?gene=EGFR"
    ]


def test_markdown_and_first_url() -> None:
    got = links.markdown({"PubChem": "https://a/1", "DrugBank (search)": "https://b/?q=x"})
    assert got == "[PubChem](https://a/1) · [DrugBank (search)](https://b/?q=x)"
    assert links.first_url({"a": "u1", "b": "u2"}) == "u1" and links.first_url({}) is None


def test_salt_form_labels_and_collapse() -> None:
    names = ["Tofacitinib citrate", "Erlotinib", "Tofacitinib", "No structure"]
    smiles = [TOFA + "." + CITRATE, "COCCOc1cc2ncnc(Nc3cccc(C#C)c3)c2cc1OCCOC", TOFA, None]
    assert links.parent_labels(names, smiles) == ["Tofacitinib", "", "Tofacitinib citrate", ""]
    assert links.collapsed_names(names, dict(zip(names, smiles, strict=True))) == [
        ("Tofacitinib citrate", ("Tofacitinib",)),
        ("Erlotinib", ()),
        ("No structure", ()),
    ]


def test_term_urls_send_go_terms_to_quickgo_and_pathways_to_their_pages() -> None:
    urls = links.term_urls(
        ["go:GO:0006915", "pathway:WP24_r79999", "pathway:PC7_7749"],
        ["apoptotic process", "Peptide GPCRs", "Signaling events mediated by PRL"],
        ["go_bp", "wikipathways", "pid"],
    )
    assert urls[0] == "https://www.ebi.ac.uk/QuickGO/term/GO:0006915"
    assert urls[1] == "https://www.wikipathways.org/pathways/WP24.html"
    assert urls[2].startswith("https://apps.pathwaycommons.org/search?")
