"""One batch runner for every LLM method: ask many prompts (concurrent, cached, retried), parse each answer.

LGR's selector and CORE-Reasoning (and its isolated baseline) all do the same thing: send a list
of prompts through :meth:`LLM.complete_many`, parse each answer, and keep a record of what was
sent and received. :func:`run_batch` does it once; an :class:`Exchange` is the record of one
prompt. A failed call or an answer the parser rejects never aborts the batch: it is recorded
in that prompt's ``error``. With ``llm.answer_format`` ``json`` or ``auto`` and a
:class:`JSONVariant` per prompt, each prompt is first asked for a JSON answer (schema in the
request); a refused request or an answer that is not the JSON asked for is asked again in text,
and ``answer_format_used`` says which format gave the answer.

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
from perturb_core.llm._client import LLM, FormatRejectedError, LLMResponse
from perturb_core.llm._formats import JSONAnswerError, structured_options
from perturb_core.llm._messages import Messages, _validate_messages, prompt_hash
from perturb_core.serialize import to_jsonable

__all__ = ["Exchange", "JSONVariant", "Parser", "run_batch"]

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
        answer_format_used: ``"json"`` or ``"text"``: the format of the request that gave
            ``raw_answer`` (``None`` when no answer came back).
        format_note: why a json request fell back to text (refused or ignored), else ``None``.
        prompt_tokens: prompt tokens the server counted over this prompt's calls (``None``: unknown).
        completion_tokens: answer tokens the server counted (``None``: unknown).
    """

    prompt: tuple[Mapping[str, str], ...]
    prompt_hash: str
    model: str
    raw_answer: str | None
    cache_hit: bool
    error: str | None
    parsed: T | None
    elapsed_s: float
    answer_format_used: str | None = None
    format_note: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None

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
            "answer_format_used": self.answer_format_used,
            "format_note": self.format_note,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
        }


@dataclass(frozen=True)
class JSONVariant(Generic[T]):
    """The json-format version of one prompt.

    Attributes:
        messages: the prompt asking for a JSON answer.
        schema: the JSON schema sent to the server (e.g. the candidate pool as an enum).
        parse: reads the JSON answer; raises :class:`~perturb_core.llm.JSONAnswerError` when the
            answer is not the JSON object asked for (then the text prompt is asked instead), and
            validates everything else itself (never trust the server to enforce the schema).
        name: the schema's name (the OpenAI request shape needs one).
    """

    messages: Messages
    schema: Mapping[str, Any]
    parse: Parser[T]
    name: str = "answer"


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


