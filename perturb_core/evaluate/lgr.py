"""Evaluate LGR selectors and baselines on a regime's seeded split: per-query metrics and bootstrap means.

Methods (:data:`METHODS`) are the LGR selectors (the prediction is the mean of the selected
neighbours' deltas in the query's cell line) and the DESIGN.md baselines. ``chem_knn`` is the
paper's chemistry baseline (mean of the k nearest training drugs' drug means, no cell line);
LGR with the ``chem_knn`` *selector* (Tanimoto neighbours inside the query's cell line) is the
method ``chem_knn_retrieval``.

Metrics are computed per query on the ``N_EVAL_GENES`` (2,000) most variable genes of the
split's training deltas (genes missing in the truth or the prediction are excluded), then
averaged over queries with percentile-bootstrap 95% intervals.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from perturb_core.config import Settings, get_settings
from perturb_core.data.registry import load_signatures
from perturb_core.errors import check_k, check_n_boot, check_seed
from perturb_core.evaluate._harness import (
    Progress,
    check_methods,
    check_positive_int,
    interval_table,
    json_number,
    run_methods,
)
from perturb_core.evaluate._llm_stats import LLM_COLUMNS, lgr_llm_columns, llm_stats
from perturb_core.llm import LLM
from perturb_core.metrics import (
    REGRESSION_METRICS,
    RETRIEVAL_METRICS,
    regression_metrics,
    retrieval_quality,
    summarise,
)
from perturb_core.retrieval import (
    BASELINES,
    DEFAULT_HYBRID_MIN_K,
    DEFAULT_K,
    DEFAULT_SIMILARITY_POWER,
    N_EVAL_GENES,
    SELECTORS,
    Aggregation,
    Regime,
    SelectOptions,
    Split,
    SplitData,
    aggregate,
    blas_threads,
    check_power,
    check_regime,
    default_aggregation,
    estimate_llm_selector,
    lgr_index,
    make_split,
    neighbour_log_path,
    oracle_neighbours,
    predict_baseline,
    residual_available,
    resolve_llm,
    select_neighbours,
    split_data,
)
from perturb_core.spec import MethodSpec, registry

if TYPE_CHECKING:
    from perturb_core.data.registry import DrugTable
    from perturb_core.kg import KnowledgeGraph

__all__ = [
    "LGR_METHODS",
    "LGR_NON_LLM_METHODS",
    "METHODS",
    "NON_LLM_METHODS",
    "QUERY_METRICS",
    "LGRResult",
    "MethodSpec",
    "Runner",
    "TunedChoice",
    "evaluate_lgr",
    "make_split",
]

MethodKind = Literal["selector", "baseline"]

QUERY_METRICS: tuple[str, ...] = (*REGRESSION_METRICS, *RETRIEVAL_METRICS)
"""Per-query columns summarised for every method (retrieval quality is NaN for baselines)."""


@dataclass(frozen=True)
class _MethodOutput:
    prediction: NDArray[np.float64]
    k_used: NDArray[np.float64]
    n_used: NDArray[np.float64]
    fallback: tuple[str | None, ...]
    error: tuple[str | None, ...]
    neighbours: NDArray[np.intp] | None = None
    llm: pd.DataFrame | None = None


@dataclass(frozen=True)
class _RunContext:
    sd: SplitData
    cells: NDArray[np.intp]
    drugs: NDArray[np.intp]
    k: int
    seed: int
    aggregation: str
    similarity_power: float
    hybrid_min_k: int
    llm: LLM | None
    settings: Settings
    progress: Callable[[int, int], None] | None


def _run_selector(selector: str, ctx: _RunContext) -> _MethodOutput:
    needs_llm = SELECTORS[selector].needs_llm
    opts = SelectOptions(
        k=ctx.k,
        seed=ctx.seed,
        llm=ctx.llm if needs_llm else None,
        progress=ctx.progress if needs_llm else None,
        log_path=neighbour_log_path(ctx.llm, ctx.settings) if needs_llm else None,
    )
    sel = select_neighbours(ctx.sd, ctx.cells, ctx.drugs, selector, opts, hybrid_min_k=ctx.hybrid_min_k)
    pred = aggregate(
        ctx.sd,
        ctx.cells,
        sel,
        ctx.aggregation,  # type: ignore[arg-type]
        similarity_power=ctx.similarity_power,
    )
    traces = sel.scores.traces or (None,) * ctx.cells.size
    errors = tuple(t.error if t is not None else None for t in traces)
    fallback = sel.fallback
    if ctx.aggregation == "residual":
        ok = residual_available(ctx.sd, ctx.cells, ctx.drugs)
        note = "drug unmeasured in other training lines: plain mean instead of residual"
        fallback = tuple(
            f if o else (f"{f}; {note}" if f else note) for f, o in zip(fallback, ok, strict=True)
        )
    llm_cols = lgr_llm_columns(traces, sel.k_used) if needs_llm else None
    k_used = sel.k_used.astype(np.float64)
    return _MethodOutput(
        pred, k_used, sel.n_used.astype(np.float64), fallback, errors, sel.order[:, : ctx.k], llm_cols
    )


def _run_baseline(baseline: str, ctx: _RunContext) -> _MethodOutput:
    res = predict_baseline(baseline, ctx.sd.baseline_data, ctx.cells, ctx.drugs, k=ctx.k, seed=ctx.seed)
    return _MethodOutput(res.prediction, res.k_used, res.k_used, res.fallback, (None,) * ctx.cells.size)


_RUNNERS: dict[str, Callable[[str, _RunContext], _MethodOutput]] = {
    "selector": _run_selector,
    "baseline": _run_baseline,
}


@dataclass(frozen=True)
class Runner:
    """How an evaluable method runs: the ``fn`` of its :class:`~perturb_core.spec.MethodSpec`.

    Attributes:
        kind: ``"selector"`` (LGR retrieval with a selector of
            :data:`perturb_core.retrieval.SELECTORS`, then aggregation) or ``"baseline"`` (a
            baseline of :data:`perturb_core.retrieval.BASELINES`).
        target: the selector or baseline it runs.
    """

    kind: MethodKind
    target: str

    def __call__(self, ctx: _RunContext) -> _MethodOutput:
        """Predict the context's queries."""
        return _RUNNERS[self.kind](self.target, ctx)


