"""perturb_core: LLM- and knowledge-graph-based perturbation reasoning on real public data.

Two methods with their baselines: LGR (LLM-Guided Retrieval: predict a drug's expression
change in a cell line from retrieved neighbour drugs) and CORE (Contrastive Organization of
Relational Evidence: does gene g respond to perturbation p, from knowledge-graph evidence).

Public names are imported lazily (``import perturb_core`` stays fast and needs neither
RDKit nor the OpenAI client until they are used).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS: dict[str, tuple[str, ...]] = {
    # errors, settings, specs
    "perturb_core.spec": ("MethodSpec",),
    "perturb_core.errors": (
        "PerturbCoreError",
        "ConfigError",
        "DataError",
        "NotBuiltError",
        "ValidationError",
        "UnknownNameError",
        "LLMError",
    ),
    "perturb_core.config": ("Settings", "get_settings"),
    # data: fetch, build, load, import
    "perturb_core.data.fetch": ("fetch",),
    "perturb_core.data.build": ("build", "ensure_data", "is_built"),
    "perturb_core.data.registry": (
        "SignatureDataset",
        "LabelSet",
        "DrugTable",
        "list_datasets",
        "load_signatures",
        "load_labels",
        "load_drugs",
    ),
    "perturb_core.data.importer": ("import_dataset",),
    "perturb_core.data.upload": ("import_upload",),
    "perturb_core.pseudobulk": ("pseudobulk", "pseudobulk_dataset", "PSEUDOBULK_UNITS"),
    "perturb_core.data.info": ("data_info",),
    # knowledge graph and chemistry
    "perturb_core.kg": ("KnowledgeGraph", "load_graph"),
    "perturb_core.chem": (
        "to_mol",
        "canonical_smiles",
        "morgan_fingerprints",
        "tanimoto_matrix",
        "depict_svg",
        "parent_key",
        "parent_groups",
        "collapse_salt_forms",
    ),
    # LLM layer
    "perturb_core.llm": (
        "LLM",
        "LLMResponse",
        "ResponseCache",
        "Exchange",
        "run_batch",
        "get_client",
        "test_connection",
    ),
    # LGR
    "perturb_core.retrieval": (
        "SELECTORS",
        "SELECTOR_LABELS",
        "REGIMES",
        "QueryExplanation",
        "lgr_index",
        "predict_query",
        "parse_llm_answer",
        "BASELINES",
        "predict_baseline",
        "PROGRAMS",
        "mechanism_tags",
        "programs_of",
    ),
    "perturb_core.evaluate.lgr": ("LGR_METHODS", "LGRResult", "evaluate_lgr"),
    # CORE
    "perturb_core.evidence": (
        "CoreIndex",
        "EvidenceExplanation",
        "core_index",
        "explain",
        "predict_core_voting",
        "gene_frequency",
        "core_reasoning",
        "isolated_llm",
        "parse_probability",
    ),
    "perturb_core.evaluate.core": ("CORE_METHODS", "COREResult", "evaluate_core"),
    # gene view, pathway enrichment, signature query
    "perturb_core.explore": (
        "GeneView",
        "gene_report",
        "PredictionEnrichment",
        "lgr_enrichment",
        "ConnectivityResult",
        "signature_query",
    ),
    # side-by-side comparison of two LGR predictions
    "perturb_core.compare": ("Comparison", "compare_predictions"),
    # metrics
    "perturb_core.serialize": ("to_jsonable", "dumps"),
    "perturb_core.metrics": (
        "METRICS",
        "MetricSpec",
        "metric",
        "METRIC_DEFINITIONS",
        "regression_metrics",
        "classification_metrics",
        "macro_gene_auroc",
        "summarise",
    ),
}

_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [name for names in _EXPORTS.values() for name in names]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'perturb_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
