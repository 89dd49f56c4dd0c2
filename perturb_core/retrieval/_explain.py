"""One LGR prediction explained: its neighbours with their evidence, metrics, baselines, top genes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from perturb_core.config import Settings, get_settings
from perturb_core.errors import ValidationError, check_k, check_seed
from perturb_core.llm import LLM
from perturb_core.metrics import REGRESSION_METRICS, RETRIEVAL_METRICS, regression_metrics, retrieval_quality
from perturb_core.retrieval._aggregate import (
    SOURCE_CHEM,
    SOURCE_NAMES,
    SOURCE_POOL,
    SOURCE_SELECTOR,
    aggregate,
    oracle_neighbours,
    residual_available,
    select_neighbours,
    weights,
)
from perturb_core.retrieval._index import LGRIndex, as_dataset, blas_threads, lgr_index
from perturb_core.retrieval._justify import justify
from perturb_core.retrieval._options import (
    DEFAULT_HYBRID_MIN_K,
    DEFAULT_K,
    DEFAULT_SIMILARITY_POWER,
    Aggregation,
    Regime,
    check_int,
    check_power,
    check_regime,
    default_aggregation,
)
from perturb_core.retrieval._prompt import LLMTrace, neighbour_log_path, resolve_llm
from perturb_core.retrieval._selectors import SELECTORS, SelectOptions, check_selector
from perturb_core.retrieval._splits import Split, pool_mask, query_split, resolve_pair, split_data
from perturb_core.retrieval.baselines import BASELINES, additive_terms, check_baseline, predict_baseline

if TYPE_CHECKING:
    from perturb_core.data.registry import DrugTable, SignatureDataset
    from perturb_core.kg import KnowledgeGraph


@dataclass(frozen=True)
class Neighbour:
    """One neighbour of an explained prediction.

    Attributes:
        name: drug display name.
        rank: 1-based position in the aggregation.
        justification: the selector's one-sentence reason (the LLM's own words for ``llm``).
        score: the selector's score (Tanimoto, kg score, r, or k − rank + 1 for the LLM).
        similarity: Tanimoto similarity of Morgan fingerprints to the query (``None`` without structures).
        mechanism: mechanism tags of the neighbour.
        programs: its transcriptional programs.
        targets: its mechanism targets (ADME genes removed).
        moa: its mechanism text.
        own_pearson: Pearson r of its own delta in the query's line with the true delta (eval genes).
        loo_delta_pearson: r(prediction) − r(prediction without this neighbour): > 0 = it helped.
        source: ``"selector"``, ``"hybrid_chem"`` (chemistry padding) or ``"pool_mean"``.
        weight: its aggregation weight.
    """

    name: str
    rank: int
    justification: str
    score: float | None = None
    similarity: float | None = None
    mechanism: tuple[str, ...] = ()
    programs: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    moa: str | None = None
    own_pearson: float | None = None
    loo_delta_pearson: float | None = None
    source: str = "selector"
    weight: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "name": self.name,
            "rank": self.rank,
            "justification": self.justification,
            "mechanism": list(self.mechanism),
            "programs": list(self.programs),
            "targets": list(self.targets),
            "moa": self.moa,
            "similarity": self.similarity,
            "own_pearson": self.own_pearson,
            "loo_delta_pearson": self.loo_delta_pearson,
            "score": self.score,
            "source": self.source,
            "weight": self.weight,
        }


@dataclass(frozen=True)
class QueryDrug:
    """The query drug of an explained prediction: what the neighbours are compared with.

    Attributes:
        name: drug display name.
        mechanism: its mechanism tags.
        programs: its transcriptional programs.
        targets: its mechanism targets (ADME genes removed).
        moa: its mechanism text (``None`` when unknown).
        has_structure: whether its SMILES gives a Morgan fingerprint (Tanimoto is defined).
    """

    name: str
    mechanism: tuple[str, ...] = ()
    programs: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    moa: str | None = None
    has_structure: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``query`` of ``lgr predict --json``)."""
        return {
            "name": self.name,
            "mechanism": list(self.mechanism),
            "programs": list(self.programs),
            "targets": list(self.targets),
            "moa": self.moa,
            "has_structure": self.has_structure,
        }


_TOP_GENE_ORDER: dict[str, float] = {"up": -1.0, "down": 1.0}
"""Direction of a top-gene list -> sign that makes an ascending sort put its genes first."""
TOP_GENE_COLUMNS = (
    "direction",
    "rank",
    "predicted_gene",
    "predicted",
    "observed_gene",
    "observed",
    "predicted_in_both",
    "observed_in_both",
)
"""Columns of :func:`top_genes` (and of the ``top_genes`` records of ``lgr predict --json``)."""


