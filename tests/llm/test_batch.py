"""The shared batch runner of perturb_core.llm (run_batch, Exchange) against the fake OpenAI-compatible server."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from perturb_core.config import Settings
from perturb_core.errors import ValidationError
from perturb_core.llm import LLM, Exchange, prompt_hash, render_messages, run_batch
from perturb_core.testing.fake_openai import (
    FAKE_MODEL,
    FakeOpenAI,
    error_body,
    last_user_message,
    raw_completion,
)

BATCH = [render_messages("You are terse.", f"q{i}") for i in range(6)]


def number(text: str) -> int:
    """Parse the echo answer ``echo: q<i>`` into ``i``; anything else is a ValueError."""
    prefix = "echo: q"
    if not text.startswith(prefix):
        raise ValueError(f"not an echo answer: {text!r}")
    return int(text[len(prefix) :])


def test_successes_are_parsed_in_order(
    fake_openai_server: FakeOpenAI, fake_llm_settings: Settings, make_llm: Callable[..., LLM]
) -> None:
    def respond(request: dict[str, Any]) -> str:
        i = int(last_user_message(request)[1:])
        time.sleep(0.005 * (6 - i))  # later prompts finish first
        return f"echo: q{i}"

    fake_openai_server.responder = respond
    out = run_batch(make_llm(fake_llm_settings), BATCH, number)
    assert [e.parsed for e in out] == list(range(6))
    for messages, e in zip(BATCH, out, strict=True):
        assert isinstance(e, Exchange) and e.ok
        assert e.prompt == tuple(messages) and isinstance(e.prompt, tuple)
        assert e.prompt_hash == prompt_hash(messages)
        assert (e.model, e.raw_answer, e.cache_hit, e.error) == (
            FAKE_MODEL,
            f"echo: q{e.parsed}",
            False,
            None,
        )
        assert e.elapsed_s > 0
    assert fake_openai_server.n_requests == 6
    with pytest.raises(dataclasses.FrozenInstanceError):
        out[0].parsed = 7  # type: ignore[misc]


def test_to_dict_is_json_ready(fake_openai_server: FakeOpenAI, fake_llm_settings: Settings) -> None:
    @dataclasses.dataclass(frozen=True)
    class Parsed:
        i: int
        names: tuple[str, ...]

    out = run_batch(LLM.from_settings(fake_llm_settings), BATCH[:1], lambda t: Parsed(number(t), ("a", "b")))
    d = out[0].to_dict()
    assert set(d) == {
        "prompt",
        "prompt_hash",
        "model",
        "raw_answer",
        "cache_hit",
        "error",
        "parsed",
        "elapsed_s",
        "ok",
        "answer_format_used",
        "format_note",
        "prompt_tokens",
        "completion_tokens",
    }
    assert d["prompt"] == BATCH[0] and d["parsed"] == {"i": 0, "names": ["a", "b"]} and d["ok"] is True
    assert json.loads(json.dumps(d)) == d


def test_http_failures_are_recorded_not_raised(
    fake_openai_server: FakeOpenAI, fake_llm_settings: Settings, make_llm: Callable[..., LLM]
) -> None:
    def respond(request: dict[str, Any]) -> str | tuple[int, dict]:
        i = int(last_user_message(request)[1:])
        if i == 1:
            return (400, error_body("bad prompt", "invalid_request_error"))
        if i == 4:
            return (503, error_body("upstream exploded"))
        return f"echo: q{i}"

    fake_openai_server.responder = respond
    sleeps: list[float] = []
    out = run_batch(make_llm(fake_llm_settings, sleeps, llm_max_retries=1), BATCH, number)
    assert [e.ok for e in out] == [True, False, True, True, False, True]
    assert [e.parsed for e in out] == [0, None, 2, 3, None, 5]
    bad, flaky = out[1], out[4]
    assert "HTTP 400: bad prompt" in bad.error  # type: ignore[operator]
    assert "failed after 2 attempt(s), last: HTTP 503: upstream exploded" in flaky.error  # type: ignore[operator]
    for e in (bad, flaky):
        assert (e.raw_answer, e.parsed, e.cache_hit, e.elapsed_s, e.model) == (
            None,
            None,
            False,
            0.0,
            FAKE_MODEL,
        )
        assert e.prompt_hash == prompt_hash(e.prompt)
        assert e.to_dict()["ok"] is False
    assert len(sleeps) == 1  # only the 503 was retried
    assert fake_openai_server.n_requests == 7


@pytest.mark.parametrize(
    "body",
    [
        raw_completion()[:40],
        raw_completion(choices={"0": 1}),
        raw_completion(choices=[{"index": 0}]),
        raw_completion(choices=[{"index": 0, "message": {"role": "assistant", "content": 42}}]),
    ],
    ids=["truncated JSON", "choices not a list", "message missing", "content not a string"],
)
def test_malformed_200_bodies_are_recorded_and_the_batch_goes_on(
    fake_openai_server: FakeOpenAI, fake_llm_settings: Settings, make_llm: Callable[..., LLM], body: bytes
) -> None:
    def respond(request: dict[str, Any]) -> str | bytes:
        i = int(last_user_message(request)[1:])
        return body if i == 2 else f"echo: q{i}"

    fake_openai_server.responder = respond
    sleeps: list[float] = []
    out = run_batch(make_llm(fake_llm_settings, sleeps), BATCH, number)
    assert [e.ok for e in out] == [True, True, False, True, True, True]
    assert [e.parsed for e in out] == [0, 1, None, 3, 4, 5]
    assert "HTTP 200 with a malformed chat.completion body" in out[2].error  # type: ignore[operator]
    assert fake_openai_server.base_url in out[2].error  # type: ignore[operator]
    assert out[2].raw_answer is None and out[2].to_dict()["ok"] is False
    assert sleeps == [] and fake_openai_server.n_requests == 6  # not retried


def test_parse_failures_are_recorded_and_never_abort(
    fake_openai_server: FakeOpenAI, fake_llm_settings: Settings
) -> None:
    def parse(text: str) -> int:
        i = number(text)
        if i == 2:
            raise ValidationError("q2 names a drug outside the pool")
        if i == 3:
            raise ValueError()  # no message: the exception's type is the error
        return i

    fake_openai_server.responder = lambda r: (
        "nonsense" if last_user_message(r) == "q5" else "echo: " + last_user_message(r)
    )
    out = run_batch(LLM.from_settings(fake_llm_settings), BATCH, parse)
    assert [e.parsed for e in out] == [0, 1, None, None, 4, None]
    assert out[2].error == "q2 names a drug outside the pool"
    assert out[3].error == "ValueError"
    assert out[5].error == "not an echo answer: 'nonsense'"
    for e in (out[2], out[3], out[5]):
        assert not e.ok and e.raw_answer is not None  # the call worked; the answer is kept


def test_a_parser_bug_propagates(fake_openai_server: FakeOpenAI, fake_llm_settings: Settings) -> None:
    with pytest.raises(ZeroDivisionError):
        run_batch(LLM.from_settings(fake_llm_settings), BATCH[:2], lambda text: 1 / 0)


def test_one_parser_per_prompt(fake_openai_server: FakeOpenAI, fake_llm_settings: Settings) -> None:
    def only(allowed: set[int]) -> Callable[[str], int]:
        def parse(text: str) -> int:
            i = number(text)
            if i not in allowed:
                raise ValueError(f"{i} is not in the pool {sorted(allowed)}")
            return i

        return parse

    parsers = [only({0}), only({7}), only({2, 3}), only(set()), only({4}), only({5})]
    out = run_batch(LLM.from_settings(fake_llm_settings), BATCH, parsers)
    assert [e.parsed for e in out] == [0, None, 2, None, 4, 5]
    assert out[1].error == "1 is not in the pool [7]" and out[3].error == "3 is not in the pool []"


@pytest.mark.parametrize(
    ("parse", "match"),
    [
        ([number] * 5, r"parse has 5 parser\(s\) for 6 prompt\(s\)"),
        ([number, number, "x", number, number, number], r"parse\[2\] is str"),
        ("number", "parse must be a callable"),
        (42, "parse must be a callable"),
    ],
)
def test_bad_parsers_fail_before_any_request(
    fake_openai_server: FakeOpenAI, fake_llm_settings: Settings, parse: Any, match: str
) -> None:
    with pytest.raises(ValidationError, match=match):
        run_batch(LLM.from_settings(fake_llm_settings), BATCH, parse)
    assert fake_openai_server.n_requests == 0


def test_bad_prompt_fails_before_any_request(
    fake_openai_server: FakeOpenAI, fake_llm_settings: Settings
) -> None:
    with pytest.raises(ValidationError, match=r"messages\[0\] has role"):
        run_batch(LLM.from_settings(fake_llm_settings), [BATCH[0], [{"role": "bot", "content": "x"}]], number)
    assert fake_openai_server.n_requests == 0


def test_second_run_is_served_from_the_cache(
    fake_openai_server: FakeOpenAI, fake_llm_settings: Settings, make_llm: Callable[..., LLM]
) -> None:
    first = run_batch(make_llm(fake_llm_settings), BATCH, number)
    assert fake_openai_server.n_requests == 6 and not any(e.cache_hit for e in first)
    fake_openai_server.reset()
    again = run_batch(make_llm(fake_llm_settings), BATCH, number)  # a new instance, as in a new process
    assert fake_openai_server.n_requests == 0
    assert all(e.cache_hit and e.ok for e in again)
    assert [(e.raw_answer, e.parsed, e.prompt_hash) for e in again] == [
        (e.raw_answer, e.parsed, e.prompt_hash) for e in first
    ]


def test_options_are_sent_as_the_callers_send_them(
    fake_openai_server: FakeOpenAI, fake_llm_settings: Settings
) -> None:
    llm = LLM.from_settings(fake_llm_settings)
    run_batch(llm, BATCH[:1], number)  # the LGR selector's call: temperature 0, no max_tokens
    assert fake_openai_server.requests[-1]["temperature"] == 0.0
    assert "max_tokens" not in fake_openai_server.requests[-1]
    run_batch(llm, BATCH[1:2], number, max_tokens=64)  # CORE-Reasoning's call
    assert (
        fake_openai_server.requests[-1]["temperature"],
        fake_openai_server.requests[-1]["max_tokens"],
    ) == (
        0.0,
        64,
    )
    run_batch(llm, BATCH[2:3], number, temperature=None)
    assert "temperature" not in fake_openai_server.requests[-1]


def test_progress_and_empty_batch(fake_openai_server: FakeOpenAI, fake_llm_settings: Settings) -> None:
    calls: list[tuple[int, int]] = []
    llm = LLM.from_settings(fake_llm_settings)
    out = run_batch(llm, BATCH, number, progress=lambda d, t: calls.append((d, t)))
    assert len(out) == 6
    assert calls == [(d, 6) for d in range(1, 7)]
    calls.clear()
    assert run_batch(llm, [], number, progress=lambda d, t: calls.append((d, t))) == []
    assert run_batch(llm, [], []) == []
    assert calls == [] and fake_openai_server.n_requests == 6
