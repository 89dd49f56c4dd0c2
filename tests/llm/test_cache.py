"""The response cache of perturb_core.llm: hits make no HTTP call, entries are atomic and readable, corrupt ones are misses."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from perturb_core.config import Settings
from perturb_core.errors import ValidationError
from perturb_core.llm import LLM, LLMResponse, ResponseCache, cache_key, render_messages
from perturb_core.testing.fake_openai import FAKE_API_KEY, FAKE_MODEL, FakeOpenAI, last_user_message

MSGS = render_messages("You are terse.", "hello")


def test_cache_hit_makes_zero_http_calls(
    fake_openai_server: FakeOpenAI, fake_llm_settings: Settings, make_llm: Callable[..., LLM]
) -> None:
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
    fake_openai_server: FakeOpenAI,
    fake_llm_settings: Settings,
    make_llm: Callable[..., LLM],
    cache_files: Callable[[Settings], list[Path]],
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
    fake_openai_server: FakeOpenAI,
    fake_llm_settings: Settings,
    make_llm: Callable[..., LLM],
    cache_files: Callable[[Settings], list[Path]],
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
        assert set(record) == {
            "key",
            "model",
            "messages",
            "options",
            "response",
            "created",
            "elapsed_s",
            "usage",
        }
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
    fake_openai_server: FakeOpenAI, fake_llm_settings: Settings, content: bytes, make_llm: Callable[..., LLM]
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
    fake_llm_settings: Settings, monkeypatch: pytest.MonkeyPatch, make_llm: Callable[..., LLM]
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
