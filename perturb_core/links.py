"""Links out: drugs, genes, pathways and GO terms to the public databases biologists already use.

Every function returns ``{label: url}`` (insertion order = display order), with every part of
the URL taken from data percent-encoded. Nothing here calls the network: a link to a search
page is given where no identifier is known, and labelled as a search.

Identifiers used (what the project's tables hold):

- drugs: PubChem CID (``pubchem_cid`` of the drug table) -> ``pubchem.ncbi.nlm.nih.gov/compound/CID``,
  otherwise a PubChem name search; DrugBank id (``hetionet_id``, e.g. ``DB08895``) ->
  ``go.drugbank.com/drugs/ID``, otherwise a DrugBank search by name.
- genes: NCBI Gene by Entrez id (the graph's ``entrez:N`` detail) or by symbol search (human);
  GeneCards by symbol; Ensembl by ``ENSG...`` id.
- pathways: the graph's pathway ids come from dhimmel/pathways (Hetionet): WikiPathways ids
  ``WP24_r79999`` link to ``wikipathways.org/pathways/WP24.html``; the Reactome and PID sets
  carry Pathway Commons v7 ids (``PC7_7749``) that have no Reactome stable id, so they link to a
  Reactome search by pathway name (PID: a Pathway Commons search); a Reactome stable id
  (``R-HSA-...``) links directly.
- GO terms: QuickGO by ``GO:nnnnnnn``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from urllib.parse import quote, urlencode

__all__ = [
    "drug_links",
    "gene_links",
    "go_links",
    "node_links",
    "pathway_links",
]

_DRUGBANK_ID = re.compile(r"^DB\d{5}$")
_GO_ID = re.compile(r"^GO:\d{7}$")
_WIKIPATHWAYS_ID = re.compile(r"^(WP\d+)(?:_r\d+)?$")
_REACTOME_ID = re.compile(r"^R-[A-Z]{3}-\d+(?:\.\d+)?$")
_ENSEMBL_GENE = re.compile(r"^ENS[A-Z]*G\d{6,}(?:\.\d+)?$")


def _text(value: object) -> str | None:
    """A clean, non-empty string, or ``None`` for missing values (None, NaN, blank)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    return text or None


def _cid(value: object) -> int | None:
    """A positive integer PubChem CID from an int, float or numeric string; ``None`` otherwise."""
    text = _text(value)
    if text is None:
        return None
    try:
        number = float(text)
    except ValueError:
        return None
    return int(number) if number.is_integer() and number > 0 else None


def drug_links(name: str, *, pubchem_cid: object = None, drugbank_id: object = None) -> dict[str, str]:
    """PubChem and DrugBank links of a drug.

    Args:
        name: the drug's display name (used for the search links).
        pubchem_cid: its PubChem compound id, if known (int, float or numeric string).
        drugbank_id: its DrugBank id (``DB00000``), if known.

    Returns:
        ``{"PubChem": url, "DrugBank": url}``; the labels say ``(search)`` when no id was known.

    Example:
        >>> drug_links("Tofacitinib", pubchem_cid=9926791, drugbank_id="DB08895")["DrugBank"]
        'https://go.drugbank.com/drugs/DB08895'
    """
    label = _text(name) or ""
    out: dict[str, str] = {}
    cid = _cid(pubchem_cid)
    if cid is not None:
        out["PubChem"] = f"https://pubchem.ncbi.nlm.nih.gov/compound/{cid}"
    else:
        out["PubChem (search)"] = f"https://pubchem.ncbi.nlm.nih.gov/#query={quote(label, safe='')}"
    db = _text(drugbank_id)
    if db is not None and _DRUGBANK_ID.match(db):
        out["DrugBank"] = f"https://go.drugbank.com/drugs/{db}"
    else:
        out["DrugBank (search)"] = "https://go.drugbank.com/unearth/q?" + urlencode(
            {"searcher": "drugs", "query": label}
        )
    return out


