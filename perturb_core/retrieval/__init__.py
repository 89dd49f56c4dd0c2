"""LGR (LLM-guided retrieval): index, splits and pools, prompt and parsing, selectors, aggregation, explanation, baselines, mechanism tags.

The prediction for an unmeasured (cell line c, drug d) pair is the mean of the measured deltas
``Δ[c, e]`` of k neighbour drugs e taken from the candidate pool of c (drugs measured in c,
never d itself, restricted by the regime). A *selector* ranks the pool:

- ``llm``: a language model reads the LGR prompt (:func:`render_lgr_prompt`) and answers a
  numbered list inside ``<Final Answer>``; :func:`parse_llm_answer` keeps valid pool names.
- ``kg_mechanism`` (rule-based, no LLM): shared targets, shared mechanism node, shared
  mechanism tags and programs, graph proximity of targets; chemistry breaks ties.
- ``chem_knn_retrieval``: Tanimoto similarity of Morgan fingerprints (not the paper's ``chem_knn``
  baseline, which averages the neighbours' drug means over training lines; the old selector name
  ``chem_knn`` still resolves, with a note: :func:`deprecated_selector_note`).
- ``transcriptome_knn``: correlation of the drugs' responses in OTHER (training) cell lines.
- ``random`` (a floor), ``oracle`` (the ceiling of plain averaging: correlation with the true
  response) and ``residual_oracle`` (the ceiling of residual aggregation).

Aggregation (:data:`AGGREGATIONS`): the paper's plain mean, a rank-weighted mean, or
``residual``: the two-way additive baseline (drug + line effects) plus the mean of the
neighbours' residuals from their own additive fits; similarity weights ``s^p`` optional.

When a selector yields fewer than ``hybrid_min_k`` valid neighbours (or cannot rank at all),
the neighbours are padded with chemistry neighbours (or, without a structure, the whole
pool is averaged); every such fallback is recorded per query.

Everything here is vectorised over queries: a :class:`SplitData` holds the (cell line, drug,
gene) delta tensor on the evaluation genes of one split, and predictions are one sparse
matrix product. :func:`predict_query` explains one prediction for the app and the CLI.

Modules: ``_options`` (regimes, aggregations, defaults), ``_index`` (:func:`lgr_index`),
``_splits`` (splits, pools, :class:`SplitData`), ``_prompt`` (prompt, parsing, LLM trace),
``_selectors`` (:data:`SELECTORS`), ``_aggregate`` (hybrid selection, aggregation),
``_justify`` and ``_explain`` (:func:`predict_query`), :mod:`~perturb_core.retrieval.baselines`
(with ``_ridge``) and :mod:`~perturb_core.retrieval.mechanism`.
"""

