"""CORE-Reasoning and the isolated "plausibility" LLM baseline: batch scoring through the LLM cache.

CORE-Reasoning gives a language model the query context (what the perturbation and the gene
are, the cell line) and the contrastive evidence of :func:`perturb_core.evidence.explain`
(related perturbations under which the gene responded, and under which it was measured and
did not), and asks for a probability and a short rationale. The isolated baseline asks the
same model about the pair with no evidence at all.

Answers are parsed by :func:`parse_answer`. A failed call or an answer without a usable
probability is recorded (``error``) and the pair falls back to a non-LLM score (CORE-Voting
for ``core_reasoning``, the gene's training frequency for ``isolated_llm``) with
``fallback=True``: a fallback is never presented as an LLM answer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from perturb_core.data.registry import LabelSet
from perturb_core.evidence._explain import explain
from perturb_core.evidence._index import CoreIndex, _pair_codes, core_index, gene_frequency
from perturb_core.evidence._prompts import (
    CORE_SCHEMA,
    ParsedAnswer,
    parse_answer,
    parse_json_answer,
    render_core_prompt,
    render_isolated_prompt,
)
from perturb_core.kg import KnowledgeGraph

if TYPE_CHECKING:  # the LLM layer (and its client) is imported when a model is called
    from perturb_core.llm import LLM, Exchange

__all__ = [
    "DEFAULT_BUDGET",
    "ESTIMATE_SAMPLE",
    "MAX_TOKENS",
    "REASONING_COLUMNS",
    "core_reasoning",
    "estimate_reasoning",
    "isolated_llm",
]

REASONING_COLUMNS: tuple[str, ...] = (
    "pert",
    "gene",
    "score",
    "probability",
    "fallback",
    "fallback_score",
    "error",
    "rationale",
    "raw",
    "cache_hit",
    "prompt_hash",
    "prompt",
    "answer_format_used",
    "format_note",
    "prompt_tokens",
    "completion_tokens",
    "elapsed_s",
)
"""Columns of :func:`core_reasoning` and :func:`isolated_llm`, in order."""

DEFAULT_BUDGET = 20
"""Evidence items (positive + negative) shown to the model per prompt."""
MAX_TOKENS = 400
"""Answer length limit of a CORE-Reasoning or isolated-LLM call."""
ESTIMATE_SAMPLE = 50
"""Pairs whose prompts :func:`estimate_reasoning` renders (the rest are extrapolated)."""


def _pairs(labels: LabelSet, pairs: pd.DataFrame) -> pd.DataFrame:
    """Validated copy of ``pairs`` (``pert``, ``gene`` as str); an unknown name raises with the closest ones."""
    return _pair_codes(labels, pairs)[0]


def _probability(ex: Exchange[ParsedAnswer]) -> float:
    """The model's probability, NaN when the call failed or the answer had none."""
    return np.nan if ex.parsed is None or ex.parsed.probability is None else ex.parsed.probability


def _error(ex: Exchange[ParsedAnswer]) -> str | None:
    """Why an exchange has no probability (``None`` when it has one)."""
    if ex.raw_answer is None:
        return f"LLM call failed: {ex.error}"
    if ex.parsed is None:
        return ex.error
    return ex.parsed.error if ex.parsed.probability is None else None


def _run(
    llm: LLM,
    frame: pd.DataFrame,
    prompts: Sequence[list[dict[str, str]]],
    fallback: np.ndarray,
    *,
    max_tokens: int | None,
    progress: Callable[[int, int], None] | None,
    json_prompts: Callable[[], Sequence[list[dict[str, str]]]],
) -> pd.DataFrame:
    """Ask the model every prompt (concurrently, cached), parse, and fall back where needed.

    With ``llm.answer_format`` ``json`` or ``auto`` the json prompts are asked first (schema
    :data:`CORE_SCHEMA`); where the server refuses or ignores it, the text prompt is asked.
    """
    from perturb_core.llm import JSONVariant, run_batch

    variants = (
        [JSONVariant(m, CORE_SCHEMA, parse_json_answer, "core_probability") for m in json_prompts()]
        if llm.answer_format != "text"
        else None
    )
    exchanges = run_batch(
        llm,
        prompts,
        parse_answer,
        temperature=0.0,
        max_tokens=max_tokens,
        progress=progress,
        json_variants=variants,
    )
    prob = np.array([_probability(ex) for ex in exchanges], dtype=float).reshape(-1)
    errors = [_error(ex) for ex in exchanges]
    rationale = [ex.parsed.rationale if ex.parsed is not None else "" for ex in exchanges]
    failed = np.isnan(prob)
    out = frame.copy()
    out["score"] = np.where(failed, fallback, prob)
    out["probability"] = prob
    out["fallback"] = failed
    out["fallback_score"] = fallback
    out["error"] = errors
    out["rationale"] = rationale
    out["raw"] = [ex.raw_answer for ex in exchanges]
    out["cache_hit"] = np.array([ex.cache_hit for ex in exchanges], dtype=bool)
    out["prompt_hash"] = [ex.prompt_hash for ex in exchanges]
    out["prompt"] = [list(ex.prompt) for ex in exchanges]
    out["answer_format_used"] = [ex.answer_format_used for ex in exchanges]
    out["format_note"] = [ex.format_note for ex in exchanges]
    out["prompt_tokens"] = pd.array([ex.prompt_tokens for ex in exchanges], dtype="Int64")
    out["completion_tokens"] = pd.array([ex.completion_tokens for ex in exchanges], dtype="Int64")
    out["elapsed_s"] = [ex.elapsed_s for ex in exchanges]
    return out[list(REASONING_COLUMNS)]


