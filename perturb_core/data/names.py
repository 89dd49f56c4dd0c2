"""Name normalisation shared by every lookup: ids, lookup keys and display names."""

from __future__ import annotations

import re

from perturb_core.errors import name_key

__all__ = ["OPENPROBLEMS_CELL_TYPES", "SALT_WORDS", "DrugNameIndex", "drug_keys", "name_key", "slug"]

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
    for alias in re.findall(r"\(([^)]*)\)", name):  # a salt word in parentheses is not an alias
        if any(name_key(w) not in SALT_WORDS for w in re.split(r"[\s,;/]+", alias.lower()) if name_key(w)):
            keys.append(name_key(alias))
    out: list[str] = []
    for k in keys:
        if k and k not in out:
            out.append(k)
    return out


class DrugNameIndex:
    """Resolve any spelling of a drug to one of ``names``, refusing ambiguous matches.

    A query matches a name when they share a lookup key (:func:`drug_keys`). An exact match
    of the full key wins; otherwise the first of the query's keys that matches anything must
    match exactly one name (``'Almonertinib'`` is ambiguous between the hydrochloride and the
    mesylate, which are separate drugs with their own responses).
    """

    def __init__(self, names: list[str]) -> None:
        self.names = list(dict.fromkeys(str(n) for n in names))
        self._full: dict[str, str] = {}
        self._any: dict[str, list[str]] = {}
        for n in self.names:
            keys = drug_keys(n)
            self._full.setdefault(keys[0], n)
            for k in keys:
                bucket = self._any.setdefault(k, [])
                if n not in bucket:
                    bucket.append(n)

    def resolve(self, query: str, *, kind: str) -> str:
        """The matching name.

        Raises:
            UnknownNameError: no match (with the closest names) or several (listing them).
        """
        from perturb_core.errors import UnknownNameError, unknown_name

        keys = drug_keys(query)
        for k in keys:
            if k in self._full:
                return self._full[k]
        for k in keys:
            hits = self._any.get(k, [])
            if len(hits) == 1:
                return hits[0]
            if len(hits) > 1:
                raise UnknownNameError(
                    f"ambiguous {kind}: {query!r} matches {', '.join(sorted(hits))}; give the full name"
                )
        raise unknown_name(kind, query, self.names)
