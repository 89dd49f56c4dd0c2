"""Neighbour selectors of LGR: each ranks the candidate pools of a batch of queries.

:data:`SELECTORS` is the registry (one :class:`~perturb_core.spec.MethodSpec` per selector:
name, label, definition, scoring function, whether it needs an LLM); ``SELECTOR_LABELS`` and
``SELECTOR_DEFINITIONS`` are read-only views of it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from perturb_core.errors import LLMError, name_key
from perturb_core.llm import LLM, Exchange, JSONVariant, append_jsonl, estimate_batch, run_batch
from perturb_core.retrieval._index import LGRIndex
from perturb_core.retrieval._options import DEFAULT_K
from perturb_core.retrieval._prompt import (
    LGR_MAX_TOKENS,
    LLMTrace,
    ParsedAnswer,
    lgr_json_variant,
    parse_llm_answer,
    render_lgr_prompt,
)
from perturb_core.retrieval._splits import SplitData, pool_mask
from perturb_core.retrieval.baselines import additive_terms
from perturb_core.spec import MethodSpec, registry, resolve


@dataclass(frozen=True)
class SelectOptions:
    """Options shared by every selector.

    Attributes:
        k: neighbours to select.
        seed: seed of ``random``.
        llm: the model of the ``llm`` selector.
        progress: ``progress(done, total)`` for LLM batches.
        log_path: where LLM neighbour records are appended as answers arrive (``None``: no log).
        max_tokens: answer length limit of an LLM call (``None``: the endpoint's default).
    """

    k: int = DEFAULT_K
    seed: int = 0
    llm: LLM | None = None
    progress: Callable[[int, int], None] | None = None
    log_path: Path | None = None
    max_tokens: int | None = LGR_MAX_TOKENS


@dataclass(frozen=True, eq=False)
class Scores:
    """A selector's ranking of the drugs for a batch of queries.

    Attributes:
        values: float64 (Q, D), higher = better neighbour; NaN = not ranked.
        unavailable: per query, why the selector could not rank (``None`` = it could).
        justifications: per query, drug index -> the selector's own sentence (LLM only).
        traces: per query, the LLM call (LLM only).
        similarity: ``values`` are similarities (a correlation or a Tanimoto in [−1, 1]) that
            may weight the aggregation (``similarity_power``); ranks and rule scores are not.
    """

    values: NDArray[np.float64]
    unavailable: tuple[str | None, ...]
    justifications: tuple[dict[int, str], ...] | None = None
    traces: tuple[LLMTrace | None, ...] | None = None
    similarity: bool = False


SelectorFn = Callable[
    [SplitData, NDArray[np.intp], NDArray[np.intp], NDArray[np.bool_], SelectOptions], Scores
]


def _no_structure(index: LGRIndex, drugs: NDArray[np.intp]) -> tuple[str | None, ...]:
    return tuple(
        None if ok else f"no chemical structure known for {index.drugs[d]}"
        for d, ok in zip(drugs, index.fp_valid[drugs], strict=True)
    )


def _select_chem(
    sd: SplitData,
    cells: NDArray[np.intp],
    drugs: NDArray[np.intp],
    pool: NDArray[np.bool_],
    opts: SelectOptions,
) -> Scores:
    index = sd.index
    values = np.where(index.fp_valid[None, :], index.tanimoto[drugs].astype(np.float64), np.nan)
    values[~index.fp_valid[drugs]] = np.nan
    return Scores(values, _no_structure(index, drugs), similarity=True)


def _select_kg(
    sd: SplitData,
    cells: NDArray[np.intp],
    drugs: NDArray[np.intp],
    pool: NDArray[np.bool_],
    opts: SelectOptions,
) -> Scores:
    kg = sd.index.kg
    values = kg.score[drugs].copy()
    reasons = tuple(
        None if kg.available[d] else f"no target, mechanism or tag known for {sd.index.drugs[d]}"
        for d in drugs
    )
    values[~kg.available[drugs]] = np.nan
    return Scores(values, reasons)


def _select_transcriptome(
    sd: SplitData,
    cells: NDArray[np.intp],
    drugs: NDArray[np.intp],
    pool: NDArray[np.bool_],
    opts: SelectOptions,
) -> Scores:
    mean, _ = sd.transcriptome
    values = mean[cells, drugs]
    has = (np.isfinite(values) & pool).any(1)
    reasons = tuple(
        None
        if h
        else f"{sd.index.drugs[d]} has no training response in another cell line shared with the pool"
        for h, d in zip(has, drugs, strict=True)
    )
    return Scores(values, reasons, similarity=True)


def _select_oracle(
    sd: SplitData,
    cells: NDArray[np.intp],
    drugs: NDArray[np.intp],
    pool: NDArray[np.bool_],
    opts: SelectOptions,
) -> Scores:
    values = sd.correlations[cells, drugs]
    has = (np.isfinite(values) & pool).any(1)
    return Scores(
        values,
        tuple(None if h else "no pool drug shares genes with the true response" for h in has),
        similarity=True,
    )


def _shifted_corr(
    p: NDArray[np.float64], shift: NDArray[np.float64], target: NDArray[np.float64]
) -> NDArray[np.float64]:
    """(Q, D) Pearson r of ``p[e] − shift[q]`` with ``target[q]`` over genes finite in both (NaN if < 3).

    ``p`` (D, G) may hold NaN; ``shift`` (Q, G) is finite; ``target`` (Q, G) may hold NaN. Every
    sum is a (D, G) x (G, Q) product, so one cell line's queries are scored in a few BLAS calls.
    """
    f = np.isfinite(p).astype(np.float64)
    p0 = np.where(f > 0, p, 0.0)
    ft = np.isfinite(target).astype(np.float64)
    t0 = np.where(ft > 0, target, 0.0)
    s_ft, s_t0 = shift * ft, shift * t0
    n = f @ ft.T
    sa = p0 @ ft.T - f @ s_ft.T
    sb = f @ t0.T
    sab = p0 @ t0.T - f @ s_t0.T
    saa = (p0 * p0) @ ft.T - 2.0 * (p0 @ s_ft.T) + f @ (shift * s_ft).T
    sbb = f @ (t0 * t0).T
    with np.errstate(divide="ignore", invalid="ignore"):
        cov = sab - sa * sb / n
        va = saa - sa * sa / n
        vb = sbb - sb * sb / n
        r = cov / np.sqrt(va * vb)
    ok = (n >= 3) & (va > 1e-12) & (vb > 1e-12)
    return np.where(ok, np.clip(r, -1.0, 1.0), np.nan).T


def _select_residual_oracle(
    sd: SplitData,
    cells: NDArray[np.intp],
    drugs: NDArray[np.intp],
    pool: NDArray[np.bool_],
    opts: SelectOptions,
) -> Scores:
    n_d = len(sd.index.drugs)
    data = sd.baseline_data
    values = np.full(pool.shape, np.nan)
    shift = additive_terms(data, cells, drugs)
    line = np.where(np.isfinite(shift.line), shift.line, shift.grand) - shift.grand
    dq, _ = data.drug_mean_other_lines(cells, drugs)
    truth = sd.deltas[cells, drugs].astype(np.float64) - np.where(np.isfinite(dq), dq, shift.grand) - line
    line = np.nan_to_num(line, nan=0.0)
    for c in np.unique(cells):
        q = np.flatnonzero(cells == c)
        resid = sd.residuals(c * n_d + np.arange(n_d))  # (D, G): Δ[c, e] − D̄₋c[e]
        values[q] = _shifted_corr(resid, line[q], truth[q])
    values[~pool] = np.nan
    has = np.isfinite(values).any(1)
    return Scores(
        values,
        tuple(None if h else "no pool drug residual shares genes with the true residual" for h in has),
        similarity=True,
    )


_MIX = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB))


def _hash_uniform(*keys: NDArray[np.uint64]) -> NDArray[np.float64]:
    """Deterministic uniform [0, 1) numbers from integer keys (SplitMix64 finaliser), vectorised."""
    with np.errstate(over="ignore"):
        h = np.uint64(0)
        for k in keys:
            h = (h ^ k.astype(np.uint64)) * _MIX[0]
            h ^= h >> np.uint64(30)
            h *= _MIX[1]
            h ^= h >> np.uint64(27)
            h *= _MIX[2]
            h ^= h >> np.uint64(31)
    return (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def _select_random(
    sd: SplitData,
    cells: NDArray[np.intp],
    drugs: NDArray[np.intp],
    pool: NDArray[np.bool_],
    opts: SelectOptions,
) -> Scores:
    n_d = len(sd.index.drugs)
    seed = np.full((cells.size, n_d), opts.seed, dtype=np.uint64)
    values = _hash_uniform(
        seed,
        np.broadcast_to(cells[:, None], seed.shape).astype(np.uint64),
        np.broadcast_to(drugs[:, None], seed.shape).astype(np.uint64),
        np.broadcast_to(np.arange(n_d)[None, :], seed.shape).astype(np.uint64),
    )
    return Scores(values, (None,) * cells.size)


def _llm_requests(
    sd: SplitData,
    cells: NDArray[np.intp],
    drugs: NDArray[np.intp],
    pool: NDArray[np.bool_],
    k: int,
    answer_format: str,
) -> tuple[
    list[int],
    list[list[dict[str, str]]],
    list[Callable[[str], ParsedAnswer]],
    list[JSONVariant[ParsedAnswer]] | None,
]:
    """The queries with a non-empty pool, their text prompts and parsers, and their json requests."""
    index = sd.index
    asked = [q for q in range(cells.size) if pool[q].any()]
    pools = [[index.drugs[e] for e in np.flatnonzero(pool[q])] for q in asked]
    names_of = [(index.cell_lines[cells[q]], index.drugs[drugs[q]]) for q in asked]
    prompts = [render_lgr_prompt(c, d, names, k) for (c, d), names in zip(names_of, pools, strict=True)]
    parsers: list[Callable[[str], ParsedAnswer]] = [
        partial(parse_llm_answer, pool=names, k=k) for names in pools
    ]
    variants = (
        [lgr_json_variant(c, d, names, k) for (c, d), names in zip(names_of, pools, strict=True)]
        if answer_format != "text"
        else None
    )
    return asked, prompts, parsers, variants


def estimate_llm_selector(
    sd: SplitData, cells: NDArray[np.intp], drugs: NDArray[np.intp], opts: SelectOptions
) -> dict[str, Any]:
    """What the ``llm`` selector will cost on these queries (see :func:`perturb_core.llm.estimate_batch`).

    Raises:
        LLMError: ``opts.llm`` is not set.
    """
    if opts.llm is None:
        raise LLMError("estimating the llm selector needs an LLM; pass SelectOptions(llm=...)")
    pool = pool_mask(sd.split, sd.index.present, cells, drugs)
    _, prompts, _, variants = _llm_requests(sd, cells, drugs, pool, opts.k, opts.llm.answer_format)
    return estimate_batch(opts.llm, prompts, max_tokens=opts.max_tokens, json_variants=variants)


def _select_llm(
    sd: SplitData,
    cells: NDArray[np.intp],
    drugs: NDArray[np.intp],
    pool: NDArray[np.bool_],
    opts: SelectOptions,
) -> Scores:
    if opts.llm is None:
        raise LLMError("the llm selector needs an LLM; pass llm=LLM.from_settings(...) or use resolve_llm()")
    index = sd.index
    llm = opts.llm
    values = np.full(pool.shape, np.nan)
    reasons: list[str | None] = [
        "empty candidate pool" if not pool[q].any() else None for q in range(cells.size)
    ]
    justifications: list[dict[int, str]] = [{} for _ in range(cells.size)]
    traces: list[LLMTrace | None] = [None] * cells.size
    asked, prompts, parsers, variants = _llm_requests(sd, cells, drugs, pool, opts.k, llm.answer_format)

    def record(j: int, ex: Exchange[ParsedAnswer]) -> None:
        """Read one answer as it arrives; append its neighbour record to the log at once."""
        q = asked[j]
        trace = traces[q] = LLMTrace.from_exchange(ex)
        parsed = ex.parsed or ParsedAnswer((), (), 0, block_found=False)
        if ex.raw_answer is None:
            reasons[q] = f"LLM call failed: {str(ex.error)[:200]}"
        elif parsed.k_used == 0:
            if ex.answer_format_used == "json":
                reasons[q] = f"LLM json answer named no pool drug ({len(parsed.filtered)} filtered)"
            elif not parsed.block_found:
                reasons[q] = "LLM answer has no <Final Answer> block"
            else:
                reasons[q] = f"LLM answer named no pool drug ({len(parsed.filtered)} filtered)"
        for rank, (name, why) in enumerate(parsed.neighbours, 1):
            e = index.drug_index(name)
            values[q, e] = float(parsed.k_used - rank + 1)
            justifications[q][e] = why
        if opts.log_path is not None:
            append_jsonl(
                opts.log_path,
                {
                    "time": datetime.now(UTC).isoformat(timespec="seconds"),
                    "dataset": index.dataset,
                    "regime": sd.split.regime,
                    "split_id": sd.split.split_id,
                    "cell_line": index.cell_lines[cells[q]],
                    "drug": index.drugs[drugs[q]],
                    "k": opts.k,
                    "neighbours": [
                        {"molecule": n, "score": None, "justification": j} for n, j in parsed.neighbours
                    ],
                    "raw_text": trace.raw_answer,
                    "filtered": list(parsed.filtered),
                    "duplicates": list(parsed.duplicates),
                    "k_used": parsed.k_used,
                    "model": trace.model,
                    "prompt_hash": trace.prompt_hash,
                    "cache_hit": trace.cache_hit,
                    "error": trace.error,
                    "answer_format_used": trace.answer_format_used,
                    "format_note": trace.format_note,
                },
            )

    run_batch(
        llm,
        prompts,
        parsers,
        temperature=0.0,
        max_tokens=opts.max_tokens,
        progress=opts.progress,
        json_variants=variants,
        on_exchange=record,
    )
    return Scores(values, tuple(reasons), tuple(justifications), tuple(traces))


SELECTORS: Mapping[str, MethodSpec[SelectorFn]] = registry(
    MethodSpec(
        "llm",
        "LLM (OpenAI-compatible endpoint)",
        "a language model picks k pool drugs from the LGR prompt and justifies each in one sentence",
        _select_llm,
        needs_llm=True,
    ),
    MethodSpec(
        "kg_mechanism",
        "Knowledge-graph mechanism (rule-based, no LLM)",
        "score = 3·target overlap + 2·same mechanism + 2·tag Jaccard + 1·program Jaccard + 1·target "
        "proximity in the graph (target terms ×(−0.5) for opposite action); Tanimoto breaks ties",
        _select_kg,
    ),
    MethodSpec(
        "chem_knn_retrieval",
        "Chemistry kNN retrieval: k most similar pool drugs in the cell line (Tanimoto, no LLM)",
        "the k pool drugs with the highest Tanimoto similarity of Morgan fingerprints (r=2, 2048 bits)",
        _select_chem,
    ),
    MethodSpec(
        "transcriptome_knn",
        "Transcriptome kNN (responses in other cell lines, no LLM)",
        "the k pool drugs whose responses correlate best with the query's in other training cell lines "
        "(mean Pearson r over the lines where both were measured)",
        _select_transcriptome,
    ),
    MethodSpec(
        "random", "Random (floor)", "k pool drugs drawn at random (seeded): the floor", _select_random
    ),
    MethodSpec(
        "oracle",
        "Oracle of plain averaging (ceiling: uses the true response)",
        "the k pool drugs whose responses in this cell line correlate best with the TRUE response: the "
        "ceiling of plain averaging of k neighbours",
        _select_oracle,
    ),
    MethodSpec(
        "residual_oracle",
        "Residual oracle (ceiling of residual aggregation: uses the true response)",
        "the k pool drugs whose residuals from their additive fits correlate best with the query's TRUE "
        "residual: the ceiling of residual aggregation of k neighbours",
        _select_residual_oracle,
    ),
)
"""Selector name -> spec; ``spec.fn(split_data, cells, drugs, pool, options) -> Scores``."""

SELECTOR_LABELS: Mapping[str, str] = MappingProxyType({n: s.label for n, s in SELECTORS.items()})
"""Human label of every selector (a view of :data:`SELECTORS`); it says what the selector is."""

SELECTOR_DEFINITIONS: Mapping[str, str] = MappingProxyType({n: s.definition for n, s in SELECTORS.items()})
"""One-line definition of every selector (a view of :data:`SELECTORS`)."""


DEPRECATED_SELECTORS: Mapping[str, str] = MappingProxyType({"chem_knn": "chem_knn_retrieval"})
"""Old selector name -> its current name. ``chem_knn`` is the paper's chemistry *baseline* (mean of the
neighbours' drug means over training lines); the selector of the same name was renamed so that one
name means one method everywhere."""


def deprecated_selector_note(selector: object) -> str | None:
    """A note when ``selector`` is an old name (:data:`DEPRECATED_SELECTORS`), else ``None``."""
    old = next((o for o in DEPRECATED_SELECTORS if name_key(o) == name_key(str(selector))), None)
    if old is None:
        return None
    return (
        f"selector {old!r} is now {DEPRECATED_SELECTORS[old]!r} (chemistry retrieval in the query's cell "
        f"line); {old!r} names the paper's chemistry baseline, which `lgr evaluate --methods {old}` runs"
    )


def check_selector(selector: object) -> str:
    """The canonical selector name (any case or punctuation; old names of :data:`DEPRECATED_SELECTORS` too).

    Raises:
        UnknownNameError: not a key of :data:`SELECTORS` (the message lists them).
    """
    old = next((o for o in DEPRECATED_SELECTORS if name_key(o) == name_key(str(selector))), None)
    return resolve("selector", DEPRECATED_SELECTORS[old] if old else selector, SELECTORS).name
