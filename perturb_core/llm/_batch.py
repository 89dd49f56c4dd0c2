"""One batch runner for every LLM method: ask many prompts (concurrent, cached, retried), parse each answer.

LGR's selector and CORE-Reasoning (and its isolated baseline) all do the same thing: send a list
of prompts through :meth:`LLM.complete_many`, parse each answer, and keep a record of what was
sent and received. :func:`run_batch` does it once; an :class:`Exchange` is the record of one
prompt. A failed call or an answer the parser rejects never aborts the batch: it is recorded
in that prompt's ``error``.

Example:
    >>> exchanges = run_batch(llm, prompts, float)  # doctest: +SKIP
    >>> [e.parsed if e.ok else e.error for e in exchanges]  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from perturb_core.errors import LLMError, PerturbCoreError, ValidationError
from perturb_core.llm._client import LLM
from perturb_core.llm._messages import Messages, _validate_messages, prompt_hash
from perturb_core.serialize import to_jsonable

__all__ = ["Exchange", "Parser", "run_batch"]

T = TypeVar("T")

Parser = Callable[[str], T]
"""Turns an answer text into a value; raises :class:`~perturb_core.errors.PerturbCoreError` or
:class:`ValueError` when the answer is unusable."""


@dataclass(frozen=True)
class Exchange(Generic[T]):
    """What was sent to the model for one prompt, what came back, and what the parser made of it.

    Attributes:
        prompt: the chat messages sent (validated copies).
        prompt_hash: :func:`perturb_core.llm.prompt_hash` of the prompt.
        model: the model asked.
        raw_answer: the answer text, as returned; ``None`` exactly when the call failed.
        cache_hit: whether the answer came from the response cache (no HTTP request was made).
        error: why this prompt has no parsed value: the :class:`~perturb_core.errors.LLMError`
            message of a failed call (``raw_answer`` is ``None``), or the message of the
            exception the parser raised (``raw_answer`` is set); ``None`` when all went well.
        parsed: the parser's value, or ``None`` when the call failed or the parser raised.
        elapsed_s: wall time of the call in seconds (0.0 for a failed call).
    """

    prompt: tuple[Mapping[str, str], ...]
    prompt_hash: str
    model: str
    raw_answer: str | None
    cache_hit: bool
    error: str | None
    parsed: T | None
    elapsed_s: float

    @property
    def ok(self) -> bool:
        """Whether the call succeeded and the parser accepted the answer."""
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: every field (``prompt`` as a list of messages, ``parsed`` as plain JSON) and ``ok``."""
        return {
            "prompt": [dict(m) for m in self.prompt],
            "prompt_hash": self.prompt_hash,
            "model": self.model,
            "raw_answer": self.raw_answer,
            "cache_hit": self.cache_hit,
            "error": self.error,
            "parsed": _jsonable(self.parsed),
            "elapsed_s": round(self.elapsed_s, 4),
            "ok": self.ok,
        }


def _jsonable(value: object) -> object:
    """A parsed value as plain JSON: its ``to_dict()`` if it has one, a dataclass as its fields."""
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        value = to_dict()
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    return to_jsonable(value)


def _parsers(parse: Parser[T] | Sequence[Parser[T]], n: int) -> list[Parser[T]]:
    """One parser per prompt: ``parse`` repeated, or the given sequence checked against ``n``."""
    if callable(parse):
        return [parse] * n
    if isinstance(parse, str | bytes) or not isinstance(parse, Sequence):
        raise ValidationError(
            f"parse must be a callable str -> value or a sequence of them (one per prompt); "
            f"got {type(parse).__name__}"
        )
    if len(parse) != n:
        raise ValidationError(f"parse has {len(parse)} parser(s) for {n} prompt(s); pass one per prompt")
    bad = [i for i, p in enumerate(parse) if not callable(p)]
    if bad:
        raise ValidationError(
            f"parse[{bad[0]}] is {type(parse[bad[0]]).__name__}, not a callable str -> value"
        )
    return list(parse)


def run_batch(
    llm: LLM,
    prompts: Sequence[Messages],
    parse: Parser[T] | Sequence[Parser[T]],
    *,
    temperature: float | None = 0.0,
    max_tokens: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[Exchange[T]]:
    """Ask ``llm`` every prompt (concurrently, through its cache and retries) and parse each answer.

    The prompts go through :meth:`LLM.complete_many` in one call; answers are parsed in the
    calling thread once all have arrived. A call that fails (after the retries) or an answer
    whose parser raises :class:`~perturb_core.errors.PerturbCoreError` or :class:`ValueError`
    gives an :class:`Exchange` with ``error`` set and ``parsed=None``; the other prompts are
    unaffected. Any other exception of a parser is a bug and propagates.

    Args:
        llm: the model (:meth:`LLM.from_settings`).
        prompts: the chat prompts (see :func:`perturb_core.llm.render_messages`).
        parse: one parser for every answer, or a sequence of parsers, one per prompt (e.g.
            when what counts as a valid answer depends on the prompt's candidate pool).
        temperature: sampling temperature; ``None`` leaves it to the endpoint.
        max_tokens: answer length limit; ``None`` leaves it to the endpoint.
        progress: called as ``progress(done, total)`` after each call finishes, in the calling
            thread (safe for UI updates).

    Returns:
        One :class:`Exchange` per prompt, in ``prompts`` order.

    Raises:
        ValidationError: a prompt is malformed, or ``parse`` is neither a callable nor a
            sequence of callables of the prompts' length (checked before any request is sent).
    """
    messages = [_validate_messages(m) for m in prompts]
    parsers = _parsers(parse, len(messages))
    if not messages:
        return []
    answers = llm.complete_many(messages, temperature=temperature, max_tokens=max_tokens, progress=progress)
    out: list[Exchange[T]] = []
    for msgs, parser, answer in zip(messages, parsers, answers, strict=True):
        prompt, phash = tuple(msgs), prompt_hash(msgs)
        if isinstance(answer, LLMError):
            out.append(Exchange(prompt, phash, llm.model, None, False, str(answer), None, 0.0))
            continue
        try:
            parsed, error = parser(answer.text), None
        except (PerturbCoreError, ValueError) as exc:
            parsed, error = None, str(exc) or type(exc).__name__
        out.append(
            Exchange(
                prompt, phash, answer.model, answer.text, answer.cache_hit, error, parsed, answer.elapsed_s
            )
        )
    return out