def top_genes(
    genes: Sequence[str], prediction: NDArray[np.float64], truth: NDArray[np.float64], *, n: int = 10
) -> pd.DataFrame:
    """The n most up- and down-regulated genes, predicted vs observed, side by side.

    Only genes with a finite prediction and truth are ranked (as in the metrics). For each
    direction, row ``rank`` holds the rank-th gene of the prediction and the rank-th gene of
    the truth (largest values for ``"up"``, smallest for ``"down"``; ties keep gene order).

    Args:
        genes: gene symbols, aligned with ``prediction`` and ``truth``.
        prediction: predicted delta per gene.
        truth: observed delta per gene.
        n: genes per direction (fewer when fewer genes are comparable).

    Returns:
        One row per (direction, rank), ``"up"`` rows first, with columns :data:`TOP_GENE_COLUMNS`:
        direction, rank (1-based), predicted_gene and its predicted delta, observed_gene and its
        observed delta, and whether each of the two genes is in both top-n lists.

    Raises:
        ValidationError: ``n`` is not an integer >= 1, or the arrays do not align.
    """
    n = check_int("the number of top genes n", n, 1, 10_000)
    names = np.asarray(genes, dtype=object)
    pred, obs = np.asarray(prediction, dtype=np.float64), np.asarray(truth, dtype=np.float64)
    if not names.shape == pred.shape == obs.shape or names.ndim != 1:
        raise ValidationError(
            f"genes {names.shape}, prediction {pred.shape} and truth {obs.shape} must be 1-D and aligned"
        )
    ok = np.isfinite(pred) & np.isfinite(obs)
    names, pred, obs = names[ok], pred[ok], obs[ok]
    m = min(n, int(ok.sum()))
    frames = []
    for direction, sign in _TOP_GENE_ORDER.items():
        p_idx = np.argsort(sign * pred, kind="stable")[:m]
        t_idx = np.argsort(sign * obs, kind="stable")[:m]
        p_genes, t_genes = names[p_idx], names[t_idx]
        frames.append(
            pd.DataFrame(
                {
                    "direction": direction,
                    "rank": np.arange(1, m + 1),
                    "predicted_gene": p_genes.astype(str),
                    "predicted": pred[p_idx],
                    "observed_gene": t_genes.astype(str),
                    "observed": obs[t_idx],
                    "predicted_in_both": np.isin(p_genes, t_genes),
                    "observed_in_both": np.isin(t_genes, p_genes),
                },
                columns=list(TOP_GENE_COLUMNS),
            )
        )
    return pd.concat(frames, ignore_index=True)