def _add(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else a + b


def run_batch(
    llm: LLM,
    prompts: Sequence[Messages],
    parse: Parser[T] | Sequence[Parser[T]],
    *,
    temperature: float | None = 0.0,
    max_tokens: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    json_variants: Sequence[JSONVariant[T]] | None = None,
    on_exchange: Callable[[int, Exchange[T]], None] | None = None,
) -> list[Exchange[T]]:
    """Ask ``llm`` every prompt (concurrently, through its cache and retries) and parse each answer.

    A call that fails (after the retries) or an answer whose parser raises
    :class:`~perturb_core.errors.PerturbCoreError` or :class:`ValueError` gives an
    :class:`Exchange` with ``error`` set and ``parsed=None``; the other prompts are unaffected.
    Any other exception of a parser is a bug and propagates. After
    ``llm.max_consecutive_failures`` failed calls in a row the batch stops asking: the prompts
    not asked have ``raw_answer=None`` and an ``error`` starting with "not asked".

    Answer formats (``llm.answer_format``, used only when ``json_variants`` is given): ``text``
    asks the text prompts; ``json`` asks every prompt's :class:`JSONVariant` with the schema in
    the request shape of ``llm.family``, and asks the text prompt instead where the server
    refused it (HTTP 400/422) or ignored it (the answer is not the JSON asked for); ``auto``
    asks the first prompt in json and, if the server refuses, the whole batch in text.

    Args:
        llm: the model (:meth:`LLM.from_settings`).
        prompts: the chat prompts in the text format (see :func:`perturb_core.llm.render_messages`).
        parse: one parser for every answer, or a sequence of parsers, one per prompt (e.g.
            when what counts as a valid answer depends on the prompt's candidate pool).
        temperature: sampling temperature; ``None`` leaves it to the endpoint.
        max_tokens: answer length limit; ``None`` leaves it to the endpoint.
        progress: called as ``progress(done, total)`` as prompts finish, in the calling thread.
        json_variants: one :class:`JSONVariant` per prompt (``None``: text only).
        on_exchange: called as ``on_exchange(i, exchange)`` as soon as prompt ``i`` has its final
            record, in the calling thread (e.g. to append it to a log that survives a kill).

    Returns:
        One :class:`Exchange` per prompt, in ``prompts`` order.

    Raises:
        ValidationError: a prompt is malformed, or ``parse`` / ``json_variants`` do not match
            the prompts (checked before any request is sent).
    """
    messages = [_validate_messages(m) for m in prompts]
    parsers = _parsers(parse, len(messages))
    n = len(messages)
    if not messages:
        return []
    use_json = json_variants is not None and llm.answer_format != "text"
    if json_variants is not None:
        if len(json_variants) != n:
            raise ValidationError(f"json_variants has {len(json_variants)} entries for {n} prompt(s)")
        for v in json_variants:
            _validate_messages(v.messages)
    out: list[Exchange[T] | None] = [None] * n
    done = [0]
    carry: dict[int, tuple[str, LLMResponse | None]] = {}  # prompt -> (why text, the ignored json answer)

    def finish(i: int, ex: Exchange[T]) -> None:
        out[i] = ex
        done[0] += 1
        if on_exchange is not None:
            on_exchange(i, ex)
        if progress is not None:
            progress(done[0], n)

    def failed(i: int, msgs: list[dict[str, str]], error: LLMError) -> Exchange[T]:
        note = carry.get(i, (None, None))[0]
        return Exchange(
            tuple(msgs), prompt_hash(msgs), llm.model, None, False, str(error), None, 0.0, None, note
        )

    def answered(
        msgs: list[dict[str, str]],
        answer: LLMResponse,
        parsed: T | None,
        error: str | None,
        fmt: str,
        note: str | None = None,
        first: LLMResponse | None = None,
    ) -> Exchange[T]:
        """An answered prompt; ``first`` is an ignored json answer whose time and tokens count too."""
        return Exchange(
            tuple(msgs),
            prompt_hash(msgs),
            answer.model,
            answer.text,
            answer.cache_hit,
            error,
            parsed,
            answer.elapsed_s + (first.elapsed_s if first else 0.0),
            fmt,
            note,
            _add(answer.prompt_tokens, first.prompt_tokens if first else None),
            _add(answer.completion_tokens, first.completion_tokens if first else None),
        )

    def on_text(order: list[int]) -> Callable[[int, LLMResponse | LLMError], None]:
        def handle(j: int, answer: LLMResponse | LLMError) -> None:
            i = order[j]
            msgs = messages[i]
            if isinstance(answer, LLMError):
                finish(i, failed(i, msgs, answer))
                return
            try:
                parsed, error = parsers[i](answer.text), None
            except (PerturbCoreError, ValueError) as exc:
                parsed, error = None, str(exc) or type(exc).__name__
            note, first = carry.get(i, (None, None))
            finish(i, answered(msgs, answer, parsed, error, "text", note, first))

        return handle

    def on_json(order: list[int]) -> Callable[[int, LLMResponse | LLMError], None]:
        def handle(j: int, answer: LLMResponse | LLMError) -> None:
            i = order[j]
            variant = json_variants[i]  # type: ignore[index]
            msgs = _validate_messages(variant.messages)
            if isinstance(answer, FormatRejectedError):
                carry[i] = (f"json refused by the server: {str(answer)[:200]}", None)
                return
            if isinstance(answer, LLMError):
                finish(i, failed(i, msgs, answer))
                return
            try:
                parsed, error = variant.parse(answer.text), None
            except JSONAnswerError as exc:
                carry[i] = (f"json ignored by the server: {str(exc)[:200]}", answer)
                return
            except (PerturbCoreError, ValueError) as exc:
                parsed, error = None, str(exc) or type(exc).__name__
            finish(i, answered(msgs, answer, parsed, error, "json"))

        return handle

    def ask(order: list[int], as_json: bool) -> None:
        if not order:
            return
        if as_json:
            family = llm.family
            batch = [json_variants[i].messages for i in order]  # type: ignore[index]
            extras = [
                structured_options(family, json_variants[i].schema, json_variants[i].name)  # type: ignore[index]
                for i in order
            ]
            handler = on_json(order)
        else:
            batch, extras, handler = [messages[i] for i in order], None, on_text(order)
        llm.complete_many(
            batch, temperature=temperature, max_tokens=max_tokens, extras=extras, on_result=handler
        )

    if use_json:
        rest = list(range(n))
        if llm.answer_format == "auto":
            ask([0], True)
            rest = rest[1:]
            if 0 in carry and carry[0][1] is None:  # refused: this server takes no json schema
                carry.update({i: ("auto: the server refused json on the first prompt", None) for i in rest})
                rest = []
        ask(rest, True)
    pending = [i for i in range(n) if out[i] is None]
    ask(pending, False)
    return out  # type: ignore[return-value]