def _selector_method(name: str, selector: str) -> MethodSpec[Runner]:
    spec = SELECTORS[selector]
    return MethodSpec(name, spec.label, spec.definition, Runner("selector", selector), spec.needs_llm)


def _baseline_method(baseline: str) -> MethodSpec[Runner]:
    spec = BASELINES[baseline]
    return MethodSpec(baseline, spec.label, spec.definition, Runner("baseline", baseline), spec.needs_llm)


METHODS: Mapping[str, MethodSpec[Runner]] = registry(
    _selector_method("llm", "llm"),
    _selector_method("kg_mechanism", "kg_mechanism"),
    _selector_method("chem_knn_retrieval", "chem_knn_retrieval"),
    _selector_method("transcriptome_knn", "transcriptome_knn"),
    _selector_method("random", "random"),
    _selector_method("oracle", "oracle"),
    _selector_method("residual_oracle", "residual_oracle"),
    *(_baseline_method(b) for b in BASELINES),
)
"""Every evaluable LGR method, by name; label and definition come from the selector or baseline
it runs, ``fn`` is its :class:`Runner`. ``chem_knn`` is the paper's baseline; ``chem_knn_retrieval``
is LGR with the chemistry selector."""

LGR_METHODS = METHODS
"""Alias of :data:`METHODS` (the name re-exported by :mod:`perturb_core.evaluate`)."""

NON_LLM_METHODS: tuple[str, ...] = tuple(n for n, m in METHODS.items() if not m.needs_llm)
"""Methods that run without an LLM endpoint (the default of ``lgr evaluate``)."""

LGR_NON_LLM_METHODS = NON_LLM_METHODS
"""Alias of :data:`NON_LLM_METHODS` (the name re-exported by :mod:`perturb_core.evaluate`)."""