def core_reasoning(
    labels: LabelSet,
    graph: KnowledgeGraph,
    pairs: pd.DataFrame,
    *,
    llm: LLM,
    budget: int | None = DEFAULT_BUDGET,
    index: CoreIndex | None = None,
    max_tokens: int | None = MAX_TOKENS,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """CORE-Reasoning of many pairs: one prompt each, sent concurrently through the cache.

    Args:
        labels: the label set.
        graph: the knowledge graph.
        pairs: DataFrame with ``pert`` and ``gene`` (names as in the label set).
        llm: the model (:meth:`perturb_core.llm.LLM.from_settings`).
        budget: at most this many evidence items per prompt (strongest relations first).
        index: a prebuilt :class:`CoreIndex` (otherwise the cached one).
        max_tokens: answer length limit.
        progress: called as ``progress(done, total)`` while answers arrive.

    Returns:
        DataFrame with :data:`REASONING_COLUMNS`: ``score`` is the model's probability, or the
        CORE-Voting score where ``fallback`` is True (``error`` says why).
    """
    index = index or core_index(labels, graph)
    frame = _pairs(labels, pairs)
    expl = [
        explain(labels, graph, perturbation=p, gene=g, budget=budget, index=index)
        for p, g in zip(frame["pert"], frame["gene"], strict=True)
    ]
    prompts = [render_core_prompt(e) for e in expl]
    vote = _voting_scores(index, frame)
    return _run(
        llm,
        frame,
        prompts,
        vote,
        max_tokens=max_tokens,
        progress=progress,
        json_prompts=lambda: [render_core_prompt(e, answer_format="json") for e in expl],
    )


def _voting_scores(index: CoreIndex, frame: pd.DataFrame) -> np.ndarray:
    pc = index.perturbations.get_indexer(frame["pert"])
    gc = index.genes.get_indexer(frame["gene"])
    if (pc < 0).any() or (gc < 0).any():  # _pairs resolved every name: this is a bug, not bad input
        raise RuntimeError("pairs were not resolved against the index's label set")
    return index.score(pc.astype(np.intp), gc.astype(np.intp))["score"].to_numpy()


def isolated_llm(
    labels: LabelSet,
    graph: KnowledgeGraph,
    pairs: pd.DataFrame,
    *,
    llm: LLM,
    index: CoreIndex | None = None,
    max_tokens: int | None = MAX_TOKENS,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """The isolated ("plausibility") baseline: the same model asked about each pair with no evidence.

    The prompt holds only what the perturbation and the gene are (graph annotations) and the
    cell line. A failed or unparsable answer falls back to the gene's training frequency.

    Args:
        labels: the label set.
        graph: the knowledge graph.
        pairs: DataFrame with ``pert`` and ``gene``.
        llm: the model.
        index: a prebuilt :class:`CoreIndex` (for the annotations; otherwise the cached one).
        max_tokens: answer length limit.
        progress: called as ``progress(done, total)``.

    Returns:
        DataFrame with :data:`REASONING_COLUMNS`.
    """
    index = index or core_index(labels, graph)
    frame = _pairs(labels, pairs)
    base = {"task": labels.task, "kind": labels.perturbation_kind, "cell_line": labels.cell_line}
    contexts = [
        (p, g, {**base, **index.context(p, g)}) for p, g in zip(frame["pert"], frame["gene"], strict=True)
    ]
    prompts = [render_isolated_prompt(p, g, c) for p, g, c in contexts]
    prior = gene_frequency(labels).reindex(frame["gene"]).to_numpy()
    return _run(
        llm,
        frame,
        prompts,
        prior,
        max_tokens=max_tokens,
        progress=progress,
        json_prompts=lambda: [render_isolated_prompt(p, g, c, answer_format="json") for p, g, c in contexts],
    )


def estimate_reasoning(
    labels: LabelSet,
    graph: KnowledgeGraph,
    pairs: pd.DataFrame,
    *,
    llm: LLM,
    isolated: bool = False,
    budget: int | None = DEFAULT_BUDGET,
    index: CoreIndex | None = None,
    max_tokens: int | None = MAX_TOKENS,
) -> dict[str, object]:
    """What :func:`core_reasoning` (or :func:`isolated_llm`) will cost on ``pairs``, before any call.

    The prompts of a seeded sample of at most :data:`ESTIMATE_SAMPLE` pairs are rendered and
    checked against the cache; counts are scaled to all pairs (the result says so). See
    :func:`perturb_core.llm.estimate_batch` for the definitions.
    """
    from perturb_core.llm import JSONVariant, estimate_batch

    index = index or core_index(labels, graph)
    frame = _pairs(labels, pairs)
    sample = frame.sample(n=min(ESTIMATE_SAMPLE, len(frame)), random_state=0) if len(frame) else frame
    fmt = llm.answer_format
    text, json_ = [], []
    for p, g in zip(sample["pert"], sample["gene"], strict=True):
        if isolated:
            base = {"task": labels.task, "kind": labels.perturbation_kind, "cell_line": labels.cell_line}
            ctx = {**base, **index.context(p, g)}
            text.append(render_isolated_prompt(p, g, ctx))
            json_.append(render_isolated_prompt(p, g, ctx, answer_format="json"))
        else:
            e = explain(labels, graph, perturbation=p, gene=g, budget=budget, index=index)
            text.append(render_core_prompt(e))
            json_.append(render_core_prompt(e, answer_format="json"))
    variants = [JSONVariant(m, CORE_SCHEMA, parse_json_answer, "core_probability") for m in json_]
    return estimate_batch(
        llm,
        text,
        max_tokens=max_tokens,
        json_variants=variants if fmt != "text" else None,
        n_total=len(frame) if len(frame) > len(sample) else None,
    )
