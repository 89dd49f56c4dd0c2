"""The client and LLM of perturb_core.llm against the fake OpenAI-compatible server: options, retries, errors, batches."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from perturb_core.config import Settings
from perturb_core.errors import LLMError, ValidationError
from perturb_core.llm import (
    LLM,
    PLACEHOLDER_API_KEY,
    LLMResponse,
    cache_key,
    get_client,
    render_messages,
    test_connection,
)
from perturb_core.testing.fake_openai import (
    FAKE_API_KEY,
    FAKE_MODEL,
    FakeOpenAI,
    error_body,
    last_user_message,
    raw_completion,
    scripted,
)

MSGS = render_messages("You are terse.", "hello")


def test_none_options_are_not_sent(
    fake_openai_server: FakeOpenAI, fake_llm_settings: Settings, make_llm: Callable[..., LLM]
) -> None:
    llm = make_llm(fake_llm_settings)
    first = llm.complete(MSGS, max_tokens=None)
    assert "max_tokens" not in fake_openai_server.requests[0]
    assert fake_openai_server.requests[0]["temperature"] == 0.0
    llm.complete(MSGS, temperature=None)
    assert "temperature" not in fake_openai_server.requests[1]
    assert first.key == cache_key(FAKE_MODEL, MSGS, {"temperature": 0.0})


def test_get_client_needs_endpoint_or_key(tmp_path: Path) -> None:
    settings = Settings(mirror=None, data_dir=tmp_path, cache_dir=tmp_path / "c")
    with pytest.raises(LLMError, match=r"set OPENAI_BASE_URL .*and/or OPENAI_API_KEY"):
        get_client(settings)
    with pytest.raises(LLMError, match="OPENAI_BASE_URL"):
        LLM.from_settings(settings)


def test_get_client_local_server_without_key(
    fake_openai_server: FakeOpenAI, fake_llm_settings: Settings
) -> None:
    settings = fake_llm_settings.with_(llm_api_key=None, llm_timeout=3.5)
    client = get_client(settings)
    assert client.api_key == PLACEHOLDER_API_KEY
    assert client.max_retries == 0
    assert client.timeout == 3.5
    assert str(client.base_url).rstrip("/") == fake_openai_server.base_url
    assert LLM.from_settings(settings).complete(MSGS).text == "echo: hello"


def test_rate_limit_is_retried(
    fake_openai_server: FakeOpenAI, fake_llm_settings: Settings, make_llm: Callable[..., LLM]
) -> None:
    fake_openai_server.responder = scripted(
        (429, error_body("Rate limit reached", "rate_limit_error")),
        (429, error_body("Rate limit reached", "rate_limit_error")),
        "fine now",
    )
    sleeps: list[float] = []
    answer = make_llm(fake_llm_settings, sleeps, llm_max_retries=3).complete(MSGS)
    assert answer.text == "fine now"
    assert fake_openai_server.n_requests == 3
    assert len(sleeps) == 2
    assert 0.005 <= sleeps[0] <= 0.01 and 0.01 <= sleeps[1] <= 0.02  # exponential with jitter


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_exhaust_retries(
    fake_openai_server: FakeOpenAI,
    fake_llm_settings: Settings,
    status: int,
    make_llm: Callable[..., LLM],
    cache_files: Callable[[Settings], list[Path]],
) -> None:
    fake_openai_server.responder = lambda request: (status, error_body("upstream exploded"))
    sleeps: list[float] = []
    with pytest.raises(
        LLMError, match=rf"failed after 3 attempt\(s\), last: HTTP {status}: upstream exploded"
    ):
        make_llm(fake_llm_settings, sleeps, llm_max_retries=2).complete(MSGS)
    assert fake_openai_server.n_requests == 3
    assert len(sleeps) == 2
    assert cache_files(fake_llm_settings) == []


def test_timeout_is_retried_then_fails(
    fake_openai_server: FakeOpenAI, fake_llm_settings: Settings, make_llm: Callable[..., LLM]
) -> None:
    fake_openai_server.delay_s = 1.0
    sleeps: list[float] = []
    llm = make_llm(fake_llm_settings, sleeps, llm_timeout=0.2, llm_max_retries=4)
    start = time.perf_counter()
    # a timeout is retried once, whatever max_retries: a hanging endpoint costs 2 x timeout, not 5 x
    with pytest.raises(
        LLMError, match=r"timed out 2 times \(no answer within 0.2 s\); .*raise \[llm\] timeout"
    ):
        llm.complete(MSGS)
    assert time.perf_counter() - start < 1.5
    assert fake_openai_server.n_requests == 2
    assert len(sleeps) == 1


def test_connection_refused_fails_at_once_with_the_fix(
    fake_llm_settings: Settings, make_llm: Callable[..., LLM]
) -> None:
    with FakeOpenAI() as server:
        url = server.base_url  # a port that is free again once the server is closed
    sleeps: list[float] = []
    with pytest.raises(LLMError, match="connection refused .* no server listens there; start it"):
        make_llm(fake_llm_settings, sleeps, llm_base_url=url, llm_max_retries=3).complete(MSGS)
    assert sleeps == []  # not retried


def test_bad_key_fails_at_once_without_leaking_it(
    fake_openai_server: FakeOpenAI, fake_llm_settings: Settings, make_llm: Callable[..., LLM]
) -> None:
    secret = "sk-WRONG-very-secret-key-42"
    fake_openai_server.api_key = FAKE_API_KEY  # the server echoes the wrong key back, like some do
    sleeps: list[float] = []
    with pytest.raises(LLMError) as info:
        make_llm(fake_llm_settings, sleeps, llm_api_key=secret).complete(MSGS)
    message = str(info.value)
    assert "HTTP 401" in message and "set OPENAI_API_KEY" in message
    assert fake_openai_server.base_url in message and FAKE_MODEL in message
    assert secret not in message and secret not in repr(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert fake_openai_server.n_requests == 1 and sleeps == []


@pytest.mark.parametrize(
    ("status", "body", "match"),
    [
        (404, error_body("The model `fake-model` does not exist", "invalid_request_error", "model_not_found"),
         r"HTTP 404: The model `fake-model` does not exist; set PERTURB_CORE_LLM_MODEL"),
        (400, error_body("temperature not supported", "invalid_request_error"),
         r"HTTP 400: temperature not supported; check that model 'fake-model' accepts"),
        (403, error_body("no access"), r"HTTP 403: no access; use a key with access"),
    ],
)  # fmt: skip
def test_client_errors_fail_at_once(
    fake_openai_server: FakeOpenAI,
    fake_llm_settings: Settings,
    status: int,
    body: dict,
    match: str,
    make_llm: Callable[..., LLM],
) -> None:
    fake_openai_server.responder = lambda request: (status, body)
    sleeps: list[float] = []
    with pytest.raises(LLMError, match=match):
        make_llm(fake_llm_settings, sleeps).complete(MSGS)
    assert fake_openai_server.n_requests == 1 and sleeps == []


@pytest.mark.parametrize("reply", ["", "   \n", None])
def test_empty_answer_raises(
    fake_openai_server: FakeOpenAI,
    fake_llm_settings: Settings,
    reply: str | None,
    make_llm: Callable[..., LLM],
    cache_files: Callable[[Settings], list[Path]],
) -> None:
    fake_openai_server.responder = lambda request: reply
    with pytest.raises(LLMError, match=r"empty answer from .*fake-model"):
        make_llm(fake_llm_settings).complete(MSGS)
    assert fake_openai_server.n_requests == 1
    assert cache_files(fake_llm_settings) == []


def test_llm_rejects_bad_numbers(fake_llm_settings: Settings, make_llm: Callable[..., LLM]) -> None:
    with pytest.raises(ValidationError, match="concurrency = 0 must be >= 1"):
        make_llm(fake_llm_settings, llm_concurrency=0)
    with pytest.raises(ValidationError, match="max_retries = -1 must be >= 0"):
        make_llm(fake_llm_settings, llm_max_retries=-1)
    with pytest.raises(LLMError, match="timeout"):
        make_llm(fake_llm_settings, llm_timeout=0)


def test_complete_many_keeps_order_and_isolates_failures(
    fake_openai_server: FakeOpenAI, fake_llm_settings: Settings, make_llm: Callable[..., LLM]
) -> None:
    def respond(request: dict[str, Any]) -> str | tuple[int, dict]:
        i = int(last_user_message(request))
        time.sleep(0.005 * (10 - i))  # later prompts finish first
        return (400, error_body("bad prompt", "invalid_request_error")) if i % 3 == 0 else f"answer {i}"

    fake_openai_server.responder = respond
    calls: list[tuple[int, int]] = []
    batch = [render_messages("", str(i)) for i in range(10)]
    results = make_llm(fake_llm_settings).complete_many(batch, progress=lambda d, t: calls.append((d, t)))
    assert len(results) == 10
    for i, result in enumerate(results):
        if i % 3 == 0:
            assert isinstance(result, LLMError) and "HTTP 400" in str(result)
        else:
            assert isinstance(result, LLMResponse) and result.text == f"answer {i}"
    assert calls == [(d, 10) for d in range(1, 11)]
    assert make_llm(fake_llm_settings).complete_many([]) == []


def test_complete_many_validates_before_sending(
    fake_openai_server: FakeOpenAI, fake_llm_settings: Settings, make_llm: Callable[..., LLM]
) -> None:
    with pytest.raises(ValidationError, match=r"messages\[0\] has role"):
        make_llm(fake_llm_settings).complete_many([MSGS, [{"role": "bot", "content": "x"}]])
    assert fake_openai_server.n_requests == 0


def test_complete_many_runs_concurrently(
    fake_openai_server: FakeOpenAI, fake_llm_settings: Settings, make_llm: Callable[..., LLM]
) -> None:
    fake_openai_server.delay_s = 0.2
    batch = [render_messages("", f"q{i}") for i in range(16)]
    start = time.perf_counter()
    results = make_llm(fake_llm_settings, llm_concurrency=8).complete_many(batch)
    elapsed = time.perf_counter() - start
    assert all(isinstance(r, LLMResponse) for r in results)
    assert fake_openai_server.n_requests == 16
    sequential = 16 * 0.2
    assert elapsed < 0.5 * sequential, f"16 calls took {elapsed:.2f}s with 8 workers"
    assert elapsed >= 2 * 0.2 * 0.9  # bounded: 8 workers need two rounds


def test_test_connection(
    fake_openai_server: FakeOpenAI, fake_llm_settings: Settings, cache_files: Callable[[Settings], list[Path]]
) -> None:
    fake_openai_server.responder = lambda request: " OK\n"
    assert test_connection(fake_llm_settings) == "OK"
    assert test_connection(fake_llm_settings) == "OK"
    assert fake_openai_server.n_requests == 2  # never cached
    assert "temperature" not in fake_openai_server.requests[0]
    assert cache_files(fake_llm_settings) == []
    fake_openai_server.responder = lambda request: (404, error_body("model not found"))
    with pytest.raises(LLMError, match="HTTP 404"):
        test_connection(fake_llm_settings)


# Malformed HTTP 200 bodies (issue 10, defect 4): each is an LLMError naming the endpoint and
# what was wrong, raised at once (a malformed body is not transient, so it is not retried).
_MESSAGE = {"role": "assistant", "content": "ok"}
MALFORMED_BODIES = {
    "truncated JSON": (raw_completion()[:40], "the body is not valid JSON"),
    "HTML, not JSON": (b"<html>502 Bad Gateway</html>", "the body is not valid JSON"),
    "choices is a dict": (
        raw_completion(choices={"0": {"message": _MESSAGE}}),
        "'choices' is a dict, not a list",
    ),
    "choices is a string": (raw_completion(choices="ok"), "'choices' is a str, not a list"),
    "choice is a string": (raw_completion(choices=["ok"]), r"choices\[0\] is a str, not an object"),
    "message missing": (raw_completion(choices=[{"index": 0}]), r"choices\[0\]\.message is missing"),
    "message is a string": (
        raw_completion(choices=[{"index": 0, "message": "ok"}]),
        r"choices\[0\]\.message is a str, not an object",
    ),
    "content is a number": (
        raw_completion(choices=[{"index": 0, "message": {"role": "assistant", "content": 42}}]),
        r"content is an int, not a string",
    ),
    "content is a list": (
        raw_completion(choices=[{"index": 0, "message": {"role": "assistant", "content": ["ok"]}}]),
        r"content is a list, not a string",
    ),
}


@pytest.mark.parametrize(("body", "what"), list(MALFORMED_BODIES.values()), ids=list(MALFORMED_BODIES))
def test_malformed_200_body_is_an_llm_error_not_retried(
    fake_openai_server: FakeOpenAI,
    fake_llm_settings: Settings,
    make_llm: Callable[..., LLM],
    body: bytes,
    what: str,
) -> None:
    fake_openai_server.responder = lambda request: body
    sleeps: list[float] = []
    llm = make_llm(fake_llm_settings, sleeps)
    with pytest.raises(LLMError, match=what) as info:
        llm.complete(MSGS)
    message = str(info.value)
    assert fake_openai_server.base_url in message and "HTTP 200 with a malformed" in message
    assert "not retried" in message
    assert fake_openai_server.n_requests == 1 and sleeps == []
    assert FAKE_API_KEY not in message
