"""Tests of perturb_core.llm against the fake OpenAI-compatible server in perturb_core/testing/fake_openai.py."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from pathlib import Path
from typing import Any

import pytest

from perturb_core.config import Settings
from perturb_core.errors import LLMError, ValidationError
from perturb_core.llm import (
    LLM,
    PLACEHOLDER_API_KEY,
    LLMResponse,
    ResponseCache,
    append_jsonl,
    cache_key,
    get_client,
    prompt_hash,
    read_jsonl,
    render_messages,
    test_connection,
)
from perturb_core.testing.fake_openai import (
    FAKE_API_KEY,
    FAKE_MODEL,
    FakeOpenAI,
    error_body,
    last_user_message,
    scripted,
)

MSGS = render_messages("You are terse.", "hello")


def make_llm(settings: Settings, sleeps: list[float] | None = None, **changes: Any) -> LLM:
    """An LLM on ``settings`` (with ``changes``) that records its retry delays instead of sleeping."""
    sleeps = [] if sleeps is None else sleeps
    return LLM.from_settings(settings.with_(**changes), backoff_s=0.01, sleep=sleeps.append)


def cache_files(settings: Settings) -> list[Path]:
    return sorted(p for p in settings.cache_dir.rglob("*") if p.is_file())


# --------------------------------------------------------------------------- prompts and keys


def test_render_messages_and_prompt_hash() -> None:
    assert render_messages("sys", "usr") == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "usr"},
    ]
    assert render_messages("", "usr") == [{"role": "user", "content": "usr"}]
    h = prompt_hash(MSGS)
    assert len(h) == 12 and int(h, 16) >= 0
    assert h == prompt_hash([dict(m) for m in MSGS])
    assert h != prompt_hash(render_messages("You are terse.", "hello!"))


@pytest.mark.parametrize(
    ("messages", "match"),
    [
        ([], "non-empty list"),
        ("hello", "non-empty list"),
        (["hello"], r"messages\[0\]"),
        ([{"role": "robot", "content": "x"}], "valid roles: system, user"),
        ([{"role": "user", "content": 3}], "content is int"),
        ([{"role": "user"}], "content is NoneType"),
    ],
)
def test_bad_messages_raise(messages: Any, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        prompt_hash(messages)


def test_cache_key_drops_none_options() -> None:
    base = cache_key(FAKE_MODEL, MSGS, {"temperature": 0.0})
    assert base == cache_key(FAKE_MODEL, MSGS, {"temperature": 0.0, "max_tokens": None})
    assert base == cache_key(FAKE_MODEL, MSGS, {"max_tokens": None, "temperature": 0.0})
    assert cache_key(FAKE_MODEL, MSGS) == cache_key(FAKE_MODEL, MSGS, {"seed": None})
    assert base != cache_key(FAKE_MODEL, MSGS, {"temperature": 0.5})
    assert base != cache_key(FAKE_MODEL, MSGS, {"temperature": 0.0, "max_tokens": 10})
    assert base != cache_key("other-model", MSGS, {"temperature": 0.0})
    assert len(base) == 64


def test_none_options_are_not_sent(fake_openai_server: FakeOpenAI, fake_llm_settings: Settings) -> None:
    llm = make_llm(fake_llm_settings)
    first = llm.complete(MSGS, max_tokens=None)
    assert "max_tokens" not in fake_openai_server.requests[0]
    assert fake_openai_server.requests[0]["temperature"] == 0.0
    llm.complete(MSGS, temperature=None)
    assert "temperature" not in fake_openai_server.requests[1]
    assert first.key == cache_key(FAKE_MODEL, MSGS, {"temperature": 0.0})


# --------------------------------------------------------------------------- client


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


# --------------------------------------------------------------------------- cache behaviour


def test_cache_hit_makes_zero_http_calls(fake_openai_server: FakeOpenAI, fake_llm_settings: Settings) -> None:
    first = make_llm(fake_llm_settings).complete(MSGS)
    assert (first.text, first.cache_hit, first.model) == ("echo: hello", False, FAKE_MODEL)
    assert fake_openai_server.n_requests == 1
    # a new instance (as in a new process) reads the same disk cache
    second = make_llm(fake_llm_settings).complete(MSGS)
    assert isinstance(second, LLMResponse)
    assert (second.text, second.cache_hit, second.key) == (first.text, True, first.key)
    assert fake_openai_server.n_requests == 1
    # a batch run twice: the second run is served entirely from the cache
    batch = [render_messages("s", f"q{i}") for i in range(5)]
    make_llm(fake_llm_settings).complete_many(batch)
    fake_openai_server.reset()
    again = make_llm(fake_llm_settings).complete_many(batch)
    assert fake_openai_server.n_requests == 0
    assert all(isinstance(r, LLMResponse) and r.cache_hit for r in again)


def test_use_cache_false_always_asks_and_stores_nothing(
    fake_openai_server: FakeOpenAI, fake_llm_settings: Settings
) -> None:
    llm = make_llm(fake_llm_settings)
    for _ in range(2):
        assert not llm.complete(MSGS, use_cache=False).cache_hit
    assert fake_openai_server.n_requests == 2
    assert cache_files(fake_llm_settings) == []
    no_cache = LLM.from_settings(fake_llm_settings, use_cache=False)
    assert no_cache.cache is None
    assert not no_cache.complete(MSGS).cache_hit


def test_cache_entry_is_one_readable_json_line_without_key(
    fake_openai_server: FakeOpenAI, fake_llm_settings: Settings
) -> None:
    llm = make_llm(fake_llm_settings)
    llm.complete_many([render_messages("s", f"q{i}") for i in range(3)], max_tokens=50)
    files = cache_files(fake_llm_settings)
    assert len(files) == 3
    for path in files:
        text = path.read_text()
        assert FAKE_API_KEY not in text
        assert text.endswith("\n") and text.count("\n") == 1
        record = json.loads(text)
        assert set(record) == {"key", "model", "messages", "options", "response", "created", "elapsed_s"}
        assert path == ResponseCache(fake_llm_settings.cache_dir).path_for(record["key"])
        assert path.parent.name == record["key"][:2]
        assert record["options"] == {"temperature": 0.0, "max_tokens": 50}
        assert record["response"] == "echo: " + last_user_message({"messages": record["messages"]})
    for path in fake_llm_settings.cache_dir.rglob("*"):  # no file anywhere holds the key
        assert path.is_dir() or FAKE_API_KEY.encode() not in path.read_bytes()


@pytest.mark.parametrize(
    "content",
    [
        b'{"key": "abc',
        b"\xff\xfe\x00garbage",
        b"",
        b"[1, 2]",
        b'{"key": "0000", "response": "x"}',
        b'{"a": 1}',
    ],
)
def test_corrupt_cache_file_is_a_miss(
    fake_openai_server: FakeOpenAI, fake_llm_settings: Settings, content: bytes
) -> None:
    cache = ResponseCache(fake_llm_settings.cache_dir)
    key = cache_key(FAKE_MODEL, MSGS, {"temperature": 0.0})
    path = cache.path_for(key)
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    assert cache.get(key) is None
    assert list(cache.iter_records()) == []
    answer = make_llm(fake_llm_settings).complete(MSGS)
    assert not answer.cache_hit and fake_openai_server.n_requests == 1
    assert cache.get(key)["response"] == "echo: hello"  # type: ignore[index]
    assert make_llm(fake_llm_settings).complete(MSGS).cache_hit


def _record(key: str, response: str) -> dict[str, Any]:
    return {"key": key, "model": FAKE_MODEL, "messages": MSGS, "options": {}, "response": response}


def test_kill_during_write_leaves_no_partial_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = ResponseCache(tmp_path / "cache")
    old_key, new_key = cache_key("m", MSGS), cache_key("m2", MSGS)
    cache.put(_record(old_key, "old answer"))

    def killed(src: str, dst: str) -> None:
        raise KeyboardInterrupt("killed mid-write")

    with monkeypatch.context() as m:
        m.setattr(os, "replace", killed)
        with pytest.raises(KeyboardInterrupt):
            cache.put(_record(old_key, "new answer"))
        with pytest.raises(KeyboardInterrupt):
            cache.put(_record(new_key, "other answer"))
    assert cache.get(old_key)["response"] == "old answer"  # type: ignore[index]
    assert cache.get(new_key) is None
    assert [r["key"] for r in cache.iter_records()] == [old_key]
    assert not list(cache.directory.rglob("*.tmp"))
    # a SIGKILL skips all cleanup: a stray temp file must be invisible, and clear() removes it
    (cache.path_for(new_key).parent / f".{new_key[:16]}.abc.tmp").write_text('{"key": "')
    assert cache.stats()["n_entries"] == 1
    assert cache.get(new_key) is None
    assert cache.clear() == 1
    assert not [p for p in cache.directory.rglob("*") if p.is_file()]


def test_cache_write_failure_still_returns_answer(
    fake_llm_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    assert make_llm(fake_llm_settings).complete(MSGS).text == "echo: hello"
    assert ResponseCache(fake_llm_settings.cache_dir).stats()["n_entries"] == 0


def test_cache_stats_iter_clear(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "never-created")
    assert cache.stats()["n_entries"] == 0 and cache.clear() == 0 and list(cache.iter_records()) == []
    keys = [cache_key("m", render_messages("", f"q{i}")) for i in range(4)]
    for k in keys:
        cache.put(_record(k, "ü answer"))
    stats = cache.stats()
    assert stats["n_entries"] == 4 and stats["bytes"] > 0
    assert sorted(r["key"] for r in cache.iter_records()) == sorted(keys)
    assert cache.clear() == 4
    assert cache.stats()["n_entries"] == 0


@pytest.mark.parametrize("key", ["", "../../etc/passwd", "ABC", "0" * 63])
def test_cache_rejects_bad_keys(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValidationError, match="64 lower-case hex"):
        ResponseCache(tmp_path).get(key)


def test_cache_put_needs_response_text(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="no 'response' text"):
        ResponseCache(tmp_path).put({"key": "a" * 64, "response": None})


# --------------------------------------------------------------------------- retries and errors


def test_rate_limit_is_retried(fake_openai_server: FakeOpenAI, fake_llm_settings: Settings) -> None:
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
    fake_openai_server: FakeOpenAI, fake_llm_settings: Settings, status: int
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


def test_timeout_is_retried_then_fails(fake_openai_server: FakeOpenAI, fake_llm_settings: Settings) -> None:
    fake_openai_server.delay_s = 1.0
    sleeps: list[float] = []
    llm = make_llm(fake_llm_settings, sleeps, llm_timeout=0.2, llm_max_retries=1)
    start = time.perf_counter()
    with pytest.raises(
        LLMError, match=r"failed after 2 attempt\(s\), last: timed out.*raise \[llm\] timeout"
    ):
        llm.complete(MSGS)
    assert time.perf_counter() - start < 1.5
    assert fake_openai_server.n_requests == 2
    assert len(sleeps) == 1


def test_connection_refused_is_retried_then_fails(fake_llm_settings: Settings) -> None:
    with FakeOpenAI() as server:
        url = server.base_url  # a port that is free again once the server is closed
    sleeps: list[float] = []
    with pytest.raises(LLMError, match="cannot connect"):
        make_llm(fake_llm_settings, sleeps, llm_base_url=url, llm_max_retries=1).complete(MSGS)
    assert len(sleeps) == 1


def test_bad_key_fails_at_once_without_leaking_it(
    fake_openai_server: FakeOpenAI, fake_llm_settings: Settings
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
    fake_openai_server: FakeOpenAI, fake_llm_settings: Settings, status: int, body: dict, match: str
) -> None:
    fake_openai_server.responder = lambda request: (status, body)
    sleeps: list[float] = []
    with pytest.raises(LLMError, match=match):
        make_llm(fake_llm_settings, sleeps).complete(MSGS)
    assert fake_openai_server.n_requests == 1 and sleeps == []


@pytest.mark.parametrize("reply", ["", "   \n", None])
def test_empty_answer_raises(
    fake_openai_server: FakeOpenAI, fake_llm_settings: Settings, reply: str | None
) -> None:
    fake_openai_server.responder = lambda request: reply
    with pytest.raises(LLMError, match=r"empty answer from .*fake-model"):
        make_llm(fake_llm_settings).complete(MSGS)
    assert fake_openai_server.n_requests == 1
    assert cache_files(fake_llm_settings) == []


def test_llm_rejects_bad_numbers(fake_llm_settings: Settings) -> None:
    with pytest.raises(ValidationError, match="concurrency = 0 must be >= 1"):
        make_llm(fake_llm_settings, llm_concurrency=0)
    with pytest.raises(ValidationError, match="max_retries = -1 must be >= 0"):
        make_llm(fake_llm_settings, llm_max_retries=-1)
    with pytest.raises(LLMError, match="timeout"):
        make_llm(fake_llm_settings, llm_timeout=0)


# --------------------------------------------------------------------------- batches


def test_complete_many_keeps_order_and_isolates_failures(
    fake_openai_server: FakeOpenAI, fake_llm_settings: Settings
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
    fake_openai_server: FakeOpenAI, fake_llm_settings: Settings
) -> None:
    with pytest.raises(ValidationError, match=r"messages\[0\] has role"):
        make_llm(fake_llm_settings).complete_many([MSGS, [{"role": "bot", "content": "x"}]])
    assert fake_openai_server.n_requests == 0


def test_complete_many_runs_concurrently(fake_openai_server: FakeOpenAI, fake_llm_settings: Settings) -> None:
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


# --------------------------------------------------------------------------- test_connection


def test_test_connection(fake_openai_server: FakeOpenAI, fake_llm_settings: Settings) -> None:
    fake_openai_server.responder = lambda request: " OK\n"
    assert test_connection(fake_llm_settings) == "OK"
    assert test_connection(fake_llm_settings) == "OK"
    assert fake_openai_server.n_requests == 2  # never cached
    assert "temperature" not in fake_openai_server.requests[0]
    assert cache_files(fake_llm_settings) == []
    fake_openai_server.responder = lambda request: (404, error_body("model not found"))
    with pytest.raises(LLMError, match="HTTP 404"):
        test_connection(fake_llm_settings)


# --------------------------------------------------------------------------- JSONL logs


def _append_many(path: str, worker: int) -> None:
    for i in range(200):
        append_jsonl(path, {"worker": worker, "i": i, "pad": "x" * 500})


def test_append_jsonl_is_safe_across_processes(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "nested" / "queries.jsonl"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append_many, args=(str(path), w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=30)
    assert all(p.exitcode == 0 for p in procs)
    lines = path.read_text().splitlines()
    assert len(lines) == 800
    records = [json.loads(line) for line in lines]
    assert sorted((r["worker"], r["i"]) for r in records) == [(w, i) for w in range(4) for i in range(200)]


def test_append_jsonl_recovers_from_partial_line(tmp_path: Path) -> None:
    import numpy as np

    path = tmp_path / "log.jsonl"
    append_jsonl(path, {"a": 1})
    with open(path, "a") as fh:
        fh.write('{"half": ')  # a writer killed mid-line
    append_jsonl(path, {"b": np.float32(0.5), "c": np.arange(2), "p": Path("x")})
    assert read_jsonl(path) == [{"a": 1}, {"b": 0.5, "c": [0, 1], "p": "x"}]
    assert read_jsonl(tmp_path / "missing.jsonl") == []
    with pytest.raises(TypeError, match="cannot write object"):
        append_jsonl(path, {"bad": object()})
