"""One-call entry points that load the data they need (what the CLI calls; the app passes loaded objects)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import pandas as pd

from perturb_core.config import Settings, get_settings
from perturb_core.data.build import PERTURBQA_LINES
from perturb_core.data.registry import LabelSet, load_drugs, load_labels, load_signatures
from perturb_core.errors import PerturbCoreError, check_choice
from perturb_core.explore._connectivity import ConnectivityResult, connectivity
from perturb_core.explore._enrichment import gene_sets, protein_coding_genes
from perturb_core.explore._gene import GeneView, gene_view
from perturb_core.explore._prediction import PredictionEnrichment, enrich_prediction
from perturb_core.kg import KnowledgeGraph, load_graph

__all__ = ["core_gene_auroc", "gene_report", "lgr_enrichment", "signature_query"]


def core_gene_auroc(labels: Sequence[LabelSet], graph: KnowledgeGraph, gene: str) -> pd.DataFrame:
    """CORE-Voting's AUROC over the TEST pairs of ``gene`` in each label set (``line, auroc, n_test``).

    Uses the package's own per-gene AUROC (:meth:`perturb_core.evidence.CoreIndex.gene_auroc`:
    CORE-Voting fitted on the training split, scored on the test split); label sets without
    test pairs for the gene are skipped.
    """
    from perturb_core.evidence import core_index

    rows = []
    for ls in labels:
        table = core_index(ls, graph).gene_auroc()
        if gene in table.index:
            a, n = table.loc[gene, "auroc"], table.loc[gene, "n"]
            rows.append(
                {
                    "line": ls.cell_line,
                    "dataset": ls.name,
                    "auroc": None if a != a else float(a),
                    "n_test": int(n),
                }
            )
    return pd.DataFrame(rows, columns=["line", "dataset", "auroc", "n_test"])


def gene_report(
    gene: str,
    *,
    dataset: str | None = "tahoe",
    lines: Sequence[str] = PERTURBQA_LINES,
    with_core_auroc: bool = True,
    settings: Settings | None = None,
    progress: Callable[[str], None] | None = None,
) -> GeneView:
    """The gene view of ``gene`` loading everything from ``settings`` (the ``gene`` command).

    Args:
        gene: symbol or Ensembl id, any case.
        dataset: signature dataset (``None``: skip the response table).
        lines: PerturbQA lines to search (``k562``, ``rpe1``, ``hepg2``, ``jurkat``).
        with_core_auroc: compute CORE-Voting's per-gene AUROC (fits CORE once per line, seconds).
        settings: where the data lives.
        progress: called with a short message before each slow step.

    Raises:
        UnknownNameError: unknown gene, dataset or line.
    """
    settings = settings or get_settings()
    say = progress or (lambda _m: None)
    lines = [check_choice("PerturbQA line", ln, PERTURBQA_LINES) for ln in lines]
    say("loading the signatures, labels and graph")
    ds = load_signatures(dataset, settings) if dataset else None
    graph = load_graph(settings)
    de = [load_labels(f"perturbqa-{ln}", "de", settings) for ln in lines]
    dr = [load_labels(f"perturbqa-{ln}", "dir", settings) for ln in lines]
    try:
        drugs = load_drugs(settings)
    except PerturbCoreError:
        drugs = None
    view = gene_view(gene, ds=ds, de_sets=de, dir_sets=dr, sets=gene_sets(graph), drugs=drugs)
    if with_core_auroc and de:
        say("CORE-Voting per-gene AUROC (fits once per line)")
        view = replace(view, core_auroc=core_gene_auroc(de, graph, view.gene))
    return view


def signature_query(
    up: Sequence[str] = (),
    down: Sequence[str] = (),
    *,
    dataset: str = "tahoe",
    cell_line: str | None = None,
    settings: Settings | None = None,
) -> ConnectivityResult:
    """:func:`~perturb_core.explore.connectivity` with the dataset and drug table loaded (the ``connectivity`` command)."""
    settings = settings or get_settings()
    ds = load_signatures(dataset, settings)
    try:
        drugs = load_drugs(settings)
    except PerturbCoreError:
        drugs = None
    return connectivity(ds, up, down, cell_line=cell_line, drugs=drugs)


def lgr_enrichment(
    explanation: object,
    *,
    graph: KnowledgeGraph | None = None,
    sources: Sequence[str] | None = None,
    n_top: int = 50,
    hide_uninformative: bool = False,
    min_size: int = 5,
    max_size: int = 500,
    alpha: float = 0.05,
    settings: Settings | None = None,
) -> PredictionEnrichment:
    """Enrichment of a :class:`~perturb_core.retrieval.QueryExplanation` (its ``genes``,
    ``prediction`` and ``truth``) against the graph's gene sets (the ``lgr enrich`` command)."""
    graph = graph or load_graph(settings or get_settings())
    return enrich_prediction(
        explanation.genes,  # type: ignore[attr-defined]
        explanation.prediction,  # type: ignore[attr-defined]
        explanation.truth,  # type: ignore[attr-defined]
        gene_sets(graph, sources),
        n_top=n_top,
        hide_uninformative=hide_uninformative,
        coding=protein_coding_genes(graph) if hide_uninformative else None,
        min_size=min_size,
        max_size=max_size,
        alpha=alpha,
    )
