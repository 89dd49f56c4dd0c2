"""CORE (Contrastive Organization of Relational Evidence): knowledge-graph evidence, CORE-Voting, CORE-Reasoning.

For a query (perturbation p, gene g) the evidence is every TRAINING perturbation p' related
to p in the knowledge graph (never p itself, never a test label), split by what g did under
p': positive (g responded / went up), negative (g was measured and did not respond / went
down) and unmeasured (p' is a training perturbation but g was not among its measured genes).

Each relation r gives a sparse P x P weight matrix ``W_r`` over the dataset's perturbations
(zero diagonal), scaled so that its mean row sum is 1. CORE-Voting combines them with fitted
relation weights ``w_r`` into ``K = sum_r w_r W_r`` and, for every query pair at once
(gathers of K at the gene's labelled training entries and bincounts, no per-pair loop)::

    pos = K[p] . Y+[:, g]        neg = K[p] . Y0[:, g]        unm = K[p] . (1 - M[:, g])
    tot = pos + neg + u * unm                     vote = pos / tot
    v   = (pos + m * pi_g) / (tot + m)            (shrunk toward the gene's prior)
    score = sigmoid(logit f_g + logit v - logit pi_g)

``f_g`` is the gene's training response rate (pseudo-count ``a`` toward the global rate),
``pi_g`` the same rate on the vote's scale (unmeasured pairs counted with weight ``u``), ``m``
the shrinkage strength and ``u`` the weight of an unmeasured related perturbation as a
negative vote. ``w_r``, ``m`` and ``u`` are fitted on the training split only, by
cross-validation over training perturbations (coordinate ascent on a grid maximising the
mean over folds of the macro per-gene AUROC). See ``docs/core.md``.

CORE-Reasoning gives the same contrastive evidence to a language model; the isolated
("plausibility") baseline asks the model about the pair with no evidence.

Modules (private; import from here):

- ``_options``: :class:`VotingOptions`, the fitted :class:`CoreVoting`.
- ``_relations``: relation specs and matrices from the graph (:func:`build_relations`).
- ``_labels``: training label matrices and the vectorised vote.
- ``_fit``: :func:`fit_core_voting` (cross-validation inside train).
- ``_index``: :class:`CoreIndex`, :func:`core_index`, :func:`predict_core_voting`, :func:`gene_frequency`.
- ``_crossline``: the ``co_response`` relation and per-pair features from other lines' training labels.
- ``_learned``: :class:`CoreLearned` (:func:`core_learned`), a boosted model over the evidence.
- ``_explain``: :func:`explain` and :class:`EvidenceExplanation`.
- ``_items``: its typed parts: :class:`EvidenceItem`, :class:`GeneFrequency`, :class:`EvidenceGraph`
  (:class:`GraphNode`, :class:`GraphEdge`).
- ``_prompts``: the LLM prompts and :func:`parse_answer`.
- ``_reasoning``: :func:`core_reasoning` and :func:`isolated_llm`.
"""

from perturb_core.evidence._crossline import (
    CROSSLINE_LABEL,
    CROSSLINE_RELATION,
    CROSSLINE_SAME,
    CROSSLINE_SAME_LABEL,
    CROSSLINE_TOP_K_GRID,
    SameKnockdown,
    crossline_labels,
    crossline_pair_features,
)
from perturb_core.evidence._explain import EvidenceExplanation, explain
from perturb_core.evidence._fit import fit_core_voting
from perturb_core.evidence._index import CoreIndex, core_index, gene_frequency, predict_core_voting
from perturb_core.evidence._items import (
    EvidenceGraph,
    EvidenceItem,
    GeneFrequency,
    GraphEdge,
    GraphNode,
    Role,
    Side,
)
from perturb_core.evidence._learned import (
    CoreLearned,
    LearnedOptions,
    core_learned,
    fit_core_learned,
    learned_index,
)
from perturb_core.evidence._options import CoreVoting, VotingOptions
from perturb_core.evidence._prompts import (
    ParsedAnswer,
    parse_answer,
    parse_probability,
    render_core_prompt,
    render_isolated_prompt,
)
from perturb_core.evidence._reasoning import (
    DEFAULT_BUDGET,
    REASONING_COLUMNS,
    core_reasoning,
    estimate_reasoning,
    isolated_llm,
)
from perturb_core.evidence._relations import (
    DRUG_RELATIONS,
    KNOCKDOWN_RELATIONS,
    RELATION_SPECS,
    Relation,
    RelationSpec,
    build_relations,
    default_relations,
)

__all__ = [  # noqa: RUF022 (grouped, not sorted)
    # options and the fitted model
    "VotingOptions",
    "CoreVoting",
    # relations
    "Relation",
    "RelationSpec",
    "RELATION_SPECS",
    "KNOCKDOWN_RELATIONS",
    "DRUG_RELATIONS",
    "build_relations",
    "default_relations",
    # fitting, the index and batch scoring (CORE-Voting, gene frequency)
    "fit_core_voting",
    "CoreIndex",
    "core_index",
    "predict_core_voting",
    "gene_frequency",
    # cross-line evidence (other PerturbQA lines' TRAINING labels)
    "CROSSLINE_LABEL",
    "CROSSLINE_RELATION",
    "CROSSLINE_SAME",
    "CROSSLINE_SAME_LABEL",
    "CROSSLINE_TOP_K_GRID",
    "SameKnockdown",
    "crossline_labels",
    "crossline_pair_features",
    # CORE-Learned (a boosted model over the evidence)
    "LearnedOptions",
    "CoreLearned",
    "core_learned",
    "fit_core_learned",
    "learned_index",
    # explaining one prediction
    "EvidenceExplanation",
    "EvidenceItem",
    "EvidenceGraph",
    "GeneFrequency",
    "GraphEdge",
    "GraphNode",
    "Role",
    "Side",
    "explain",
    # CORE-Reasoning and the isolated LLM baseline
    "DEFAULT_BUDGET",
    "REASONING_COLUMNS",
    "estimate_reasoning",
    "ParsedAnswer",
    "core_reasoning",
    "isolated_llm",
    "parse_answer",
    "parse_probability",
    "render_core_prompt",
    "render_isolated_prompt",
]
