"""What biologists come for: the gene view, pathway enrichment of predictions, the signature query.

- :func:`gene_view` / :func:`gene_report`: which perturbations move one gene (signature
  response heatmap, PerturbQA knock-downs with labels and splits, CORE's per-gene AUROC,
  pathways and GO terms).
- :func:`enrich` / :func:`enrich_prediction` / :func:`lgr_enrichment`: hypergeometric
  over-representation (Benjamini-Hochberg) of gene lists against the graph's Reactome,
  WikiPathways, PID and GO gene sets; predicted vs observed top genes of an LGR prediction.
- :func:`connectivity` / :func:`signature_query`: Connectivity-Map-style query; every stored
  signature scored by CMap's weighted connectivity score (WTCS) against up/down genes.

Modules (private; import from here): ``_enrichment`` (gene sets, the test, the hide rule),
``_prediction`` (predicted vs observed), ``_connectivity`` (WTCS), ``_gene`` (the gene view),
``_run`` (entry points that load the data).
"""

from perturb_core.explore._connectivity import (
    CONNECTIVITY_REFERENCE,
    DEFAULT_RANKED_N,
    ConnectivityResult,
    GeneQuery,
    connectivity,
    enrichment_scores,
    parse_gene_list,
    parse_ranked_list,
    resolve_genes,
    wtcs,
)
from perturb_core.explore._enrichment import (
    DEFAULT_MAX_SIZE,
    DEFAULT_MIN_SIZE,
    ENRICHMENT_COLUMNS,
    GENE_SET_SOURCES,
    NONCODING_RULE,
    SOURCE_LABELS,
    GeneSets,
    GeneSetSource,
    check_sources,
    enrich,
    gene_sets,
    protein_coding_genes,
    significant,
    uninformative_genes,
)
from perturb_core.explore._gene import RESPONSE_THRESHOLD, GeneView, gene_view, resolve_gene_name
from perturb_core.explore._prediction import (
    DEFAULT_ALPHA,
    DEFAULT_N_TOP,
    HIDE_RULE,
    PredictionEnrichment,
    enrich_prediction,
    frame_of,
)
from perturb_core.explore._run import core_gene_auroc, gene_report, lgr_enrichment, signature_query

__all__ = [  # noqa: RUF022 (grouped by concept)
    # gene sets and enrichment
    "DEFAULT_MAX_SIZE",
    "DEFAULT_MIN_SIZE",
    "ENRICHMENT_COLUMNS",
    "GENE_SET_SOURCES",
    "NONCODING_RULE",
    "SOURCE_LABELS",
    "GeneSets",
    "GeneSetSource",
    "check_sources",
    "enrich",
    "gene_sets",
    "protein_coding_genes",
    "significant",
    "uninformative_genes",
    # predicted vs observed
    "DEFAULT_ALPHA",
    "DEFAULT_N_TOP",
    "HIDE_RULE",
    "PredictionEnrichment",
    "enrich_prediction",
    "frame_of",
    "lgr_enrichment",
    # signature query
    "CONNECTIVITY_REFERENCE",
    "DEFAULT_RANKED_N",
    "ConnectivityResult",
    "GeneQuery",
    "connectivity",
    "enrichment_scores",
    "parse_gene_list",
    "parse_ranked_list",
    "resolve_genes",
    "signature_query",
    "wtcs",
    # gene view
    "RESPONSE_THRESHOLD",
    "GeneView",
    "core_gene_auroc",
    "gene_report",
    "gene_view",
    "resolve_gene_name",
]