@dataclass(frozen=True, eq=False)
class LGRResult:
    """Results of :func:`evaluate_lgr`.

    Attributes:
        dataset: dataset name.
        regime: the regime.
        k: neighbours per query.
        seed: split and method seed.
        aggregation: ``"mean"``, ``"rank_weighted"`` or ``"residual"``.
        hybrid_min_k: chemistry padding threshold.
        n_boot: bootstrap replicates of the intervals.
        methods: evaluated methods, in order.
        split: the split (held-out drugs or lines, split id).
        per_query: one row per (method, query): method, cell_line, drug, k_used, n_neighbours,
            fallback, error, k, similarity_power, the regression metrics (with ``r2_pred``)
            and the retrieval quality ``precision_at_k``, ``mrr`` (NaN for baselines).
        summary: one row per (method, metric): mean, ci_low, ci_high, n.
        n_eval_genes: genes the metrics use.
        max_queries: the query cap (``None``: all test pairs).
        elapsed_s: seconds per method.
        similarity_power: p of the similarity weights s^p (untuned methods).
        tuning: cross-validation choices of k and p (``tune=True``), from training data only.
        subset_note: says the queries are a seeded subset of the test pairs (``None``: all of them).
    """

    dataset: str
    regime: str
    k: int
    seed: int
    aggregation: str
    hybrid_min_k: int
    n_boot: int
    methods: tuple[str, ...]
    split: Split
    per_query: pd.DataFrame = field(repr=False)
    summary: pd.DataFrame = field(repr=False)
    n_eval_genes: int = N_EVAL_GENES
    max_queries: int | None = None
    elapsed_s: dict[str, float] = field(default_factory=dict)
    similarity_power: float = 0.0
    tuning: tuple[TunedChoice, ...] = ()
    subset_note: str | None = None

    def tuning_table(self) -> pd.DataFrame:
        """The cross-validation choices (empty without ``tune``): one row per method and group."""
        cols = ["method", "applies_to", "k", "similarity_power", "cv_pearson", "n_cv_queries"]
        return pd.DataFrame([vars(c) for c in self.tuning], columns=cols)

    def table(self) -> pd.DataFrame:
        """Wide table: one row per method, one column per metric mean (plus n_queries, mean_k_used)."""
        wide = self.summary.pivot(index="method", columns="metric", values="mean").reindex(self.methods)
        wide = wide[list(QUERY_METRICS)]
        grouped = self.per_query.groupby("method", sort=False)
        wide["n_queries"] = grouped.size().reindex(self.methods)
        wide["mean_k_used"] = grouped["k_used"].mean().reindex(self.methods)
        return wide

    def to_dict(self) -> dict[str, Any]:
        """The ``lgr evaluate --json`` document (the DESIGN.md contract plus extra keys)."""
        table = self.table()
        methods: dict[str, dict[str, Any]] = {}
        pq = self.per_query.groupby("method", sort=False)
        for m in self.methods:
            row = table.loc[m]
            methods[m] = {metric: json_number(row[metric]) for metric in QUERY_METRICS}
            methods[m]["n_queries"] = int(row["n_queries"])
            methods[m]["mean_k_used"] = json_number(row["mean_k_used"])
            methods[m]["fallbacks"] = int(pq.get_group(m)["fallback"].notna().sum())
        return {
            "dataset": self.dataset,
            "regime": self.regime,
            "k": self.k,
            "methods": methods,
            "ci": interval_table(self.summary, self.methods, QUERY_METRICS),
            "labels": {m: METHODS[m].label for m in self.methods},
            "fallbacks": {m: int(pq.get_group(m)["fallback"].notna().sum()) for m in self.methods},
            "failed": {m: int(pq.get_group(m)["error"].notna().sum()) for m in self.methods},
            "seed": self.seed,
            "split_id": self.split.split_id,
            "held_out": list(self.split.held_out),
            "aggregation": self.aggregation,
            "similarity_power": self.similarity_power,
            "tuning": [vars(c) for c in self.tuning],
            "hybrid_min_k": self.hybrid_min_k,
            "n_boot": self.n_boot,
            "n_eval_genes": self.n_eval_genes,
            "max_queries": self.max_queries,
            "test_fraction": self.split.test_fraction,
            "elapsed_s": {m: round(v, 3) for m, v in self.elapsed_s.items()},
            "llm_stats": {
                m: llm_stats(g, self.elapsed_s.get(m, 0.0), k_used=g["k_used"])
                for m, g in pq
                if METHODS[m].needs_llm
            },
            "subset": self.subset_note,
        }


CV_K_GRID: tuple[int, ...] = (5, 10, 20, 30)
"""Values of k tried by the cross-validation of :func:`evaluate_lgr` (``tune=True``)."""
CV_POWER_GRID: tuple[float, ...] = (0.0, 1.0, 2.0, 4.0, 8.0)
"""Similarity powers p (weights s^p) tried for selectors with a similarity (others: p = 0)."""
CV_FOLDS = 4
"""Folds of training cell lines (or drugs) of the cross-validation."""


