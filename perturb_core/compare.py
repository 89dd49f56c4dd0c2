"""Two LGR predictions side by side: two selectors on one query, two drugs in one line, one drug in two lines.

:func:`compare_predictions` explains both predictions with
:func:`~perturb_core.retrieval.predict_query` and lays out what differs: the neighbours each
side picked (shared, with both ranks, and those of one side only), every metric on both sides
with the better side named, how alike the two predictions and the two observed responses are,
the overlap of their top genes, and a list of the differences worth reading first.

Everything a number means is stated with it: Pearson r between two predictions (or two
observed responses) is computed over the evaluation genes both sides share, in the dataset's
delta units (inverse-normal rank scores for Tahoe), and is dimensionless.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from perturb_core.config import Settings, get_settings
from perturb_core.errors import ValidationError
from perturb_core.metrics import METRICS, REGRESSION_METRICS, RETRIEVAL_METRICS
from perturb_core.retrieval import DEFAULT_K, QueryExplanation, predict_query

if TYPE_CHECKING:
    from perturb_core.data.registry import DrugTable, SignatureDataset
    from perturb_core.kg import KnowledgeGraph
    from perturb_core.llm import LLM

__all__ = [
    "COMPARE_MODES",
    "COMPARE_MODE_LABELS",
    "Comparison",
    "compare_predictions",
    "infer_mode",
]

COMPARE_MODES = ("selectors", "drugs", "cell_lines")
"""What a comparison varies: the selector (same query), the drug (same line), or the line (same drug)."""
COMPARE_MODE_LABELS = {
    "selectors": "two selectors on the same query",
    "drugs": "two drugs in one cell line",
    "cell_lines": "one drug in two cell lines",
}
METRIC_NAMES = (*REGRESSION_METRICS, *RETRIEVAL_METRICS)
N_TOP = 10
"""Genes per direction in the top-gene overlap."""
NOTABLE = 0.05
"""A metric difference flagged as notable: at least 0.05 in the metric's own unit (r, cosine, fractions)."""


def infer_mode(a: Mapping[str, str], b: Mapping[str, str]) -> str:
    """Which of :data:`COMPARE_MODES` two queries (``cell_line``, ``drug``, ``selector``) form.

    Raises:
        ValidationError: the queries are identical, or differ in more than one of the three.
    """
    differs = [f for f in ("selector", "drug", "cell_line") if a[f] != b[f]]
    if not differs:
        raise ValidationError(
            f"both sides are the same query ({a['drug']} in {a['cell_line']} with {a['selector']}); "
            "change the second selector, drug or cell line"
        )
    if len(differs) > 1:
        raise ValidationError(
            f"the two queries differ in {' and '.join(differs)}; a comparison varies one thing: "
            "the selector (same query), the drug (same cell line) or the cell line (same drug)"
        )
    return {"selector": "selectors", "drug": "drugs", "cell_line": "cell_lines"}[differs[0]]


def _r(x: np.ndarray, y: np.ndarray) -> float | None:
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.std(x[ok]) == 0 or np.std(y[ok]) == 0:
        return None
    return float(np.corrcoef(x[ok], y[ok])[0, 1])