from perturb_core.retrieval._aggregate import (
    Selection,
    aggregate,
    oracle_neighbours,
    residual_available,
    select_neighbours,
    weights,
)
from perturb_core.retrieval._explain import (
    TOP_GENE_COLUMNS,
    Neighbour,
    QueryDrug,
    QueryExplanation,
    predict_query,
    top_genes,
)
from perturb_core.retrieval._index import KGEvidence, LGRIndex, blas_threads, lgr_index
from perturb_core.retrieval._options import (
    AGGREGATION_DEFINITIONS,
    AGGREGATION_LABELS,
    AGGREGATIONS,
    DEFAULT_AGGREGATION,
    DEFAULT_HYBRID_MIN_K,
    DEFAULT_K,
    DEFAULT_SIMILARITY_POWER,
    N_EVAL_GENES,
    NEIGHBOUR_LOG,
    REGIME_LABELS,
    REGIMES,
    Aggregation,
    Regime,
    SelectorName,
    check_aggregation,
    check_power,
    check_regime,
    default_aggregation,
)
from perturb_core.retrieval._prompt import (
    LLMTrace,
    ParsedAnswer,
    neighbour_log_path,
    parse_llm_answer,
    render_lgr_prompt,
    resolve_llm,
)
from perturb_core.retrieval._selectors import (
    DEPRECATED_SELECTORS,
    SELECTOR_DEFINITIONS,
    SELECTOR_LABELS,
    SELECTORS,
    Scores,
    SelectOptions,
    SelectorFn,
    check_selector,
    deprecated_selector_note,
    estimate_llm_selector,
)
from perturb_core.retrieval._splits import (
    Split,
    SplitData,
    candidate_pool,
    make_split,
    query_split,
    split_data,
)
from perturb_core.retrieval.baselines import (
    BASELINE_DEFINITIONS,
    BASELINE_LABELS,
    BASELINES,
    AdditiveTerms,
    BaselineData,
    BaselineFn,
    BaselineName,
    BaselinePrediction,
    RidgeMoments,
    RidgeReference,
    additive,
    additive_terms,
    cell_mean,
    check_baseline,
    chem_knn,
    drug_mean,
    pca_ridge,
    pool_mean,
    predict_baseline,
)
from perturb_core.retrieval.mechanism import (
    PROGRAMS,
    TAG_RULES,
    DrugMechanism,
    Program,
    TagRule,
    annotate_drugs,
    drug_mechanism,
    is_adme_gene,
    mechanism_tags,
    mechanism_targets,
    programs_of,
    tag_coverage,
)

__all__ = [  # noqa: RUF022 (grouped by concept, sorted within a group)
    # choices and defaults
    "AGGREGATIONS",
    "AGGREGATION_DEFINITIONS",
    "AGGREGATION_LABELS",
    "DEFAULT_AGGREGATION",
    "DEFAULT_HYBRID_MIN_K",
    "DEFAULT_SIMILARITY_POWER",
    "DEFAULT_K",
    "NEIGHBOUR_LOG",
    "N_EVAL_GENES",
    "REGIMES",
    "REGIME_LABELS",
    "Aggregation",
    "Regime",
    "check_aggregation",
    "check_power",
    "check_regime",
    "default_aggregation",
    # dataset index
    "KGEvidence",
    "LGRIndex",
    "blas_threads",
    "lgr_index",
    # splits and pools
    "Split",
    "SplitData",
    "candidate_pool",
    "make_split",
    "query_split",
    "split_data",
    # LLM prompt and parsing
    "LLMTrace",
    "ParsedAnswer",
    "neighbour_log_path",
    "parse_llm_answer",
    "render_lgr_prompt",
    "resolve_llm",
    # selectors
    "SELECTORS",
    "SELECTOR_DEFINITIONS",
    "SELECTOR_LABELS",
    "Scores",
    "SelectOptions",
    "SelectorFn",
    "SelectorName",
    "check_selector",
    "DEPRECATED_SELECTORS",
    "deprecated_selector_note",
    "estimate_llm_selector",
    # selection and aggregation
    "Selection",
    "aggregate",
    "oracle_neighbours",
    "residual_available",
    "select_neighbours",
    "weights",
    # one-query explanation
    "TOP_GENE_COLUMNS",
    "Neighbour",
    "QueryDrug",
    "QueryExplanation",
    "predict_query",
    "top_genes",
    # baselines
    "BASELINES",
    "BASELINE_DEFINITIONS",
    "BASELINE_LABELS",
    "BaselineData",
    "BaselineFn",
    "BaselineName",
    "BaselinePrediction",
    "AdditiveTerms",
    "RidgeMoments",
    "RidgeReference",
    "additive",
    "additive_terms",
    "cell_mean",
    "check_baseline",
    "chem_knn",
    "drug_mean",
    "pca_ridge",
    "pool_mean",
    "predict_baseline",
    # mechanism tags and programs
    "PROGRAMS",
    "TAG_RULES",
    "DrugMechanism",
    "Program",
    "TagRule",
    "annotate_drugs",
    "drug_mechanism",
    "is_adme_gene",
    "mechanism_tags",
    "mechanism_targets",
    "programs_of",
    "tag_coverage",
]
