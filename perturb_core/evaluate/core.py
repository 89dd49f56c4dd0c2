"""Evaluate CORE methods and baselines on a label set's test split: aggregate and per-gene metrics.

Methods (:data:`CORE_METHODS`) score every test (perturbation, gene) pair; the scores are
compared with the labels by :func:`perturb_core.metrics.classification_metrics` (aggregate
AUROC and AUPRC, macro per-gene AUROC over genes with both classes, predicted positive rate
at 0.5 against the true rate, Brier score), reliability bins and percentile-bootstrap 95%
intervals. Only training labels ever reach a method; test labels are read here, after scoring.

LLM methods make one call per pair, so ``max_pairs`` evaluates a seeded sample: whole genes
are drawn (seeded permutation) until the next gene would pass ``max_pairs`` pairs, so each
sampled gene keeps all its test perturbations and its per-gene AUROC stays defined. The same
sample is used for every method of a run.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from perturb_core.config import Settings
from perturb_core.data.registry import LabelSet
from perturb_core.errors import ValidationError, check_n_boot, check_seed
from perturb_core.evaluate._harness import (
    Progress,
    check_methods,
    check_positive_int,
    json_number,
    run_methods,
)
from perturb_core.evaluate._llm_stats import llm_stats
from perturb_core.evidence import (
    CoreIndex,
    VotingOptions,
    core_index,
    core_learned,
    core_reasoning,
    crossline_labels,
    estimate_reasoning,
    gene_frequency,
    isolated_llm,
    learned_index,
)
from perturb_core.kg import KnowledgeGraph
from perturb_core.llm import LLM
from perturb_core.metrics import (
    CLASSIFICATION_METRICS,
    bootstrap_classification,
    classification_metrics,
    macro_gene_auroc,
    reliability_curve,
)
from perturb_core.spec import MethodSpec, registry, resolve

__all__ = [
    "CONTRACT_KEYS",
    "CORE_METHODS",
    "CORE_NON_LLM_METHODS",
    "LLM_PAIR_LIMIT",
    "COREResult",
    "evaluate_core",
    "resolve_method",
    "sample_pairs",
]

CONTRACT_KEYS: tuple[str, ...] = tuple(k for k in CLASSIFICATION_METRICS if k != "brier")
"""Keys of each method in the ``core evaluate --json`` contract (DESIGN.md)."""

LLM_PAIR_LIMIT = 5000
"""LLM methods refuse to run on more pairs than this unless ``max_pairs`` says so explicitly."""

DEFAULT_N_BINS = 10


@dataclass(frozen=True, eq=False)
class _Run:
    """What a method needs: the label set, graph, the pairs to score, and shared resources."""

    labels: LabelSet
    graph: KnowledgeGraph
    pairs: pd.DataFrame  # pert, gene (str), pert_code, gene_code
    seed: int
    budget: int | None
    llm: Callable[[], LLM]
    progress: Callable[[int, int], None] | None
    others: Callable[[], tuple[LabelSet, ...]] = lambda: ()

    def index(
        self, *, include_leaky: bool = False, options: VotingOptions | None = None, crossline: bool = False
    ) -> CoreIndex:
        xl = self.others() if crossline else None
        return core_index(self.labels, self.graph, include_leaky=include_leaky, options=options, crossline=xl)


MethodFn = Callable[[_Run], pd.DataFrame]


def _voting(
    *, include_leaky: bool = False, options: VotingOptions | None = None, crossline: bool = False
) -> MethodFn:
    def run(r: _Run) -> pd.DataFrame:
        idx = r.index(include_leaky=include_leaky, options=options, crossline=crossline)
        s = idx.score(r.pairs["pert_code"].to_numpy(), r.pairs["gene_code"].to_numpy())
        out = pd.DataFrame({"score": s["score"].to_numpy(), "vote": s["vote"].to_numpy()})
        out.attrs["model"] = idx.model.to_dict()
        return out

    return run


def _learned(*, crossline: bool = False) -> MethodFn:
    def run(r: _Run) -> pd.DataFrame:
        model = core_learned(learned_index(r.labels, r.graph, crossline=r.others() if crossline else None))
        s = model.score(r.pairs["pert_code"].to_numpy(), r.pairs["gene_code"].to_numpy())
        out = pd.DataFrame({"score": s["score"].to_numpy()})
        out.attrs["model"] = model.to_dict()
        return out

    return run


def _gene_frequency(r: _Run) -> pd.DataFrame:
    return pd.DataFrame({"score": gene_frequency(r.labels).to_numpy()[r.pairs["gene_code"].to_numpy()]})


def _random(r: _Run) -> pd.DataFrame:
    return pd.DataFrame({"score": np.random.default_rng(r.seed).random(len(r.pairs))})


def _core_reasoning(r: _Run) -> pd.DataFrame:
    out = core_reasoning(
        r.labels,
        r.graph,
        r.pairs[["pert", "gene"]],
        llm=r.llm(),
        budget=r.budget,
        index=r.index(),
        progress=r.progress,
    )
    return out.drop(columns=["pert", "gene"]).reset_index(drop=True)


def _isolated_llm(r: _Run) -> pd.DataFrame:
    out = isolated_llm(
        r.labels, r.graph, r.pairs[["pert", "gene"]], llm=r.llm(), index=r.index(), progress=r.progress
    )
    return out.drop(columns=["pert", "gene"]).reset_index(drop=True)


CORE_METHODS: Mapping[str, MethodSpec[MethodFn]] = registry(
    MethodSpec(
        "gene_frequency",
        "baseline: gene frequency",
        "training response rate of the gene (same score for every perturbation; 0.5 per gene)",
        _gene_frequency,
    ),
    MethodSpec(
        "core_voting",
        "CORE-Voting (no LLM)",
        "weighted positive fraction of graph-related training evidence, shrunk toward the gene's "
        "training frequency; relation weights and shrinkage fitted by CV inside train",
        _voting(),
    ),
    MethodSpec(
        "core_voting_crossline",
        "CORE-Voting + cross-line evidence (no LLM)",
        "CORE-Voting with two more fitted evidence sources from the other PerturbQA lines' TRAINING "
        "labels: co_response (two knock-downs whose response profiles there agree; sum of cosines, "
        "top-k neighbours by CV) and same_knockdown (p itself measured there on g)",
        _voting(crossline=True),
    ),
    MethodSpec(
        "core_learned",
        "CORE-Learned: boosted model over the evidence (no LLM)",
        "gradient boosting over per-relation positive/negative/unmeasured evidence masses, the "
        "vote, gene-side smoothing, the gene prior and evidence size; fitted on out-of-fold "
        "training pairs, settings by CV inside train",
        _learned(),
    ),
    MethodSpec(
        "core_learned_crossline",
        "CORE-Learned + cross-line evidence (no LLM)",
        "CORE-Learned with the co_response relation's evidence and the other PerturbQA lines' "
        "TRAINING labels of the same knock-down (same pair, gene rate, knock-down strength)",
        _learned(crossline=True),
    ),
    MethodSpec(
        "core_voting_no_shrinkage",
        "ablation: CORE-Voting without shrinkage",
        "CORE-Voting with m = 0: the raw weighted positive fraction (the prior only without evidence)",
        _voting(options=VotingOptions(shrinkage=0.0)),
    ),
    MethodSpec(
        "core_voting_strict",
        "ablation: CORE-Voting, measured evidence only",
        "CORE-Voting with u = 0: unmeasured related perturbations cast no negative vote",
        _voting(options=VotingOptions(unmeasured=0.0)),
    ),
    MethodSpec(
        "core_voting_with_regulates",
        "ablation: CORE-Voting + leaky regulates",
        "CORE-Voting that also uses Gene-regulates-Gene, built from LINCS perturbation outcomes (leaky)",
        _voting(include_leaky=True),
    ),
    MethodSpec(
        "core_reasoning",
        "CORE-Reasoning (LLM)",
        "an LLM given the pair's context and its positive and negative evidence gives a probability; "
        "failures fall back to CORE-Voting",
        _core_reasoning,
        needs_llm=True,
    ),
    MethodSpec(
        "isolated_llm",
        "baseline: isolated LLM (plausibility)",
        "the same LLM asked about the pair with no evidence; failures fall back to gene frequency",
        _isolated_llm,
        needs_llm=True,
    ),
    MethodSpec(
        "random",
        "floor: random",
        "uniform random score in [0, 1] (seeded)",
        _random,
    ),
)
"""Every evaluable CORE method, by name (read-only). ``fn(run)`` returns a DataFrame with ``score``
(and optionally ``fallback``, ``error``, ``vote``), one row per pair in order."""

CORE_NON_LLM_METHODS: tuple[str, ...] = tuple(n for n, m in CORE_METHODS.items() if not m.needs_llm)
"""Methods that run without an LLM endpoint."""


@dataclass(frozen=True, eq=False)
class COREResult:
    """Results of :func:`evaluate_core`.

    Attributes:
        dataset: label dataset.
        task: ``de`` or ``dir``.
        methods: evaluated methods, in order.
        per_pair: one row per (method, pair): ``method, pert, gene, label, score`` plus
            ``fallback`` and ``error`` (LLM methods) and ``vote`` (voting methods).
        per_gene: one row per (method, gene): ``method, gene, auroc`` (NaN with one class), ``n``.
        reliability: ``method, bin, p_mean, y_rate, count`` (methods with scores in [0, 1]).
        summary: one row per (method, metric): ``method, metric, mean, ci_low, ci_high, n``
            (``mean`` is the point estimate; intervals for auroc, auprc, macro_gene_auroc, brier).
        metrics: method -> :func:`perturb_core.metrics.classification_metrics` dict.
        ci: method -> metric -> (low, high) bootstrap 95% interval.
        n_test_pairs: test pairs in the label set.
        max_pairs: the pair cap (``None``: all test pairs).
        seed: sample, random-method and bootstrap seed.
        n_boot: bootstrap replicates.
        models: method -> fitted CORE-Voting parameters (voting methods).
        elapsed_s: seconds per method.
        subset_note: says the pairs are a seeded subset (``limit``), ``None`` otherwise.
    """

    dataset: str
    task: str
    methods: tuple[str, ...]
    per_pair: pd.DataFrame = field(repr=False)
    per_gene: pd.DataFrame = field(repr=False)
    reliability: pd.DataFrame = field(repr=False)
    summary: pd.DataFrame = field(repr=False)
    metrics: dict[str, dict[str, float]] = field(repr=False)
    ci: dict[str, dict[str, tuple[float, float]]] = field(repr=False)
    n_test_pairs: int = 0
    max_pairs: int | None = None
    seed: int = 0
    n_boot: int = 200
    models: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    elapsed_s: dict[str, float] = field(default_factory=dict)
    subset_note: str | None = None

    def table(self) -> pd.DataFrame:
        """Wide table: one row per method, the :data:`~perturb_core.metrics.CLASSIFICATION_METRICS` columns."""
        return pd.DataFrame.from_dict(self.metrics, orient="index")[list(CLASSIFICATION_METRICS)].reindex(
            list(self.methods)
        )

    def to_dict(self) -> dict[str, Any]:
        """The ``core evaluate --json`` document: the DESIGN.md contract plus extra keys.

        ``methods[M]`` holds exactly the contract keys; extras are top-level siblings keyed by
        method: ``brier``, ``ci`` (metric -> [low, high]) and, for LLM methods, ``llm_calls``
        (``n_fallback``, ``n_failed``).
        """
        methods: dict[str, dict[str, Any]] = {}
        llm_calls: dict[str, dict[str, int]] = {}
        pp = self.per_pair.groupby("method", sort=False)
        for m in self.methods:
            d = {k: json_number(self.metrics[m][k]) for k in CONTRACT_KEYS}
            d["n_pairs"] = int(self.metrics[m]["n_pairs"])
            d["n_genes_macro"] = int(self.metrics[m]["n_genes_macro"])
            methods[m] = d
            if CORE_METHODS[m].needs_llm:
                g = pp.get_group(m)
                llm_calls[m] = {
                    "n_fallback": int(g["fallback"].eq(True).sum()),
                    "n_failed": int(g["error"].notna().sum()),
                }
        return {
            "dataset": self.dataset,
            "task": self.task,
            "methods": methods,
            "brier": {m: json_number(self.metrics[m]["brier"]) for m in self.methods},
            "ci": {
                m: {k: [json_number(lo), json_number(hi)] for k, (lo, hi) in self.ci[m].items()}
                for m in self.methods
            },
            "llm_calls": llm_calls,
            "labels": {m: CORE_METHODS[m].label for m in self.methods},
            "n_test_pairs": self.n_test_pairs,
            "max_pairs": self.max_pairs,
            "seed": self.seed,
            "n_boot": self.n_boot,
            "threshold": 0.5,
            "models": self.models,
            "elapsed_s": {m: round(v, 3) for m, v in self.elapsed_s.items()},
            "llm_stats": {
                m: _llm_stats(g, self.elapsed_s.get(m, 0.0)) for m, g in pp if CORE_METHODS[m].needs_llm
            },
            "subset": self.subset_note,
        }


def _llm_stats(g: pd.DataFrame, wall_time_s: float) -> dict[str, Any]:
    answered = g["raw"].notna()
    frame = pd.DataFrame(
        {
            "answered": answered,
            "parse_failure": answered & g["probability"].isna(),
            "answer_format_used": g["answer_format_used"],
            "prompt_tokens": g["prompt_tokens"],
            "completion_tokens": g["completion_tokens"],
            "cache_hit": g["cache_hit"],
        }
    )
    return llm_stats(frame, wall_time_s)


def resolve_method(name: str) -> str:
    """The method called ``name`` in any case/spacing (``Core-Voting`` -> ``core_voting``).

    Raises:
        UnknownNameError: an unknown name (the message lists the valid ones).
    """
    return resolve("CORE method", name, CORE_METHODS).name


def sample_pairs(test: pd.DataFrame, max_pairs: int | None, *, seed: int = 0) -> pd.DataFrame:
    """A seeded sample of whole genes holding at most ``max_pairs`` test pairs (all when ``None``).

    Genes are taken in a seeded random order while the running total of their pairs stays
    within ``max_pairs`` (at least one gene is always taken), so every sampled gene keeps
    all its test perturbations.

    Args:
        test: test pairs with a ``gene`` column.
        max_pairs: the cap (``None`` or >= the number of pairs: everything).
        seed: seed of the gene order.

    Returns:
        The sampled rows, in their original order.

    Raises:
        ValidationError: ``max_pairs`` < 1.
    """
    if max_pairs is None or max_pairs >= len(test):
        return test
    if max_pairs < 1:
        raise ValidationError(f"max_pairs = {max_pairs} must be >= 1 (or None for every test pair)")
    genes = test["gene"].astype(str)
    sizes = genes.value_counts().sort_index()
    order = np.random.default_rng(seed).permutation(len(sizes))
    cum = np.cumsum(sizes.to_numpy()[order])
    n_take = max(1, int(np.searchsorted(cum, max_pairs, side="right")))
    keep = set(sizes.index[order[:n_take]])
    return test[genes.isin(keep).to_numpy()]


def evaluate_core(
    labels: LabelSet,
    graph: KnowledgeGraph,
    *,
    methods: Sequence[str] | str = ("gene_frequency", "core_voting"),
    n_boot: int = 200,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    settings: Settings | None = None,
    llm: LLM | None = None,
    max_pairs: int | None = None,
    budget: int | None = 20,
    crossline: Sequence[LabelSet] | None = None,
    limit: int | None = None,
    on_estimate: Callable[[str, dict[str, Any]], None] | None = None,
) -> COREResult:
    """Score the test pairs of a label set with each method and compute the CORE metrics.

    Args:
        labels: the label set (task ``de`` or ``dir``; its test split is evaluated).
        graph: the knowledge graph.
        methods: names from :data:`CORE_METHODS` (a list or a comma-separated string).
        n_boot: bootstrap replicates of the 95% intervals.
        seed: seed of the pair sample, the ``random`` method and the bootstrap.
        progress: called as ``progress(done, total)`` in steps: one per non-LLM method plus
            one per pair of each LLM method.
        settings: settings used to build the LLM when ``llm`` is not given.
        llm: the model for LLM methods (default: :meth:`LLM.from_settings` on first use).
        max_pairs: evaluate a seeded sample of whole genes with at most this many test pairs
            (see :func:`sample_pairs`); required above :data:`LLM_PAIR_LIMIT` pairs for LLM methods.
        limit: then keep a seeded random subset of exactly this many pairs (the same for every
            method, so rows stay comparable; quick checks of LLM methods). Per-gene AUROC over so
            few pairs is mostly undefined.
        on_estimate: called as ``on_estimate(method, estimate)`` for each LLM method before any
            call is sent (see :func:`perturb_core.evidence.estimate_reasoning`).
        budget: evidence items per CORE-Reasoning prompt.
        crossline: the other lines' label sets for the cross-line methods (default: the other
            PerturbQA lines of the same task, :func:`~perturb_core.evidence.crossline_labels`;
            only their TRAINING rows are read).

    Returns:
        A :class:`COREResult`.

    Raises:
        UnknownNameError: an unknown method (closest names in the message).
        ValidationError: no test pairs, an LLM method on too many pairs, n_boot outside
            1..100,000 or seed outside 0 <= seed < 2**32.
        LLMError: an LLM method was asked for and no endpoint is configured (the message says how).
    """
    names = check_methods(methods, CORE_METHODS, "CORE method")
    n_boot = check_n_boot(n_boot)
    seed = check_seed(seed)
    t = labels.table
    test = t.loc[(t["split"] == "test").to_numpy(), ["pert", "gene", "label"]].reset_index(drop=True)
    if test.empty:
        raise ValidationError(f"{labels.name} ({labels.task}) has no test pairs to evaluate")
    sample = sample_pairs(test, max_pairs, seed=seed).reset_index(drop=True)
    check_positive_int("limit", limit, optional=True)
    subset = None
    if limit is not None and len(sample) > limit:
        keep = np.sort(np.random.default_rng(seed).choice(len(sample), size=limit, replace=False))
        subset = f"a seeded subset (seed {seed}) of {limit} of {len(sample):,} pairs"
        sample = sample.iloc[keep].reset_index(drop=True)
    llm_methods = [m for m in names if CORE_METHODS[m].needs_llm]
    if llm_methods and len(sample) > LLM_PAIR_LIMIT:
        raise ValidationError(
            f"{', '.join(llm_methods)} would make {len(sample):,} LLM calls (one per test pair); pass "
            f"max_pairs (--max-pairs), e.g. 500, to evaluate a seeded sample of genes (set it to "
            f"{len(sample)} or more to run them all)"
        )
    pairs = pd.DataFrame(
        {
            "pert": sample["pert"].astype(str).to_numpy(),
            "gene": sample["gene"].astype(str).to_numpy(),
            "pert_code": sample["pert"].cat.codes.to_numpy().astype(np.intp),
            "gene_code": sample["gene"].cat.codes.to_numpy().astype(np.intp),
        }
    )
    y = sample["label"].to_numpy().astype(np.float64)

    @functools.cache
    def get_llm() -> LLM:
        return llm if llm is not None else LLM.from_settings(settings)

    if llm_methods:
        get_llm()  # fail fast, before any other work, when no endpoint is configured

    genes = pairs["gene"].to_numpy()
    scored = pairs[["pert", "gene", "pert_code", "gene_code"]]

    @functools.cache
    def others() -> tuple[LabelSet, ...]:
        return tuple(crossline) if crossline is not None else crossline_labels(labels, settings)

    def run(m: str, step: Progress) -> pd.DataFrame:
        return CORE_METHODS[m].fn(_Run(labels, graph, scored, seed, budget, get_llm, step, others))

    if on_estimate is not None:
        for m in llm_methods:
            on_estimate(
                m,
                estimate_reasoning(
                    labels,
                    graph,
                    scored[["pert", "gene"]],
                    llm=get_llm(),
                    isolated=m == "isolated_llm",
                    budget=budget,
                ),
            )

    steps = [len(pairs) if CORE_METHODS[m].needs_llm else 1 for m in names]
    outputs, elapsed = run_methods(names, steps, run, progress)
    frames, per_gene, rel, metrics, ci, models = [], [], [], {}, {}, {}
    counts = pd.Series(genes).value_counts()
    for m, out in outputs.items():
        if "model" in out.attrs:
            models[m] = out.attrs["model"]
        score = out["score"].to_numpy(dtype=np.float64)
        frame = pd.DataFrame(
            {"method": m, "pert": pairs["pert"], "gene": pairs["gene"], "label": y.astype(np.int8)}
        )
        frames.append(pd.concat([frame, out.reset_index(drop=True)], axis=1))
        metrics[m] = classification_metrics(y, score, genes)
        ci[m] = bootstrap_classification(y, score, genes, n_boot=n_boot, seed=seed)
        g = macro_gene_auroc(y, score, genes)
        per_gene.append(
            pd.DataFrame(
                {
                    "method": m,
                    "gene": g.per_group.index.astype(str),
                    "auroc": g.per_group.to_numpy(),
                    "n": counts.reindex(g.per_group.index).to_numpy(),
                }
            )
        )
        if ((score >= 0) & (score <= 1)).all():
            rel.append(reliability_curve(y, score, n_bins=DEFAULT_N_BINS).assign(method=m))

    summary_rows = []
    for m in names:
        for metric in CLASSIFICATION_METRICS:
            lo, hi = ci[m].get(metric, (np.nan, np.nan))
            summary_rows.append(
                {
                    "method": m,
                    "metric": metric,
                    "mean": metrics[m][metric],
                    "ci_low": lo,
                    "ci_high": hi,
                    "n": len(pairs),
                }
            )
    reliability = (
        pd.concat(rel, ignore_index=True)[["method", "bin", "p_mean", "y_rate", "count"]]
        if rel
        else pd.DataFrame(columns=["method", "bin", "p_mean", "y_rate", "count"])
    )
    return COREResult(
        dataset=labels.name,
        task=labels.task,
        methods=names,
        per_pair=pd.concat(frames, ignore_index=True),
        per_gene=pd.concat(per_gene, ignore_index=True),
        reliability=reliability,
        summary=pd.DataFrame(summary_rows),
        metrics=metrics,
        ci=ci,
        n_test_pairs=len(test),
        max_pairs=max_pairs,
        seed=seed,
        n_boot=n_boot,
        models=models,
        elapsed_s=elapsed,
        subset_note=subset,
    )