def _aligned(a: QueryExplanation, b: QueryExplanation) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Indices of the evaluation genes both explanations share (in ``a``'s order)."""
    genes_b = {g: i for i, g in enumerate(map(str, b.genes))}
    common = [(i, genes_b[g]) for i, g in enumerate(map(str, a.genes)) if g in genes_b]
    names = [str(a.genes[i]) for i, _ in common]
    ia = np.array([i for i, _ in common], dtype=np.intp)
    ib = np.array([j for _, j in common], dtype=np.intp)
    return names, ia, ib


@dataclass(frozen=True, eq=False)
class Comparison:
    """Two explained LGR predictions and what differs between them (``to_dict`` is ``lgr compare --json``).

    Attributes:
        mode: one of :data:`COMPARE_MODES`.
        left, right: the two :class:`~perturb_core.retrieval.QueryExplanation`.
    """

    mode: str
    left: QueryExplanation
    right: QueryExplanation

    @property
    def label(self) -> str:
        """What is compared, in words."""
        return COMPARE_MODE_LABELS[self.mode]

    @staticmethod
    def side_label(ex: QueryExplanation) -> str:
        """``"Trametinib in C32, kg_mechanism"``."""
        return f"{ex.drug} in {ex.cell_line}, {ex.selector}"

    def neighbours(self) -> dict[str, Any]:
        """Neighbour overlap: shared names with both ranks, names of one side only, Jaccard index."""
        ra = {n.name: n.rank for n in self.left.neighbours}
        rb = {n.name: n.rank for n in self.right.neighbours}
        shared = sorted(set(ra) & set(rb), key=lambda n: (ra[n] + rb[n], ra[n]))
        union = set(ra) | set(rb)
        return {
            "shared": [{"name": n, "rank_left": ra[n], "rank_right": rb[n]} for n in shared],
            "only_left": [n for n in ra if n not in rb],
            "only_right": [n for n in rb if n not in ra],
            "n_left": len(ra),
            "n_right": len(rb),
            "jaccard": len(shared) / len(union) if union else None,
        }

    def metrics(self) -> dict[str, dict[str, Any]]:
        """Per metric: both values, right − left, the better side (``"left"``, ``"right"``, ``"tie"``, ``None``)."""
        out: dict[str, dict[str, Any]] = {}
        for m in METRIC_NAMES:
            a, b = self.left.metrics.get(m), self.right.metrics.get(m)
            diff = None if a is None or b is None else float(b) - float(a)
            better = None
            direction = METRICS[m].higher_is_better
            if diff is not None and direction is not None:
                better = "tie" if abs(diff) < 1e-12 else ("right" if (diff > 0) == direction else "left")
            out[m] = {
                "left": a,
                "right": b,
                "difference": diff,
                "better": better,
                "notable": diff is not None and abs(diff) >= NOTABLE,
                "label": METRICS[m].label,
                "unit": METRICS[m].unit,
            }
        return out

    def similarity(self) -> dict[str, Any]:
        """Pearson r of the two predictions and of the two observed responses over shared evaluation genes."""
        genes, ia, ib = _aligned(self.left, self.right)
        return {
            "n_genes": len(genes),
            "prediction_pearson": _r(self.left.prediction[ia], self.right.prediction[ib]),
            "observed_pearson": _r(self.left.truth[ia], self.right.truth[ib]),
        }

    def top_gene_overlap(self, n: int = N_TOP) -> dict[str, dict[str, list[str]]]:
        """Genes in both sides' top-n lists, per direction, for the predictions and for the observations."""
        out: dict[str, dict[str, list[str]]] = {}
        ta, tb = self.left.top_genes(n), self.right.top_genes(n)
        for direction in ("up", "down"):
            pa, pb = ta[ta["direction"] == direction], tb[tb["direction"] == direction]
            out[direction] = {
                kind: sorted(set(pa[f"{kind}_gene"]) & set(pb[f"{kind}_gene"]))
                for kind in ("predicted", "observed")
            }
        return out

    def differences(self) -> list[str]:
        """The differences worth reading first, as sentences (empty when the two agree on everything shown)."""
        a, b = self.left, self.right
        la, lb = self.side_label(a), self.side_label(b)
        notes: list[str] = []
        nb = self.neighbours()
        if nb["only_left"] or nb["only_right"]:
            notes.append(
                f"{len(nb['shared'])} of {max(nb['n_left'], nb['n_right'])} neighbours shared "
                f"(Jaccard {nb['jaccard']:.2f}); only left: {', '.join(nb['only_left']) or '—'}; "
                f"only right: {', '.join(nb['only_right']) or '—'}"
            )
        for row in self.metrics().values():
            if row["notable"] and row["better"] in ("left", "right"):
                side = la if row["better"] == "left" else lb
                notes.append(
                    f"{row['label']}: {row['left']:.3f} vs {row['right']:.3f} "
                    f"(difference {row['difference']:+.3f}); better: {side}"
                )
        if a.k_used != b.k_used:
            notes.append(f"k_used differs: {a.k_used} ({la}) vs {b.k_used} ({lb})")
        for ex, lab in ((a, la), (b, lb)):
            if ex.fallback:
                notes.append(f"{lab} fell back: {ex.fallback}")
        if a.pool_size != b.pool_size:
            notes.append(f"candidate pools differ in size: {a.pool_size} vs {b.pool_size} drugs")
        if self.mode == "drugs":
            qa, qb = a.query, b.query
            if set(qa.targets) != set(qb.targets):
                shared = sorted(set(qa.targets) & set(qb.targets))
                notes.append(
                    f"targets differ: {a.drug} {', '.join(qa.targets) or '—'}; {b.drug} "
                    f"{', '.join(qb.targets) or '—'} (shared: {', '.join(shared) or 'none'})"
                )
            if (qa.moa or "") != (qb.moa or ""):
                notes.append(f"mechanism differs: {qa.moa or 'unknown'} vs {qb.moa or 'unknown'}")
        sim = self.similarity()
        if self.mode != "selectors" and sim["observed_pearson"] is not None:
            notes.append(
                f"observed responses correlate at r = {sim['observed_pearson']:.3f} over {sim['n_genes']} shared genes"
            )
        if self.mode == "selectors" and sim["prediction_pearson"] is not None:
            notes.append(
                f"the two predictions correlate at r = {sim['prediction_pearson']:.3f} over {sim['n_genes']} genes"
            )
        return notes

    def to_dict(self, *, n_top_genes: int = N_TOP) -> dict[str, Any]:
        """The ``lgr compare --json`` document: both explanations (as ``lgr predict --json``) and the comparison."""
        return {
            "mode": self.mode,
            "mode_label": self.label,
            "left": self.left.to_dict(n_top_genes=n_top_genes),
            "right": self.right.to_dict(n_top_genes=n_top_genes),
            "neighbours": self.neighbours(),
            "metrics": self.metrics(),
            "similarity": self.similarity(),
            "top_gene_overlap": self.top_gene_overlap(n_top_genes),
            "differences": self.differences(),
        }


def compare_predictions(
    ds: SignatureDataset | str,
    *,
    cell_line: str,
    drug: str,
    selector: str,
    cell_line_b: str | None = None,
    drug_b: str | None = None,
    selector_b: str | None = None,
    k: int = DEFAULT_K,
    aggregation: str | None = None,
    regime: str = "open-world",
    seed: int = 0,
    settings: Settings | None = None,
    llm: LLM | None = None,
    drugs: DrugTable | None = None,
    graph: KnowledgeGraph | None = None,
) -> Comparison:
    """Explain two LGR predictions that differ in one thing and compare them.

    The left side is (``cell_line``, ``drug``, ``selector``); the right side takes each of
    ``cell_line_b``, ``drug_b``, ``selector_b`` that is given, and the left's value otherwise.
    Exactly one of the three may differ (see :func:`infer_mode`). Both sides share k,
    aggregation, regime and seed.

    Args:
        ds: a SignatureDataset or dataset name.
        cell_line, drug, selector: the left query (any spelling).
        cell_line_b, drug_b, selector_b: what the right query changes.
        k, aggregation, regime, seed: as in :func:`~perturb_core.retrieval.predict_query`.
        settings, llm, drugs, graph: passed on to ``predict_query``.

    Returns:
        The :class:`Comparison`.

    Raises:
        ValidationError: both sides the same query, or more than one thing changed; any error
            of ``predict_query`` (unknown names with the closest known ones, drug not profiled
            in that line, bad k).
    """
    settings = settings or get_settings()
    if isinstance(ds, str):
        from perturb_core.data.registry import load_signatures

        ds = load_signatures(ds, settings)
    common: dict[str, Any] = {
        "k": k,
        "aggregation": aggregation,
        "regime": regime,
        "seed": seed,
        "settings": settings,
        "llm": llm,
        "drugs": drugs,
        "graph": graph,
    }
    left_q = {"cell_line": cell_line, "drug": drug, "selector": selector}
    right_q = {
        "cell_line": cell_line if cell_line_b is None else cell_line_b,
        "drug": drug if drug_b is None else drug_b,
        "selector": selector if selector_b is None else selector_b,
    }
    # resolve spellings first so "nci h23" vs "NCI-H23" is not a difference
    resolved = []
    for q in (left_q, right_q):
        c = ds.resolve_cell_line(q["cell_line"])
        resolved.append({"cell_line": c, "drug": ds.resolve_drug(q["drug"]), "selector": q["selector"]})
    mode = infer_mode(*resolved)
    left = predict_query(ds, **resolved[0], **common)
    right = predict_query(ds, **resolved[1], **common)
    return Comparison(mode=mode, left=left, right=right)