@dataclass(frozen=True)
class TunedChoice:
    """A hyper-parameter choice made by cross-validation on training data only.

    Attributes:
        method: the method tuned.
        applies_to: which test queries use it (``"all"``, or the open-world fold's lines).
        k: chosen number of neighbours.
        similarity_power: chosen p of the weights s^p.
        cv_pearson: mean Pearson r over the CV queries at the chosen values.
        n_cv_queries: CV queries (training pairs playing the test role).
    """

    method: str
    applies_to: str
    k: int
    similarity_power: float
    cv_pearson: float
    n_cv_queries: int


def _cv_groups(split: Split, seed: int) -> list[tuple[NDArray[np.bool_], str, list[Split]]]:
    """Inner CV splits built from training pairs only, and the test pairs each group's choice applies to.

    unseen-cell-line: 4 folds of training lines (a fold's lines play the held-out lines);
    unseen-drug: 4 folds of training drugs; open world: 4 folds of lines, the queries of
    fold f use choices tuned on the open world of the other lines (nested, so no query's
    own line is seen while choosing its hyper-parameters).
    """
    rng = np.random.default_rng(seed + 1)
    n_c, n_d = split.train.shape
    if split.regime == "unseen-drug":
        drugs = np.flatnonzero(split.train.any(0))
        inner = []
        for f, members in enumerate(np.array_split(rng.permutation(drugs), CV_FOLDS)):
            if members.size == 0:
                continue
            held = np.zeros(n_d, dtype=bool)
            held[members] = True
            inner.append(
                replace(
                    split,
                    train=split.train & ~held[None, :],
                    test=split.train & held[None, :],
                    pool_drugs=split.pool_drugs & ~held,
                    held_out=tuple(split.drugs[i] for i in members),
                    split_id=f"{split.split_id}-cv{f}",
                )
            )
        return [(split.test, "all", inner)]
    lines = np.flatnonzero(split.train.any(1))
    folds = [f for f in np.array_split(rng.permutation(lines), CV_FOLDS) if f.size]
    if split.regime == "unseen-cell-line":
        inner = []
        for f, members in enumerate(folds):
            held = np.zeros(n_c, dtype=bool)
            held[members] = True
            inner.append(
                replace(
                    split,
                    train=split.train & ~held[:, None],
                    test=split.train & held[:, None],
                    held_out=tuple(split.cell_lines[i] for i in members),
                    split_id=f"{split.split_id}-cv{f}",
                )
            )
        return [(split.test, "all", inner)]
    groups = []
    for f, members in enumerate(folds):
        held = np.zeros(n_c, dtype=bool)
        held[members] = True
        rest = split.train & ~held[:, None]
        inner_split = replace(split, train=rest, test=rest, split_id=f"{split.split_id}-ow{f}")
        label = "lines " + ", ".join(split.cell_lines[i] for i in members)
        groups.append((split.test & held[:, None], label, [inner_split]))
    return groups


def _tune(
    name: str, groups: list[tuple[NDArray[np.bool_], str, list[Split]]], index: Any, ctx: _RunContext
) -> list[tuple[NDArray[np.bool_], TunedChoice]]:
    """Choose k and p for one selector method by mean Pearson r over the inner CV queries."""
    selector = METHODS[name].fn.target
    out = []
    for applies, label, inner in groups:
        scores: dict[tuple[int, float], list[NDArray[np.float64]]] = {}
        for sp in inner:
            sd = split_data(index, sp)
            qc, qd = np.nonzero(sp.test)
            truth = sd.deltas[qc, qd]
            cached = None
            for k in CV_K_GRID:
                opts = SelectOptions(k=k, seed=ctx.seed)
                sel = select_neighbours(
                    sd, qc, qd, selector, opts, hybrid_min_k=ctx.hybrid_min_k, scores=cached
                )
                cached = sel.scores
                powers = CV_POWER_GRID if sel.scores.similarity else (0.0,)
                for p in powers:
                    pred = aggregate(sd, qc, sel, ctx.aggregation, similarity_power=p)  # type: ignore[arg-type]
                    r = regression_metrics(pred, truth)["pearson"].to_numpy()
                    scores.setdefault((k, p), []).append(r)
        means = {key: float(np.nanmean(np.concatenate(v))) for key, v in scores.items()}
        best = max(means, key=lambda key: (means[key], -key[0], -key[1]))
        n_cv = int(sum(len(r) for r in scores[best]))
        out.append((applies, TunedChoice(name, label, best[0], best[1], means[best], n_cv)))
    return out


