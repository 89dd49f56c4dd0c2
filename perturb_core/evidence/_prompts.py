"""CORE-Reasoning's prompts (contrastive evidence; isolated plausibility) and the parser of their answers.

The prompts ask for two lines, ``Probability: <0..1>`` and ``Rationale: ...``;
:func:`parse_answer` reads that format and the usual ways a model strays from it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from perturb_core.errors import check_choice
from perturb_core.evidence._explain import EvidenceExplanation
from perturb_core.evidence._items import EvidenceItem

__all__ = [
    "CORE_SCHEMA",
    "ParsedAnswer",
    "parse_answer",
    "parse_json_answer",
    "parse_probability",
    "render_core_prompt",
    "render_isolated_prompt",
]

_RATIONALE_CHARS = 600

_SYSTEM = (
    "You are a careful molecular biologist. You estimate how likely a gene's expression changes "
    "after a perturbation in a given cell line. You answer with a calibrated probability: most "
    "genes do not respond to most perturbations, so reserve high values for strong support."
)

_FORMAT = (
    "Answer in exactly two lines:\nProbability: <a number between 0 and 1>\nRationale: <one or two sentences>"
)

_JSON_FORMAT = (
    'Answer with one JSON object and nothing else: {"probability": <a number between 0 and 1>, '
    '"justification": "<one sentence>"}'
)

CORE_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "properties": {
        "probability": {"type": "number", "minimum": 0, "maximum": 1},
        "justification": {"type": "string"},
    },
    "required": ["probability", "justification"],
    "additionalProperties": False,
}
"""JSON schema of a json-format CORE answer (CORE-Reasoning and the isolated baseline)."""

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


def _messages(user: str) -> list[dict[str, str]]:
    """System and user messages; the LLM layer (and its client) is imported on first use only."""
    from perturb_core.llm import render_messages

    return render_messages(_SYSTEM, user)


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


def _item_line(k: int, item: EvidenceItem) -> str:
    path = " -> ".join(item.path_names)
    detail = f", {item.path_detail}" if item.path_detail else ""
    return (
        f"{k}. {item.perturbation} ({item.relation_label}: {path}{detail}; "
        f"relation weight {float(item.weight):.3g})"
    )


def _format_line(answer_format: str) -> str:
    return _JSON_FORMAT if answer_format == "json" else _FORMAT


def render_core_prompt(
    explanation: EvidenceExplanation, *, answer_format: str = "text"
) -> list[dict[str, str]]:
    """The CORE-Reasoning prompt for one pair: context plus positive and negative evidence.

    The evidence is the explanation's (use ``explain(..., budget=N)`` to bound its length).
    It states the gene's training response rate as a base rate. No test label is included.

    Args:
        explanation: the pair's evidence from :func:`perturb_core.evidence.explain`.
        answer_format: ``"text"`` (``Probability:`` / ``Rationale:`` lines) or ``"json"``
            (a JSON object following :data:`CORE_SCHEMA`).

    Returns:
        Chat messages (system, user).
    """
    e = explanation
    context = {"cell_line": e.cell_line}
    action = _ACTION[e.perturbation_kind].format(p=e.perturbation)
    question = _QUESTION[e.task].format(gene=e.gene, action=action, cell=_where(context))
    gf = e.gene_frequency
    n_meas, n_resp = gf.n_measured, gf.n_responded
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
        _format_line(answer_format),
    ]
    return _messages("\n".join(lines))


def render_isolated_prompt(
    perturbation: str, gene: str, context: Mapping[str, Any], *, answer_format: str = "text"
) -> list[dict[str, str]]:
    """The isolated ("plausibility") prompt: the pair and what its members are, no evidence.

    Args:
        perturbation: the perturbation's name.
        gene: the gene's name.
        context: ``task`` (``de``/``dir``), ``kind`` (``knockdown``/``drug``), ``cell_line``,
            and optional descriptions ``perturbation`` and ``gene`` (dicts with ``targets``,
            ``mechanism``, ``pathways``, ``processes``).
        answer_format: ``"text"`` or ``"json"`` (see :func:`render_core_prompt`).

    Returns:
        Chat messages (system, user).

    Raises:
        UnknownNameError: unknown task or kind (the message lists the valid ones).
    """
    task = context.get("task", "de")
    kind = context.get("kind", "knockdown")
    task = check_choice("task", task, _QUESTION)
    kind = check_choice("perturbation kind", kind, _ACTION)
    action = _ACTION[kind].format(p=perturbation)
    lines = [
        f"Question: {_QUESTION[task].format(gene=gene, action=action, cell=_where(context))}",
        "",
        "What is known about them:",
        *_describe_lines(perturbation, context.get("perturbation") or {}),
        *_describe_lines(gene, context.get("gene") or {}),
        "",
        f"From biological knowledge alone, give {_PROB_MEANS[task].format(gene=gene)}.",
        _format_line(answer_format),
    ]
    return _messages("\n".join(lines))


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


def _pairs_hook(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """A JSON object that keeps every value of a repeated key (as a list under ``__dupes__``)."""
    out: dict[str, object] = {}
    dupes: list[tuple[str, object]] = []
    for k, v in pairs:
        if k in out:
            dupes.append((k, out[k]))
        out[k] = v
    if dupes:
        out["__dupes__"] = dupes
    return out


def _from_json(text: str) -> tuple[list[tuple[float | None, str | None]], str | None] | None:
    """Every probability given in a JSON object of the answer (with its error), and a rationale."""
    found: list[tuple[float | None, str | None]] = []
    rationale: str | None = None
    for block in _JSON_RE.findall(text):
        try:
            obj = json.loads(block, object_pairs_hook=_pairs_hook)
        except ValueError:
            continue
        if not isinstance(obj, dict):
            continue
        keys = {str(k).lower(): k for k in obj}
        prob_keys = [k for k in ("probability", "p", "prob") if k in keys]
        if not prob_keys:
            continue
        values = [obj[keys[k]] for k in prob_keys]
        values += [v for k, v in obj.get("__dupes__", []) if str(k).lower() in prob_keys]  # type: ignore[union-attr]
        for value in values:
            percent = isinstance(value, str) and value.strip().endswith("%")
            raw = value.strip().rstrip("%").strip() if isinstance(value, str) else value
            found.append(_to_probability(raw, percent))  # type: ignore[arg-type]
        rationale = rationale or next(
            (str(obj[keys[k]]) for k in ("rationale", "reason", "explanation") if k in keys), None
        )
    return (found, rationale) if found else None


def _one(found: list[tuple[float | None, str | None]], where: str) -> tuple[float | None, str | None]:
    """The one probability of an answer: repeats of one value are fine; different values are ambiguous."""
    values = sorted({round(p, 9) for p, _ in found if p is not None})
    if len(values) > 1:
        shown = ", ".join(f"{v:g}" for v in values)
        return None, f"{len(values)} different probabilities ({shown}) in {where}; ambiguous, answer rejected"
    if values:
        return values[0], next((e for p, e in found if p is not None and e), None)
    return None, found[0][1]


def parse_answer(text: str | None) -> ParsedAnswer:
    """Parse an LLM answer into a probability and a rationale, robustly.

    Accepted, in order: a JSON object with ``probability`` (and optional ``rationale``); a
    ``Probability: 0.7`` / ``probability = 70%`` / ``probability is about 0.3`` phrase
    (markdown emphasis ignored); a single percentage anywhere (``70%``); an answer that is
    only a number. Percentages are divided by 100. A number outside [0, 1] (after that) is
    rejected, never clipped, and the reason is recorded. One rule for several numbers: an answer
    that gives different probabilities in the form it is read from (two JSON objects, a repeated
    key, two ``Probability:`` phrases, or several percentages with no ``Probability:`` phrase) is
    ambiguous and rejected with the reason; the same value repeated is fine. An answer with no probability
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
        found, json_rationale = parsed
        prob, err = _one(found, "the JSON")
        return ParsedAnswer(prob, (json_rationale or rationale or "")[:_RATIONALE_CHARS], err)

    matches = list(_PROB_RE.finditer(clean))
    if matches:
        prob, err = _one(
            [_to_probability(m.group(1), bool(m.group(2))) for m in matches], "'Probability:' phrases"
        )
        if not rationale:
            m = matches[0]
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


def parse_json_answer(text: str | None) -> ParsedAnswer:
    """Parse a json-format answer (:data:`CORE_SCHEMA`), validating it client-side.

    A ``probability`` that is not a number or lies outside [0, 1] is rejected (``probability``
    ``None`` with the reason), never clipped; ``justification`` (or ``rationale``) is kept.

    Raises:
        JSONAnswerError: the answer is not a JSON object with a ``probability`` field (the server
            ignored the schema: the caller asks in text instead).
    """
    from perturb_core.llm import JSONAnswerError, load_json_object

    obj = load_json_object(text)
    keys = {str(k).lower(): k for k in obj}
    if "probability" not in keys:
        raise JSONAnswerError("the JSON answer has no 'probability' field")
    value = obj[keys["probability"]]
    why = next((obj[keys[k]] for k in ("justification", "rationale") if k in keys), "")
    rationale = " ".join(str(why).split())[:_RATIONALE_CHARS]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return ParsedAnswer(None, rationale, f"probability {value!r:.40} is not a number; answer rejected")
    prob, err = _to_probability(value, False)
    return ParsedAnswer(prob, rationale, err)
