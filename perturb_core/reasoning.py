"""CORE-Reasoning and the isolated "plausibility" LLM baseline: prompts, answer parsing, batch scoring.

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

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from perturb_core.data.registry import LabelSet
from perturb_core.errors import LLMError, ValidationError
from perturb_core.evidence import CoreIndex, EvidenceExplanation, core_index, explain, gene_frequency
from perturb_core.kg import KnowledgeGraph
from perturb_core.llm import LLM, LLMResponse, prompt_hash, render_messages

__all__ = [
    "REASONING_COLUMNS",
    "ParsedAnswer",
    "core_reasoning",
    "isolated_llm",
    "parse_answer",
    "parse_probability",
    "render_core_prompt",
    "render_isolated_prompt",
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
)
"""Columns of :func:`core_reasoning` and :func:`isolated_llm`, in order."""

DEFAULT_BUDGET = 20  # evidence items (positive + negative) shown to the model
MAX_TOKENS = 400
_RATIONALE_CHARS = 600

_SYSTEM = (
    "You are a careful molecular biologist. You estimate how likely a gene's expression changes "
    "after a perturbation in a given cell line. You answer with a calibrated probability: most "
    "genes do not respond to most perturbations, so reserve high values for strong support."
)

_FORMAT = (
    "Answer in exactly two lines:\nProbability: <a number between 0 and 1>\nRationale: <one or two sentences>"
)

_QUESTION = {
    "de": "Is {gene} differentially expressed (up or down) when {action} in {cell}?",
    "dir": "{gene} changes expression when {action} in {cell}. Does it go UP (rather than down)?",
}
_PROB_MEANS = {
    "de": "the probability that {gene} is differentially expressed",
    "dir": "the probability that {gene} goes up",
}
_ACTION = {"knockdown": "{p} is knocked down (CRISPRi)", "drug": "cells are treated with {p}"}
_POS_MEANS = {"de": "responded", "dir": "went up"}
_NEG_MEANS = {"de": "measured and did NOT respond", "dir": "went down"}


# --------------------------------------------------------------------------- prompts


def _describe_lines(label: str, info: Mapping[str, Any]) -> list[str]:
    lines = []
    for key, title in (
        ("targets", "targets"),
        ("mechanism", "mechanism"),
        ("pathways", "pathways"),
        ("processes", "biological processes"),
    ):
        values = info.get(key)
        if values:
            lines.append(f"- {label} {title}: {'; '.join(str(v) for v in values)}")
    if not lines:
        lines.append(f"- {label}: no annotations in the knowledge graph")
    return lines


def _where(context: Mapping[str, Any]) -> str:
    cell = context.get("cell_line") or "the cell line"
    return f"{cell} cells"


def _item_line(k: int, item: Mapping[str, Any]) -> str:
    path = " -> ".join(str(x) for x in item.get("path_names", []))
    detail = f", {item['path_detail']}" if item.get("path_detail") else ""
    return (
        f"{k}. {item['perturbation']} ({item.get('relation_label', item['relation'])}: {path}{detail}; "
        f"relation weight {float(item['weight']):.3g})"
    )


def render_core_prompt(explanation: EvidenceExplanation) -> list[dict[str, str]]:
    """The CORE-Reasoning prompt for one pair: context plus positive and negative evidence.

    The evidence is the explanation's (use ``explain(..., budget=N)`` to bound its length).
    It states the gene's training response rate as a base rate. No test label is included.

    Args:
        explanation: the pair's evidence from :func:`perturb_core.evidence.explain`.

    Returns:
        Chat messages (system, user).
    """
    e = explanation
    context = {"cell_line": e.cell_line}
    action = _ACTION[e.perturbation_kind].format(p=e.perturbation)
    question = _QUESTION[e.task].format(gene=e.gene, action=action, cell=_where(context))
    gf = e.gene_frequency
    n_meas, n_resp = int(gf.get("n_measured") or 0), int(gf.get("n_responded") or 0)
    base = (
        f"Base rate: {e.gene} {_POS_MEANS[e.task]} under {n_resp} of the {n_meas} training "
        f"perturbations that measured it ({n_resp / n_meas:.0%})."
        if n_meas
        else f"Base rate: {e.gene} has no training outcome."
    )
    lines = [
        f"Question: {question}",
        "",
        "Context from the knowledge graph:",
        *_describe_lines(e.perturbation, e.context.get("perturbation", {})),
        *_describe_lines(e.gene, e.context.get("gene", {})),
        base,
        "",
        f"Positive evidence: perturbations related to {e.perturbation} under which {e.gene} "
        f"{_POS_MEANS[e.task]} (training data):",
    ]
    lines += [_item_line(k, it) for k, it in enumerate(e.positive, 1)] or ["(none)"]
    lines += [
        "",
        f"Negative evidence: perturbations related to {e.perturbation} under which {e.gene} was "
        f"{_NEG_MEANS[e.task]} (training data):",
    ]
    lines += [_item_line(k, it) for k, it in enumerate(e.negative, 1)] or ["(none)"]
    if e.n_unmeasured:
        lines += [
            "",
            f"Also related to {e.perturbation}: {e.n_unmeasured} training perturbations that did not "
            f"measure {e.gene} (no outcome either way).",
        ]
    lines += [
        "",
        "Contrast the two sides: which relations to "
        f"{e.perturbation} are closest and most mechanistic, and what do the related perturbations "
        f"under which {e.gene} {_POS_MEANS[e.task]} have in common that the others lack? Then give "
        f"{_PROB_MEANS[e.task].format(gene=e.gene)}.",
        _FORMAT,
    ]
    return render_messages(_SYSTEM, "\n".join(lines))


def render_isolated_prompt(perturbation: str, gene: str, context: Mapping[str, Any]) -> list[dict[str, str]]:
    """The isolated ("plausibility") prompt: the pair and what its members are, no evidence.

    Args:
        perturbation: the perturbation's name.
        gene: the gene's name.
        context: ``task`` (``de``/``dir``), ``kind`` (``knockdown``/``drug``), ``cell_line``,
            and optional descriptions ``perturbation`` and ``gene`` (dicts with ``targets``,
            ``mechanism``, ``pathways``, ``processes``).

    Returns:
        Chat messages (system, user).

    Raises:
        ValidationError: unknown task or kind.
    """
    task = context.get("task", "de")
    kind = context.get("kind", "knockdown")
    if task not in _QUESTION:
        raise ValidationError(f"unknown task {task!r}; use 'de' or 'dir'")
    if kind not in _ACTION:
        raise ValidationError(f"unknown perturbation kind {kind!r}; use 'knockdown' or 'drug'")
    action = _ACTION[kind].format(p=perturbation)
    lines = [
        f"Question: {_QUESTION[task].format(gene=gene, action=action, cell=_where(context))}",
        "",
        "What is known about them:",
        *_describe_lines(perturbation, context.get("perturbation") or {}),
        *_describe_lines(gene, context.get("gene") or {}),
        "",
        f"From biological knowledge alone, give {_PROB_MEANS[task].format(gene=gene)}.",
        _FORMAT,
    ]
    return render_messages(_SYSTEM, "\n".join(lines))


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class ParsedAnswer:
    """A parsed LLM answer.

    Attributes:
        probability: the probability in [0, 1], or ``None`` when the answer has no usable one.
        rationale: the stated rationale (or the answer's text without the probability line).
        error: why ``probability`` is ``None`` (or a note such as a percentage conversion);
            ``None`` for a clean answer.
    """

    probability: float | None
    rationale: str
    error: str | None


_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_PROB_RE = re.compile(
    rf"probab\w*[^\n]{{0,60}}?(?:\bis\b|=|:|≈|~|\bof\b)\s*"
    rf"(?:(?:about|approximately|around|roughly)\s+)?~?\s*({_NUM})\s*(%|percent)?",
    re.IGNORECASE,
)
_PERCENT_RE = re.compile(rf"({_NUM})\s*(%|percent)", re.IGNORECASE)
_BARE_RE = re.compile(rf"^\s*({_NUM})\s*(%)?\s*\.?\s*$")
_RATIONALE_RE = re.compile(r"rationale\s*[:\-]\s*(.+)", re.IGNORECASE | re.DOTALL)
_REFUSAL_RE = re.compile(
    r"\b(i\s+(?:cannot|can't|can not|won't|am unable|am not able)|as an ai|i'm (?:sorry|unable|not able))",
    re.IGNORECASE,
)
_JSON_RE = re.compile(r"\{[^{}]*\}", re.DOTALL)


def _to_probability(value: str | float, percent: bool) -> tuple[float | None, str | None]:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None, f"probability {value!r} is not a number"
    if not math.isfinite(x):
        return None, f"probability {value!r} is not finite"
    if percent:
        x = x / 100.0
    if x < 0 or x > 1:
        shown = f"{value}%" if percent else f"{value}"
        return None, f"probability {shown} is outside [0, 1]; answer rejected"
    return x, None


def _from_json(text: str) -> tuple[float | None, str | None, str | None] | None:
    for block in _JSON_RE.findall(text):
        try:
            obj = json.loads(block)
        except ValueError:
            continue
        if not isinstance(obj, dict):
            continue
        keys = {str(k).lower(): k for k in obj}
        key = keys.get("probability") or keys.get("p") or keys.get("prob")
        if key is None:
            continue
        value = obj[key]
        rationale = next(
            (str(obj[keys[k]]) for k in ("rationale", "reason", "explanation") if k in keys), None
        )
        percent = isinstance(value, str) and value.strip().endswith("%")
        raw = value.strip().rstrip("%").strip() if isinstance(value, str) else value
        prob, err = _to_probability(raw, percent)
        return prob, rationale, err
    return None


def parse_answer(text: str | None) -> ParsedAnswer:
    """Parse an LLM answer into a probability and a rationale, robustly.

    Accepted, in order: a JSON object with ``probability`` (and optional ``rationale``); a
    ``Probability: 0.7`` / ``probability = 70%`` / ``probability is about 0.3`` phrase
    (markdown emphasis ignored); a single percentage anywhere (``70%``); an answer that is
    only a number. Percentages are divided by 100. A number outside [0, 1] (after that) is
    rejected, never clipped, and the reason is recorded. An answer with no probability
    (including refusals) gives ``probability=None`` and an ``error`` saying why.

    Args:
        text: the raw answer (``None`` or empty counts as no answer).

    Returns:
        A :class:`ParsedAnswer`.
    """
    if text is None or not str(text).strip():
        return ParsedAnswer(None, "", "empty answer")
    raw = str(text)
    clean = raw.replace("**", "").replace("__", "").replace("`", "")
    rationale_match = _RATIONALE_RE.search(clean)
    rationale = rationale_match.group(1).strip() if rationale_match else ""

    parsed = _from_json(clean)
    if parsed is not None:
        prob, json_rationale, err = parsed
        return ParsedAnswer(prob, (json_rationale or rationale or "")[:_RATIONALE_CHARS], err)

    m = _PROB_RE.search(clean)
    if m:
        prob, err = _to_probability(m.group(1), bool(m.group(2)))
        if not rationale:
            rationale = (clean[: m.start()] + clean[m.end() :]).strip()
        return ParsedAnswer(prob, rationale[:_RATIONALE_CHARS], err)

    bare = _BARE_RE.match(clean)
    if bare:
        prob, err = _to_probability(bare.group(1), bool(bare.group(2)))
        return ParsedAnswer(prob, rationale[:_RATIONALE_CHARS], err)

    percents = _PERCENT_RE.findall(clean)
    if len(percents) == 1:
        prob, err = _to_probability(percents[0][0], True)
        return ParsedAnswer(prob, (rationale or clean.strip())[:_RATIONALE_CHARS], err)

    if _REFUSAL_RE.search(clean):
        error = "the model declined to give a probability"
    elif len(percents) > 1:
        error = f"{len(percents)} different percentages and no 'Probability:' line; ambiguous"
    else:
        error = "no probability in the answer"
    return ParsedAnswer(None, (rationale or clean.strip())[:_RATIONALE_CHARS], error)


def parse_probability(text: str | None) -> float | None:
    """The probability in an LLM answer, or ``None`` (see :func:`parse_answer`)."""
    return parse_answer(text).probability


# --------------------------------------------------------------------------- batch scoring


def _pairs(labels: LabelSet, pairs: pd.DataFrame) -> pd.DataFrame:
    """Validated copy of ``pairs`` (``pert``, ``gene`` as str); an unknown name raises with the closest ones."""
    missing = {"pert", "gene"} - set(pairs.columns)
    if missing:
        raise ValidationError(f"pairs needs columns pert and gene; missing {sorted(missing)}")
    pc, gc = labels.pair_codes(pairs["pert"], pairs["gene"])
    t = labels.table
    frame = pd.DataFrame(
        {"pert": t["pert"].cat.categories[pc].to_numpy(), "gene": t["gene"].cat.categories[gc].to_numpy()}
    )
    return frame


def _run(
    llm: LLM,
    frame: pd.DataFrame,
    prompts: Sequence[list[dict[str, str]]],
    fallback: np.ndarray,
    *,
    max_tokens: int | None,
    progress: Callable[[int, int], None] | None,
) -> pd.DataFrame:
    """Ask the model every prompt (concurrently, cached), parse, and fall back where needed."""
    answers = llm.complete_many(list(prompts), temperature=0.0, max_tokens=max_tokens, progress=progress)
    n = len(frame)
    prob = np.full(n, np.nan)
    errors: list[str | None] = [None] * n
    rationale = [""] * n
    raw: list[str | None] = [None] * n
    hit = np.zeros(n, dtype=bool)
    for k, ans in enumerate(answers):
        if isinstance(ans, LLMError):
            errors[k] = f"LLM call failed: {ans}"
            continue
        assert isinstance(ans, LLMResponse)
        raw[k] = ans.text
        hit[k] = ans.cache_hit
        parsed = parse_answer(ans.text)
        rationale[k] = parsed.rationale
        if parsed.probability is None:
            errors[k] = parsed.error
        else:
            prob[k] = parsed.probability
    failed = np.isnan(prob)
    out = frame.copy()
    out["score"] = np.where(failed, fallback, prob)
    out["probability"] = prob
    out["fallback"] = failed
    out["fallback_score"] = fallback
    out["error"] = errors
    out["rationale"] = rationale
    out["raw"] = raw
    out["cache_hit"] = hit
    out["prompt_hash"] = [prompt_hash(p) for p in prompts]
    out["prompt"] = list(prompts)
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
    return _run(llm, frame, prompts, vote, max_tokens=max_tokens, progress=progress)


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
    prompts = [
        render_isolated_prompt(p, g, {**base, **index.context(p, g)})
        for p, g in zip(frame["pert"], frame["gene"], strict=True)
    ]
    prior = gene_frequency(labels).reindex(frame["gene"]).to_numpy()
    return _run(llm, frame, prompts, prior, max_tokens=max_tokens, progress=progress)