@dataclass(frozen=True, eq=False)
class QueryExplanation:
    """Everything about one LGR prediction (what ``lgr predict --json`` prints, via :meth:`to_dict`).

    ``prediction`` and ``truth`` (float64 over ``genes``, the evaluation genes) are for plots
    and are not part of the JSON; :meth:`top_genes` summarises them (and is). ``metrics`` and
    each entry of ``baselines`` (keyed by :data:`~perturb_core.retrieval.BASELINES` names) map
    the :data:`~perturb_core.metrics.REGRESSION_METRICS` names to values (``None`` if undefined);
    ``metrics`` also holds the retrieval quality (``precision_at_k``, ``mrr``) of the neighbours
    against the oracle's k.
    """

    dataset: str
    cell_line: str
    drug: str
    selector: str
    selector_label: str
    k: int
    k_used: int
    n_neighbours: int
    aggregation: str
    regime: str
    seed: int
    split_id: str
    hybrid_min_k: int
    pool: tuple[str, ...]
    query: QueryDrug
    neighbours: tuple[Neighbour, ...]
    filtered: tuple[str, ...]
    fallback: str | None
    metrics: Mapping[str, float | None]
    baselines: Mapping[str, Mapping[str, float | None]]
    baseline_fallbacks: Mapping[str, str | None]
    llm: LLMTrace | None
    genes: pd.Index = field(repr=False)
    prediction: NDArray[np.float64] = field(repr=False)
    truth: NDArray[np.float64] = field(repr=False)
    units: str = "inverse-normal rank score"

    @property
    def fallback_only(self) -> bool:
        """Whether no neighbour came from the selector: the prediction is a fallback's, not the selector's."""
        return bool(self.neighbours) and all(n.source != "selector" for n in self.neighbours)

    @property
    def predicted_by(self) -> str:
        """What made the prediction, as a label: the selector, or the fallback that stood in for it."""
        sources = {n.source for n in self.neighbours}
        if not sources:
            return f"no prediction ({self.selector} gave no neighbour and the pool is empty)"
        if sources == {"selector"}:
            return self.selector_label
        if "selector" in sources:
            return f"{self.selector_label}, padded with chem_knn_retrieval neighbours"
        if sources == {"pool_mean"}:
            return f"pool-mean fallback (not {self.selector}: it gave no usable neighbour)"
        return f"chem_knn_retrieval fallback (not {self.selector}: it gave no usable neighbour)"

    @property
    def method_name(self) -> str:
        """The method's row name in a comparison table: the selector, or ``fallback for <selector>``."""
        if not self.fallback_only:
            return self.selector
        first = "pool_mean" if self.neighbours[0].source == "pool_mean" else "chem_knn_retrieval"
        return f"{first} (fallback for {self.selector})"

    @property
    def pool_size(self) -> int:
        """Drugs in the query's candidate pool."""
        return len(self.pool)

    @property
    def n_eval_genes(self) -> int:
        """Genes the metrics are computed on."""
        return len(self.genes)

    def top_genes(self, n: int = 10) -> pd.DataFrame:
        """The n most up- and down-regulated genes, predicted vs observed (see :func:`top_genes`)."""
        return top_genes(self.genes, self.prediction, self.truth, n=n)

    def to_dict(self, *, n_top_genes: int = 10) -> dict[str, Any]:
        """The ``lgr predict --json`` document; ``top_genes`` holds :meth:`top_genes` as records."""
        return {
            "dataset": self.dataset,
            "units": self.units,
            "cell_line": self.cell_line,
            "drug": self.drug,
            "selector": self.selector,
            "selector_label": self.selector_label,
            "k": self.k,
            "k_used": self.k_used,
            "n_neighbours": self.n_neighbours,
            "aggregation": self.aggregation,
            "regime": self.regime,
            "seed": self.seed,
            "split_id": self.split_id,
            "hybrid_min_k": self.hybrid_min_k,
            "pool_size": self.pool_size,
            "n_eval_genes": self.n_eval_genes,
            "query": self.query.to_dict(),
            "neighbours": [n.to_dict() for n in self.neighbours],
            "filtered": list(self.filtered),
            "fallback": self.fallback,
            "fallback_only": self.fallback_only,
            "predicted_by": self.predicted_by,
            "metrics": dict(self.metrics),
            "baselines": {m: dict(v) for m, v in self.baselines.items()},
            "baseline_fallbacks": dict(self.baseline_fallbacks),
            "top_genes": self.top_genes(n_top_genes).to_dict(orient="records"),
            "llm": None if self.llm is None else self.llm.to_dict(),
        }


def _pearson_rows(pred: NDArray[np.float64], truth: NDArray[np.float64]) -> NDArray[np.float64]:
    if pred.shape[0] == 0:
        return np.zeros(0)
    return regression_metrics(pred, np.broadcast_to(truth, pred.shape))["pearson"].to_numpy()