def evaluate_lgr(
    ds: Any,
    *,
    regime: Regime,
    methods: Sequence[str] | str,
    k: int = DEFAULT_K,
    seed: int = 0,
    aggregation: Aggregation | None = None,
    similarity_power: float = DEFAULT_SIMILARITY_POWER,
    tune: bool = False,
    n_boot: int = 1000,
    progress: Callable[[int, int], None] | None = None,
    settings: Settings | None = None,
    llm: LLM | None = None,
    max_queries: int | None = None,
    hybrid_min_k: int = DEFAULT_HYBRID_MIN_K,
    test_fraction: float = 0.2,
    concurrency: int | None = None,
    drugs: DrugTable | None = None,
    graph: KnowledgeGraph | None = None,
    on_estimate: Callable[[str, dict[str, Any]], None] | None = None,
) -> LGRResult:
    """Evaluate LGR methods on the test pairs of a seeded split.

    Args:
        ds: a SignatureDataset or dataset name (``"tahoe"``, ``"sciplex"``, ``"openproblems"``, an import).
        regime: ``"unseen-drug"``, ``"unseen-cell-line"`` or ``"open-world"`` (see :func:`make_split`).
        methods: names from :data:`METHODS` (a list or a comma-separated string).
        k: neighbours per query (with ``tune``: of the baselines and the ``llm`` method only).
        seed: seed of the split, the query subsample, ``random``, PCA and the bootstrap.
        aggregation: ``"mean"`` (paper), ``"rank_weighted"`` or ``"residual"``; ``None``: the
            regime's default (:data:`~perturb_core.retrieval.DEFAULT_AGGREGATION`: residual
            where the query drug was measured in other lines, the plain mean for unseen drugs).
        similarity_power: weights s^p for selectors with a similarity (0: uniform).
        tune: choose k and similarity_power of every non-LLM selector method by 4-fold
            cross-validation over the split's TRAINING cell lines (unseen cell line, open
            world: nested over lines) or drugs (unseen drug); the test pairs are used once,
            at the end. The choices are in ``LGRResult.tuning``.
        n_boot: bootstrap replicates for the 95% intervals.
        progress: ``progress(done, total)`` in queries over all methods.
        settings: data location and (when ``llm`` is ``None``) the LLM endpoint.
        llm: the model of the ``llm`` method (default: built from settings).
        max_queries: evaluate a seeded random subset of at most this many test pairs.
        hybrid_min_k: chemistry padding threshold (see :func:`perturb_core.retrieval.select_neighbours`).
        test_fraction: fraction of drugs or cell lines held out.
        concurrency: parallel LLM requests (overrides ``[llm] concurrency``).
        drugs: the drug table (default: loaded from ``settings``; see :func:`~perturb_core.retrieval.lgr_index`).
        graph: the knowledge graph of ``kg_mechanism`` (default: loaded from ``settings`` when needed).
        on_estimate: called as ``on_estimate(method, estimate)`` for each LLM method before any
            call is sent (see :func:`perturb_core.llm.estimate_batch`).

    Returns:
        The :class:`LGRResult`.

    Raises:
        UnknownNameError: an unknown method, regime or aggregation (the message lists the valid ones).
        ValidationError: bad k (1..1000), seed (0 <= seed < 2**32), n_boot (1..100,000),
            max_queries or split parameters.
        LLMError: ``llm`` requested but no endpoint configured. Individual failed LLM calls
            never raise: they are recorded (``error`` column) and fall back to chemistry.
    """
    names = check_methods(methods, METHODS, "LGR method")
    regime = check_regime(regime)
    aggregation = default_aggregation(regime, aggregation)
    similarity_power = check_power(similarity_power)
    k = check_k(k)
    seed = check_seed(seed)
    n_boot = check_n_boot(n_boot)
    check_positive_int("max_queries", max_queries, optional=True)
    check_positive_int("concurrency", concurrency, optional=True)
    settings = settings or get_settings()
    model = None
    if any(METHODS[m].needs_llm for m in names):
        model = resolve_llm(llm, settings)
        if concurrency is not None:
            model = replace(model, concurrency=concurrency)
    dataset = load_signatures(ds, settings) if isinstance(ds, str) else ds
    with blas_threads():
        index = lgr_index(dataset, drugs=drugs, graph=graph, settings=settings)
        split = make_split(dataset, regime, seed=seed, test_fraction=test_fraction)
        sd = split_data(index, split)
        q_cells, q_drugs = np.nonzero(split.test)
        if max_queries is not None and q_cells.size > max_queries:
            keep = np.sort(np.random.default_rng(seed).choice(q_cells.size, size=max_queries, replace=False))
            q_cells, q_drugs = q_cells[keep], q_drugs[keep]
        n_q = int(q_cells.size)
        subset = (
            f"a seeded subset (seed {seed}) of {n_q} of {split.test.sum()} test pairs"
            if max_queries
            else None
        )
        for name in (
            m for m in names if METHODS[m].needs_llm and on_estimate is not None and model is not None
        ):
            opts = SelectOptions(k=k, llm=model)
            on_estimate(name, estimate_llm_selector(sd, q_cells, q_drugs, opts))  # type: ignore[misc]
        truth = sd.deltas[q_cells, q_drugs]
        cell_names = [index.cell_lines[c] for c in q_cells]
        drug_names = [index.drugs[d] for d in q_drugs]

        base = _RunContext(
            sd, q_cells, q_drugs, k, seed, aggregation, similarity_power, hybrid_min_k, model, settings, None
        )
        plans: dict[str, list[tuple[NDArray[np.bool_], int, float]]] = {}
        choices: list[TunedChoice] = []
        if tune:
            groups = _cv_groups(split, seed)
            for name in names:
                if METHODS[name].fn.kind == "selector" and not METHODS[name].needs_llm:
                    tuned = _tune(name, groups, index, base)
                    plans[name] = [(a[q_cells, q_drugs], c.k, c.similarity_power) for a, c in tuned]
                    choices += [c for _, c in tuned]

        def run(name: str, step: Progress) -> pd.DataFrame:
            frames = []
            for member, k_m, p_m in plans.get(name, [(np.ones(n_q, dtype=bool), k, similarity_power)]):
                q = np.flatnonzero(member)
                ctx = replace(
                    base, cells=q_cells[q], drugs=q_drugs[q], k=k_m, similarity_power=p_m, progress=step
                )
                out = METHODS[name].fn(ctx)
                frame = pd.DataFrame(
                    {
                        "method": name,
                        "query": q,
                        "cell_line": [cell_names[i] for i in q],
                        "drug": [drug_names[i] for i in q],
                        "k_used": out.k_used,
                        "n_neighbours": out.n_used,
                        "fallback": pd.Series(out.fallback, dtype=object),
                        "error": pd.Series(out.error, dtype=object),
                        "k": k_m,
                        "similarity_power": p_m,
                    }
                )
                if out.neighbours is not None:
                    ref = oracle_neighbours(sd, q_cells[q], q_drugs[q], k_m)
                    quality = retrieval_quality(out.neighbours, ref)
                else:
                    quality = pd.DataFrame(np.nan, index=range(q.size), columns=list(RETRIEVAL_METRICS))
                metrics = regression_metrics(out.prediction, truth[q]).reset_index(drop=True)
                llm_cols = (
                    out.llm
                    if out.llm is not None
                    else pd.DataFrame(None, index=range(q.size), columns=list(LLM_COLUMNS))
                ).astype(object)
                frames.append(pd.concat([frame, metrics, quality.reset_index(drop=True), llm_cols], axis=1))
            return (
                pd.concat(frames, ignore_index=True).sort_values("query", kind="stable").drop(columns="query")
            )

        frames, elapsed = run_methods(names, [n_q] * len(names), run, progress)
        per_query = pd.concat(frames.values(), ignore_index=True)
        summaries = []
        for name in names:
            rows = per_query.loc[per_query["method"] == name, list(QUERY_METRICS)]
            s = summarise(rows, n_boot=n_boot, seed=seed).reset_index()
            s.insert(0, "method", name)
            summaries.append(s)
    summary = pd.concat(summaries, ignore_index=True)
    return LGRResult(
        dataset=index.dataset,
        regime=regime,
        k=k,
        seed=seed,
        aggregation=aggregation,
        hybrid_min_k=hybrid_min_k,
        n_boot=n_boot,
        methods=names,
        similarity_power=similarity_power,
        tuning=tuple(choices),
        split=split,
        per_query=per_query,
        summary=summary,
        n_eval_genes=int(sd.gene_idx.size),
        max_queries=max_queries,
        elapsed_s=elapsed,
        subset_note=subset,
    )
