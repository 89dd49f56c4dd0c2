"""Name normalisation shared by every lookup: ids, lookup keys and display names."""

from __future__ import annotations

import re

from perturb_core.errors import name_key

__all__ = ["OPENPROBLEMS_CELL_TYPES", "SALT_WORDS", "drug_keys", "name_key", "slug"]

#: Counter-ions and hydrate words dropped when matching drug names across sources.
SALT_WORDS = (
    "hydrochloride",
    "dihydrochloride",
    "trihydrochloride",
    "hcl",
    "mesylate",
    "dimesylate",
    "maleate",
    "tosylate",
    "ditosylate",
    "sulfate",
    "hydrobromide",
    "sodium",
    "disodium",
    "potassium",
    "citrate",
    "fumarate",
    "phosphate",
    "diphosphate",
    "acetate",
    "tartrate",
    "bitartrate",
    "succinate",
    "besylate",
    "lactate",
    "malate",
    "hydrate",
    "monohydrate",
    "dihydrate",
    "trihydrate",
    "sesquihydrate",
    "calcium",
    "magnesium",
    "bromide",
    "chloride",
    "iodide",
    "nitrate",
    "oxalate",
    "trifluoroacetate",
    "tfa",
    "salt",
    "free",
    "base",
    "esylate",
    "isethionate",
    "meglumine",
    "tromethamine",
    "anhydrous",
    "2s1",
    "racemate",
)

OPENPROBLEMS_CELL_TYPES = {
    "b": "B cells",
    "myeloid": "Myeloid cells",
    "nk": "NK cells",
    "t": "T cells",
}


def slug(name: str) -> str:
    """Normalised id: lower case, runs of non-alphanumerics to ``-`` (``'Almonertinib (HCl)'`` ->
    ``'almonertinib-hcl'``)."""
    return re.sub(r"[^0-9a-z]+", "-", str(name).strip().lower()).strip("-")


def drug_keys(name: str) -> list[str]:
    """Lookup keys of a drug name, most specific first.

    The full key; the key without salt words; the name outside parentheses; each
    parenthesised alias (``'ABT-199 (GDC-0199)'`` also matches ``GDC-0199``).
    """
    name = str(name).strip()
    keys = [name_key(name)]
    words = re.split(r"[\s()\[\],;/]+", name.lower())
    keys.append(name_key(" ".join(w for w in words if name_key(w) not in SALT_WORDS)))
    outer = re.sub(r"\([^)]*\)", " ", name)
    keys.append(name_key(outer))
    outer_words = re.split(r"[\s,;/]+", outer.lower())
    keys.append(name_key(" ".join(w for w in outer_words if name_key(w) not in SALT_WORDS)))
    keys.extend(name_key(m) for m in re.findall(r"\(([^)]*)\)", name))
    out: list[str] = []
    for k in keys:
        if k and k not in out:
            out.append(k)
    return out
