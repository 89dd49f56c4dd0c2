"""Links out and salt-form labels for tables and captions (presentation over :mod:`perturb_core.links`).

Typical uses on a page::

    from pages import _links as links

    ids = links.drug_ids(load.drugs().table, names)                  # name -> PubChem / DrugBank ids
    st.markdown(links.markdown(links.drug_links(name, **ids.get(name, {}))))
    df["PubChem"] = links.drug_urls(load.drugs().table, df["name"])   # one URL per row ...
    st.dataframe(df, column_config={"PubChem": links.link_column("PubChem")})  # ... shown as a link
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd
import streamlit as st

from perturb_core.chem import collapse_salt_forms, parent_groups
from perturb_core.links import drug_links, gene_links, go_links, node_links, pathway_links

__all__ = [
    "collapsed_names",
    "drug_ids",
    "drug_links",
    "drug_urls",
    "first_url",
    "gene_links",
    "gene_urls",
    "go_links",
    "link_column",
    "markdown",
    "node_links",
    "parent_labels",
    "pathway_links",
    "term_urls",
]


def markdown(links: Mapping[str, str], sep: str = " · ") -> str:
    """``[PubChem](url) · [DrugBank](url)`` (labels are fixed words, URLs are already encoded)."""
    return sep.join(f"[{label}]({url})" for label, url in links.items())


def first_url(links: Mapping[str, str]) -> str | None:
    """The first link's URL (the primary database), for a one-link table column."""
    return next(iter(links.values()), None)


def link_column(label: str, help: str | None = None, *, display_text: str | None = None) -> Any:
    """A ``st.column_config.LinkColumn`` that shows ``display_text`` (default ``"LABEL ↗"``), not the raw URL."""
    return st.column_config.LinkColumn(label, help=help, display_text=display_text or f"{label} ↗")


def drug_ids(table: pd.DataFrame, names: Iterable[str]) -> dict[str, dict[str, object]]:
    """Drug name -> ``{"pubchem_cid", "drugbank_id"}`` from the drug table (``load.drugs().table``)."""
    wanted = set(names)
    sub = table[table["name"].isin(wanted)]
    out: dict[str, dict[str, object]] = {}
    for row in sub.itertuples():
        out[str(row.name)] = {
            "pubchem_cid": getattr(row, "pubchem_cid", None),
            "drugbank_id": getattr(row, "hetionet_id", None),
        }
    return out


def drug_urls(table: pd.DataFrame, names: Iterable[str], *, site: str = "PubChem") -> list[str | None]:
    """One URL per drug name: its PubChem page (or name search); ``site="DrugBank"`` for DrugBank."""
    names = list(names)
    ids = drug_ids(table, names)
    out = []
    for n in names:
        links = drug_links(n, **ids.get(n, {}))  # type: ignore[arg-type]
        out.append(next((u for label, u in links.items() if label.startswith(site)), None))
    return out


def gene_urls(symbols: Iterable[str], *, site: str = "NCBI Gene") -> list[str | None]:
    """One URL per gene symbol (NCBI Gene search by symbol, or ``site="GeneCards"``)."""
    return [next((u for label, u in gene_links(s).items() if label.startswith(site)), None) for s in symbols]


def term_urls(term_ids: Iterable[str], terms: Iterable[str], sources: Iterable[str]) -> list[str | None]:
    """One URL per gene set: QuickGO for GO terms (source ``go_*``), else the pathway's page or a search."""
    out = []
    for tid, term, source in zip(term_ids, terms, sources, strict=True):
        found = (
            go_links(tid) if str(source).startswith("go_") else pathway_links(tid, name=term, source=source)
        )
        out.append(first_url(found))
    return out


@st.cache_data(max_entries=32, show_spinner=False)
def _groups(pairs: tuple[tuple[str, str | None], ...]) -> dict[str, tuple[str, ...]]:
    return parent_groups(dict(pairs))


def parent_labels(names: Iterable[str], smiles: Iterable[str | None]) -> list[str]:
    """Per drug, the other salt forms of its parent structure among ``names`` ("" when none)."""
    names, smiles = list(names), list(smiles)
    pairs = tuple((str(n), s if isinstance(s, str) else None) for n, s in zip(names, smiles, strict=True))
    member = {n: g for g in _groups(pairs).values() for n in g}
    return [", ".join(o for o in member.get(str(n), ()) if o != n) for n in names]


def collapsed_names(
    names: Iterable[str], smiles_by_name: Mapping[str, str | None]
) -> list[tuple[str, tuple[str, ...]]]:
    """A ranked name list with salt forms of one parent merged into the best-ranked (see :func:`collapse_salt_forms`)."""
    return collapse_salt_forms(list(names), smiles_by_name)