def _clean(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def _metrics_dict(pred: NDArray[np.float64], truth: NDArray[np.float64]) -> dict[str, float | None]:
    row = regression_metrics(pred[None, :], truth[None, :]).iloc[0]
    return {m: _clean(float(row[m])) for m in REGRESSION_METRICS}


def _retrieval_dict(order: NDArray[np.intp], reference: NDArray[np.intp]) -> dict[str, float | None]:
    row = retrieval_quality(order, reference).iloc[0]
    return {m: _clean(float(row[m])) for m in RETRIEVAL_METRICS}


def predict_query(
    ds: SignatureDataset | str,
    *,
    cell_line: str,
    drug: str,
    selector: str,
    k: int = DEFAULT_K,
    aggregation: Aggregation | None = None,
    regime: Regime = "open-world",
    seed: int = 0,
    similarity_power: float = DEFAULT_SIMILARITY_POWER,
    settings: Settings | None = None,
    llm: LLM | None = None,
    hybrid_min_k: int = DEFAULT_HYBRID_MIN_K,
    split: Split | None = None,
    baselines: Sequence[str] | None = None,
    drugs: DrugTable | None = None,
    graph: KnowledgeGraph | None = None,
) -> QueryExplanation:
    """Predict one (cell line, drug) delta with a selector and explain it.

    The query is treated as unmeasured under ``regime`` (see :func:`query_split`; or pass a
    ``split`` from :func:`make_split` whose test pairs include it). The explanation holds the
    neighbours (with justification, mechanism, programs, targets, Tanimoto similarity, each
    neighbour's own correlation with the truth and its leave-one-out effect), the metrics of
    the prediction and of every baseline on the same query, and for ``llm`` the prompt, raw
    answer, filtered names, ``k_used`` and whether the answer came from the cache.

    Args:
        ds: a SignatureDataset or dataset name (``"tahoe"``, ``"sciplex"``, an import).
        cell_line: any spelling of the cell line.
        drug: any spelling of the drug (it must have been profiled in that line).
        selector: a key of :data:`SELECTORS`.
        k: neighbours to select (>= 1).
        aggregation: ``"mean"``, ``"rank_weighted"`` or ``"residual"``; ``None``: the regime's
            default (:data:`DEFAULT_AGGREGATION`).
        regime: one of :data:`REGIMES`.
        seed: seed of the ``random`` selector and of the baselines.
        similarity_power: weights s^p for selectors with a similarity (0: uniform).
        settings: where the data lives (and the LLM endpoint when ``llm`` is ``None``).
        llm: the model for ``selector="llm"`` (default: built from settings).
        hybrid_min_k: chemistry padding threshold.
        split: an evaluation split containing the query as a test pair.
        baselines: baselines to score (default: all of :data:`BASELINES`).
        drugs: the drug table (default: loaded from ``settings``; see :func:`lgr_index`).
        graph: the knowledge graph (default: loaded from ``settings`` when ``kg_mechanism`` needs it).

    Returns:
        The :class:`QueryExplanation`.

    Raises:
        UnknownNameError: unknown cell line, drug, selector or baseline (closest or valid names given).
        ValidationError: drug not profiled in the line, empty pool, bad k (1..1000), seed
            (0 <= seed < 2**32) or option.
        LLMError: ``selector="llm"`` without a configured endpoint. (A failing call does not
            raise: it is recorded in ``llm.error`` and the prediction falls back to chemistry.)
    """
    selector = check_selector(selector)
    k = check_k(k)
    seed = check_seed(seed)
    regime = check_regime(regime)
    aggregation = default_aggregation(regime, aggregation)
    power = check_power(similarity_power)
    base_names = tuple(BASELINES if baselines is None else (check_baseline(b) for b in baselines))
    settings = settings or get_settings()
    ds = as_dataset(ds, settings)
    with blas_threads():
        c_name, d_name = resolve_pair(ds, cell_line, drug)
        index = lgr_index(ds, drugs=drugs, graph=graph, settings=settings)
        query = _Query(
            c_name, d_name, selector, k, aggregation, regime, seed, hybrid_min_k, base_names, power
        )
        return _predict_query(ds, index, query, settings, llm, split)


@dataclass(frozen=True)
class _Query:
    """The validated options of one :func:`predict_query` call."""

    cell_line: str
    drug: str
    selector: str
    k: int
    aggregation: str
    regime: str
    seed: int
    hybrid_min_k: int
    baselines: tuple[str, ...]
    similarity_power: float = 0.0


def _predict_query(
    ds: SignatureDataset,
    index: LGRIndex,
    query: _Query,
    settings: Settings,
    llm: LLM | None,
    split: Split | None,
) -> QueryExplanation:
    c_name, d_name = query.cell_line, query.drug
    selector, k, aggregation, seed = query.selector, query.k, query.aggregation, query.seed
    hybrid_min_k, base_names = query.hybrid_min_k, query.baselines
    ci, di = index.cell_index(c_name), index.drug_index(d_name)
    if split is None:
        split = query_split(ds, query.regime, c_name, d_name)
    elif not split.test[ci, di]:
        raise ValidationError(
            f"({c_name}, {d_name}) is not a test pair of split {split.split_id} ({split.regime}); "
            "use query_split() or a split that holds it out"
        )
    sd = split_data(index, split)
    cells, drugs = np.array([ci]), np.array([di])
    pool = pool_mask(split, index.present, cells, drugs)[0]
    if not pool.any():
        raise ValidationError(
            f"the candidate pool of {d_name} in {c_name} is empty under {split.regime} "
            f"(no other drug measured there{' outside the held-out drugs' if split.regime == 'unseen-drug' else ''}); "
            "choose a cell line with more profiled drugs"
        )
    model = resolve_llm(llm, settings) if SELECTORS[selector].needs_llm else None
    opts = SelectOptions(
        k=k, seed=seed, llm=model, log_path=neighbour_log_path(model, settings) if model else None
    )
    selection = select_neighbours(sd, cells, drugs, selector, opts, hybrid_min_k=hybrid_min_k)
    power = query.similarity_power
    pred = aggregate(sd, cells, selection, aggregation, similarity_power=power)[0]  # type: ignore[arg-type]
    truth = sd.deltas[ci, di].astype(np.float64)
    order = selection.order[0]
    used = order[order >= 0]
    w_all = weights(selection, aggregation, power)[0]
    # own correlations and leave-one-neighbour-out predictions, all at once
    own = _pearson_rows(sd.deltas[ci, used].astype(np.float64), truth)
    loo_w = np.tile(w_all, (used.size, 1))
    loo_w[np.arange(used.size), used] = 0.0
    rows = sd.deltas[ci].astype(np.float64)
    offset = np.zeros(rows.shape[1])
    fallback = selection.fallback[0]
    if aggregation == "residual" and not residual_available(sd, cells, drugs)[0]:
        note = "drug unmeasured in other training lines: plain mean instead of residual"
        fallback = f"{fallback}; {note}" if fallback else note
    elif aggregation == "residual":
        # the residual prediction without one neighbour: drug term + mean of the others' residuals
        rows = sd.residuals(ci * len(index.drugs) + np.arange(len(index.drugs)))
        terms = additive_terms(sd.baseline_data, cells, drugs)
        offset = np.where(np.isfinite(terms.drug[0]), terms.drug[0], terms.grand[0])
    obs = np.isfinite(rows)
    with np.errstate(divide="ignore", invalid="ignore"):
        loo_pred = offset + (loo_w @ np.where(obs, rows, 0.0)) / (loo_w @ obs.astype(np.float64))
    r_full = _metrics_dict(pred, truth)["pearson"]
    loo_r = _pearson_rows(np.where(np.isfinite(loo_pred), loo_pred, np.nan), truth)
    scores = selection.scores
    neighbours = []
    for rank, (e, src) in enumerate(zip(used, selection.source[0][: used.size], strict=True), 1):
        row = index.mechanism.iloc[e]
        score = {
            SOURCE_SELECTOR: _clean(float(scores.values[0, e])),
            SOURCE_CHEM: float(index.tanimoto[di, e]),
            SOURCE_POOL: None,
        }[int(src)]
        neighbours.append(
            Neighbour(
                name=index.drugs[e],
                rank=rank,
                justification=justify(sd, selector, ci, di, e, int(src), scores, 0),
                score=score,
                similarity=float(index.tanimoto[di, e]) if index.fp_valid[di] and index.fp_valid[e] else None,
                mechanism=tuple(row["tags"]),
                programs=tuple(row["programs"]),
                targets=tuple(row["mechanism_targets"]),
                moa=row["moa"],
                own_pearson=_clean(own[rank - 1]),
                loo_delta_pearson=None
                if r_full is None or used.size < 2
                else _clean(r_full - loo_r[rank - 1]),
                source=SOURCE_NAMES[int(src)],
                weight=float(w_all[e]),
            )
        )
    base_metrics: dict[str, dict[str, float | None]] = {}
    base_notes: dict[str, str | None] = {}
    for b in base_names:
        res = predict_baseline(b, sd.baseline_data, cells, drugs, k=k, seed=seed)
        base_metrics[b] = _metrics_dict(res.prediction[0], truth)
        base_notes[b] = res.fallback[0]
    qrow = index.mechanism.iloc[di]
    trace = scores.traces[0] if scores.traces else None
    return QueryExplanation(
        dataset=index.dataset,
        cell_line=c_name,
        drug=d_name,
        selector=selector,
        selector_label=SELECTORS[selector].label,
        k=k,
        k_used=int(selection.k_used[0]),
        n_neighbours=int(selection.n_used[0]),
        aggregation=aggregation,
        regime=split.regime,
        seed=seed,
        split_id=split.split_id,
        hybrid_min_k=hybrid_min_k,
        pool=tuple(index.drugs[e] for e in np.flatnonzero(pool)),
        query=QueryDrug(
            name=d_name,
            mechanism=tuple(qrow["tags"]),
            programs=tuple(qrow["programs"]),
            targets=tuple(qrow["mechanism_targets"]),
            moa=qrow["moa"],
            has_structure=bool(index.fp_valid[di]),
        ),
        neighbours=tuple(neighbours),
        filtered=trace.filtered if trace else (),
        fallback=fallback,
        metrics={
            **_metrics_dict(pred, truth),
            **_retrieval_dict(selection.order[:, :k], oracle_neighbours(sd, cells, drugs, k)),
        },
        baselines=base_metrics,
        baseline_fallbacks=base_notes,
        llm=trace,
        genes=sd.genes,
        prediction=pred,
        truth=truth,
        units=index.units,
    )
