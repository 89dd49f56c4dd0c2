"""Tiny CORE fixtures built in code: an 11-node knowledge graph and a label set over it, with hand-computed priors.

The graph (:func:`tiny_graph`) has genes A..F (the perturbations, knocked down), G1..G3 (the
readout genes), a pathway P1 = {A, B, C}, a GO process shared by E and F, the interaction
A - D and the (leaky) regulation B -> E. The labels (:data:`TINY_ROWS`, :func:`tiny_labels`)
give training outcomes of B..F on G1 and G2 and test pairs of A on G1..G3, so with the fixed
weights of :func:`fixed` every vote and score can be computed by hand:

- (A, G1): B +1 (pathway, weight 1), D +1 (interacts, weight 3), C -1 (pathway, 1): vote 0.8;
- (A, G2): D +1 (3), B -1 (1), C unmeasured (1): vote 0.75;
- (A, G3): no training outcome anywhere: no vote, the score is the prior :data:`F_G3`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from perturb_core.data.registry import LabelSet
from perturb_core.evidence import VotingOptions
from perturb_core.kg import KnowledgeGraph

__all__ = [
    "FIXED",
    "F_G1",
    "F_G2",
    "F_G3",
    "OTHER_ROWS",
    "PRIOR_PSEUDOCOUNT",
    "TINY_ROWS",
    "Row",
    "fixed",
    "tiny_graph",
    "tiny_labels",
    "tiny_other_line",
]

Row = tuple[str, str, int, str]
"""One labelled pair: ``(perturbation, gene, label 0/1, split "train"/"test")``."""

TINY_ROWS: tuple[Row, ...] = (
    # pert, gene, label, split
    ("B", "G1", 1, "train"),
    ("B", "G2", 0, "train"),
    ("C", "G1", 0, "train"),
    ("D", "G1", 1, "train"),
    ("D", "G2", 1, "train"),
    ("E", "G1", 0, "train"),
    ("E", "G2", 0, "train"),
    ("F", "G1", 1, "train"),
    ("A", "G1", 1, "test"),
    ("A", "G2", 0, "test"),
    ("A", "G3", 0, "test"),
)
"""The labels of :func:`tiny_labels`: training outcomes of B..F, test pairs of A."""

FIXED: tuple[tuple[str, float], ...] = (("interacts", 1.0), ("shared_pathway", 1.0))
"""Fixed relation weights of :func:`fixed`: only interacts and shared_pathway, no fitting."""

PRIOR_PSEUDOCOUNT = VotingOptions().prior_pseudocount
"""The default pseudo-count ``a`` of the gene prior (0.5)."""

_A = PRIOR_PSEUDOCOUNT
# prior of the tiny set: G1 3/5 positive, G2 1/3, G3 unlabelled; global training rate 4/8
F_G1 = (3 + _A * 0.5) / (5 + _A)
"""Gene prior ``f`` of G1 in :func:`tiny_labels` (3 of 5 training pairs positive)."""
F_G2 = (1 + _A * 0.5) / (3 + _A)
"""Gene prior ``f`` of G2 (1 of 3 positive)."""
F_G3 = (0 + _A * 0.5) / (0 + _A)
"""Gene prior ``f`` of G3 (no training pair: the global rate 0.5)."""


def tiny_graph() -> KnowledgeGraph:
    """Genes A..F (perturbations), G1..G3 (readouts); pathway P1 = {A, B, C}; A interacts D.

    Also a GO process shared by E and F and the leaky ``regulates`` edge B -> E.
    """
    genes = ["A", "B", "C", "D", "E", "F", "G1", "G2", "G3"]
    nodes = pd.DataFrame(
        {
            "id": [f"gene:{g}" for g in genes] + ["pathway:P1", "go:GO:1"],
            "name": [*genes, "Pathway one", "process one"],
            "kind": ["gene"] * len(genes) + ["pathway", "go_term"],
            "detail": [""] * len(genes) + ["reactome", "biological_process"],
        }
    )
    edges = pd.DataFrame(
        {
            "src": ["gene:A", "gene:B", "gene:C", "gene:A", "gene:E", "gene:F", "gene:B"],
            "dst": ["pathway:P1", "pathway:P1", "pathway:P1", "gene:D", "go:GO:1", "go:GO:1", "gene:E"],
            "relation": ["in_pathway"] * 3 + ["interacts", "annotated_with", "annotated_with", "regulates"],
        }
    )
    return KnowledgeGraph.from_tables(nodes, edges)


def tiny_labels(rows: Sequence[Row] | None = None, task: Literal["de", "dir"] = "de") -> LabelSet:
    """A knock-down label set ``tiny`` (cell line ``TINY``) over perturbations A..F and genes G1..G3.

    Args:
        rows: the labelled pairs (default :data:`TINY_ROWS`).
        task: ``de`` or ``dir`` (the labels are used as given).

    Returns:
        A new :class:`~perturb_core.data.registry.LabelSet` (with its own empty memo).
    """
    df = pd.DataFrame(list(rows or TINY_ROWS), columns=["pert", "gene", "label", "split"])
    table = pd.DataFrame(
        {
            "pert": pd.Categorical(df["pert"], categories=list("ABCDEF")),
            "gene": pd.Categorical(df["gene"], categories=["G1", "G2", "G3"]),
            "label": df["label"].astype(np.int8),
            "split": pd.Categorical(df["split"], categories=["test", "train"]),
        }
    )
    return LabelSet("tiny", task, table, "TINY", "knockdown")


OTHER_ROWS: tuple[Row, ...] = (
    ("A", "G1", 1, "train"),
    ("A", "G2", 1, "train"),
    ("A", "G3", 0, "train"),
    ("B", "G1", 1, "train"),
    ("B", "G2", 1, "train"),
    ("C", "G3", 1, "train"),
    ("D", "G1", 1, "train"),
    ("D", "G3", 0, "train"),
    ("E", "G1", 1, "test"),
    ("E", "G2", 1, "test"),
)
"""Another line's labels for cross-line evidence (:func:`tiny_other_line`): A responds with G1 and
G2 like B (cosine 1), D shares G1 (cosine 1/sqrt 2), C shares nothing; E is a TEST perturbation
there, so its profile (identical to A's) must never relate it to A."""


def tiny_other_line(rows: Sequence[Row] | None = None, task: Literal["de", "dir"] = "de") -> LabelSet:
    """A second knock-down line ``tiny-other`` over A..F and G1..G3 (default :data:`OTHER_ROWS`)."""
    base = tiny_labels(rows or OTHER_ROWS, task)
    return LabelSet("tiny-other", task, base.table, "OTHER", "knockdown")


def fixed(m: float = 1.0, u: float = 0.0) -> VotingOptions:
    """Voting options with the :data:`FIXED` weights, shrinkage ``m``, unmeasured weight ``u``,
    two folds and no calibration: scores follow the formula exactly."""
    return VotingOptions(weights=FIXED, shrinkage=m, unmeasured=u, n_folds=2, calibrate=False)
