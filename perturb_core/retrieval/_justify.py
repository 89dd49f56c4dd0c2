"""The one-sentence justification of each neighbour of an explained LGR prediction."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from perturb_core.retrieval._aggregate import SOURCE_CHEM, SOURCE_POOL, SOURCE_SELECTOR
from perturb_core.retrieval._index import LGRIndex
from perturb_core.retrieval._selectors import Scores
from perturb_core.retrieval._splits import SplitData


def _fmt_list(items: Sequence[str], limit: int = 4) -> str:
    items = list(items)
    return ", ".join(items[:limit]) + (f" (+{len(items) - limit} more)" if len(items) > limit else "")


def _kg_justification(index: LGRIndex, d: int, e: int) -> str:
    """The evidence ``kg_mechanism`` used for neighbour e of query d, as one sentence."""
    kg = index.kg
    parts: list[str] = []
    genes = np.array(kg.target_genes, dtype=object)
    shared = genes[kg.targets[d] & kg.targets[e]] if genes.size else []
    if len(shared):
        parts.append(f"shares target{'s' if len(shared) > 1 else ''} {_fmt_list(list(shared))}")
    if kg.same_mechanism[d, e]:
        moa = index.mechanism.at[e, "moa"] or "mechanism node"
        parts.append(f"same mechanism ({moa})")
    tags_d, tags_e = index.mechanism.at[d, "tags"], index.mechanism.at[e, "tags"]
    shared_tags = [t for t in tags_d if t in tags_e]
    progs = [p for p in index.mechanism.at[d, "programs"] if p in index.mechanism.at[e, "programs"]]
    if shared_tags:
        parts.append(f"both {_fmt_list(shared_tags, 3)}" + (f" ({', '.join(progs)})" if progs else ""))
    elif progs:
        parts.append(f"both act on {', '.join(progs)}")
    if not len(shared) and kg.proximity[d, e] > 0 and genes.size:
        td, te = np.flatnonzero(kg.targets[d]), np.flatnonzero(kg.targets[e])
        sub = kg.gene_proximity[np.ix_(td, te)]
        i, j = np.unravel_index(int(np.argmax(sub)), sub.shape)
        a, b = td[i], te[j]
        if kg.gene_ppi[a, b]:
            parts.append(f"target {genes[a]} interacts with {genes[b]}")
        elif sub[i, j] > 0:
            common = (kg.gene_pathways[a].multiply(kg.gene_pathways[b])).nonzero()[1]
            if common.size:
                p = common[np.argmin(kg.pathway_sizes[common])]
                parts.append(
                    f"targets {genes[a]} and {genes[b]} share pathway '{kg.pathway_names[p]}' "
                    f"({kg.pathway_sizes[p]} genes)"
                )
    if kg.opposite[d, e] and (len(shared) or kg.proximity[d, e] > 0):
        parts.append("but opposite action (inhibitor vs activator)")
    sim = float(index.tanimoto[d, e]) if index.fp_valid[d] and index.fp_valid[e] else None
    if not parts:
        parts.append("no shared target, mechanism or program known; ranked by chemical similarity")
    if sim is not None:
        parts.append(f"Tanimoto {sim:.2f}")
    text = "; ".join(parts)
    return "Rule-based evidence: " + text + "."


@dataclass(frozen=True)
class _Pick:
    """Neighbour ``e`` of query ``q`` (cell line ``c``, drug ``d``), to be justified."""

    sd: SplitData
    c: int
    d: int
    e: int
    scores: Scores
    q: int

    @property
    def similarity(self) -> float | None:
        index = self.sd.index
        ok = index.fp_valid[self.d] and index.fp_valid[self.e]
        return float(index.tanimoto[self.d, self.e]) if ok else None

    @property
    def query_name(self) -> str:
        return self.sd.index.drugs[self.d]


def _why_llm(p: _Pick) -> str:
    text = (p.scores.justifications[p.q] if p.scores.justifications else {}).get(p.e, "")
    return text or "(the model gave no justification)"


def _why_chem(p: _Pick) -> str:
    return f"Structurally similar to {p.query_name}: Tanimoto {p.similarity:.2f} on Morgan fingerprints (r=2, 2048 bits)."


def _why_transcriptome(p: _Pick) -> str:
    mean, count = p.sd.transcriptome
    return (
        f"Responses correlate with {p.query_name}'s in other cell lines: mean r = {mean[p.c, p.d, p.e]:.2f} "
        f"over {int(count[p.c, p.d, p.e])} line(s)."
    )


def _why_oracle(p: _Pick) -> str:
    r = p.sd.correlations[p.c, p.d, p.e]
    return f"Oracle (ceiling): its response here correlates r = {r:.2f} with the true response."


def _why_residual_oracle(p: _Pick) -> str:
    r = p.scores.values[p.q, p.e]
    return (
        f"Residual oracle (ceiling of residual aggregation): its residual here correlates r = {r:.2f} "
        "with the query's true residual."
    )


def _why_chem_padding(p: _Pick) -> str:
    sim = p.similarity
    return (
        f"Hybrid chemistry padding: Tanimoto {sim:.2f} to {p.query_name} (Morgan r=2)."
        if sim is not None
        else "Hybrid chemistry padding."
    )


_JUSTIFICATIONS: dict[str, Callable[[_Pick], str]] = {
    "llm": _why_llm,
    "kg_mechanism": lambda p: _kg_justification(p.sd.index, p.d, p.e),
    "chem_knn_retrieval": _why_chem,
    "transcriptome_knn": _why_transcriptome,
    "random": lambda p: "Random pick (floor).",
    "oracle": _why_oracle,
    "residual_oracle": _why_residual_oracle,
}
"""Selector -> the sentence that justifies one of its neighbours."""

_FALLBACK_JUSTIFICATIONS: dict[int, Callable[[_Pick], str]] = {
    SOURCE_CHEM: _why_chem_padding,
    SOURCE_POOL: lambda p: (
        "Fallback: every pool drug is averaged (no selector or chemistry ranking was possible)."
    ),
}
"""Neighbour source other than the selector -> its sentence."""


def justify(sd: SplitData, selector: str, c: int, d: int, e: int, source: int, scores: Scores, q: int) -> str:
    """Why neighbour ``e`` (from ``source``) of query ``q`` (line ``c``, drug ``d``) was used."""
    pick = _Pick(sd, c, d, e, scores, q)
    if source == SOURCE_SELECTOR:
        return _JUSTIFICATIONS[selector](pick)
    return _FALLBACK_JUSTIFICATIONS[source](pick)