def gene_links(symbol: str, *, entrez: object = None) -> dict[str, str]:
    """NCBI Gene and GeneCards links of a human gene (Ensembl too for an ``ENSG`` id).

    Args:
        symbol: HGNC symbol (or an Ensembl gene id).
        entrez: NCBI (Entrez) gene id, if known; ``"entrez:1956"`` is accepted too.

    Example:
        >>> gene_links("EGFR", entrez=1956)["NCBI Gene"]
        'https://www.ncbi.nlm.nih.gov/gene/1956'
    """
    sym = _text(symbol) or ""
    out: dict[str, str] = {}
    eid = _text(entrez)
    if eid is not None:
        eid = eid.removeprefix("entrez:")
    if eid is not None and eid.isdigit():
        out["NCBI Gene"] = f"https://www.ncbi.nlm.nih.gov/gene/{eid}"
    else:
        term = f"{sym}[sym] AND human[orgn]"
        out["NCBI Gene (search)"] = "https://www.ncbi.nlm.nih.gov/gene/?" + urlencode({"term": term})
    if _ENSEMBL_GENE.match(sym):
        out["Ensembl"] = "https://www.ensembl.org/Homo_sapiens/Gene/Summary?" + urlencode(
            {"g": sym.split(".")[0]}
        )
    out["GeneCards"] = "https://www.genecards.org/cgi-bin/carddisp.pl?" + urlencode({"gene": sym})
    return out


def pathway_links(pathway_id: str, *, name: str | None = None, source: str | None = None) -> dict[str, str]:
    """A link to a pathway's page (WikiPathways, Reactome) or, without a usable id, a search by name.

    Args:
        pathway_id: the id as in the graph, with or without the ``pathway:`` prefix
            (``WP24_r79999``, ``PC7_7749``, ``R-HSA-5673001``).
        name: the pathway's name (for the search links).
        source: ``"reactome"``, ``"wikipathways"`` or ``"pid"`` (the graph node's detail).

    Example:
        >>> pathway_links("pathway:WP24_r79999")
        {'WikiPathways': 'https://www.wikipathways.org/pathways/WP24.html'}
    """
    pid = (_text(pathway_id) or "").removeprefix("pathway:")
    label = _text(name) or pid
    wp = _WIKIPATHWAYS_ID.match(pid)
    if wp:
        return {"WikiPathways": f"https://www.wikipathways.org/pathways/{wp.group(1)}.html"}
    if _REACTOME_ID.match(pid):
        return {"Reactome": f"https://reactome.org/content/detail/{pid}"}
    if (source or "").lower() == "pid":
        return {
            "Pathway Commons (search)": "https://apps.pathwaycommons.org/search?"
            + urlencode({"q": label, "type": "Pathway"})
        }
    return {
        "Reactome (search)": "https://reactome.org/content/query?"
        + urlencode({"q": label, "species": "Homo sapiens", "types": "Pathway"})
    }


def go_links(go_id: str) -> dict[str, str]:
    """The QuickGO page of a GO term (``GO:0006915``, with or without the graph's ``go:`` prefix).

    Example:
        >>> go_links("go:GO:0006915")
        {'QuickGO': 'https://www.ebi.ac.uk/QuickGO/term/GO:0006915'}
    """
    gid = (_text(go_id) or "").removeprefix("go:")
    if _GO_ID.match(gid):
        return {"QuickGO": f"https://www.ebi.ac.uk/QuickGO/term/{gid}"}
    return {"QuickGO (search)": "https://www.ebi.ac.uk/QuickGO/search/" + quote(gid, safe="")}


def node_links(
    node_id: str,
    *,
    name: str | None = None,
    detail: str | None = None,
    drug_ids: Mapping[str, object] | None = None,
) -> dict[str, str]:
    """Links of a knowledge-graph node by its kind prefix (``gene:``, ``pathway:``, ``go:``, ``drug:``, ``compound:``).

    Args:
        node_id: the graph id, e.g. ``gene:EGFR``, ``pathway:PC7_7749``, ``go:GO:0006915``.
        name: the node's name (search links, drug names).
        detail: the node's ``detail`` column (``entrez:1956`` for genes, the source for pathways).
        drug_ids: for a drug node, ``{"pubchem_cid": ..., "drugbank_id": ...}`` if known.

    Returns:
        The links, or ``{}`` for kinds without a public page (mechanisms, diseases without an id).
    """
    nid = _text(node_id) or ""
    kind, _, local = nid.partition(":")
    if kind == "gene":
        return gene_links(name or local, entrez=detail)
    if kind == "pathway":
        return pathway_links(local, name=name, source=detail)
    if kind == "go":
        return go_links(local)
    if kind == "compound":  # Hetionet compounds are DrugBank ids
        return drug_links(name or local, drugbank_id=local)
    if kind == "drug":
        ids = dict(drug_ids or {})
        return drug_links(
            name or local, pubchem_cid=ids.get("pubchem_cid"), drugbank_id=ids.get("drugbank_id")
        )
    if kind == "disease" and local.startswith("DOID:"):
        return {"Disease Ontology": "https://disease-ontology.org/?" + urlencode({"id": local})}
    return {}
