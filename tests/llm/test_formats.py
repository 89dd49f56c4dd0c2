"""Answer formats, server families, the error policy (issue 12; issue 10 items 13 and 17) against the fake server."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from perturb_core.config import Settings
from perturb_core.errors import LLMError
from perturb_core.llm import (
    LLM,
    JSONAnswerError,
    JSONVariant,
    ResponseCache,
    check_base_url,
    detect_family,
    estimate_batch,
    list_models,
    load_json_object,
    render_messages,
    run_batch,
    structured_options,
)
from perturb_core.testing.fake_openai import (
    FakeOpenAI,
    error_body,
    json_requested,
    lgr_final_answer,
    lgr_json_answer,
    model_not_found,
    refuse_json,
)

MakeLLM = Callable[..., LLM]
POOL = ["Trametinib", "Binimetinib", "Selumetinib", "Palbociclib"]
SCHEMA = {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}


def _text_parse(text: str) -> list[str]:
    if "<Final Answer>" not in text:
        raise ValueError("no block")
    return [ln.split(". ", 1)[1].split(":")[0] for ln in text.splitlines() if ln[:1].isdigit()]


def _json_parse(text: str) -> list[str]:
    obj = load_json_object(text)
    if not isinstance(obj.get("neighbours"), list):
        raise JSONAnswerError("no neighbours list")
    return [n["name"] for n in obj["neighbours"]]


def _batch(n: int) -> tuple[list[list[dict[str, str]]], list[JSONVariant[list[str]]]]:
    prompts = [render_messages("sys", f"text prompt {i}") for i in range(n)]
    variants = [
        JSONVariant(render_messages("sys", f"json prompt {i}"), SCHEMA, _json_parse) for i in range(n)
    ]
    return prompts, variants


def _answer(request: dict[str, Any]) -> str:
    return lgr_json_answer(POOL[:2]) if json_requested(request) else lgr_final_answer(POOL[:2])


# --------------------------------------------------------------------------- request shapes


@pytest.mark.parametrize(
    ("base_url", "owners", "family"),
    [
        ("http://127.0.0.1:8765/v1", ("me",), "llama_cpp"),
        ("http://127.0.0.1:8080/v1", ("llamacpp",), "llama_cpp"),
        ("http://gpu:8000/v1", ("vllm",), "vllm"),
        ("https://api.openai.com/v1", ("system", "openai"), "openai"),
        ("http://localhost:11434/v1", ("library",), "openai"),
        ("http://localhost:8080/v1", (), "llama_cpp"),
        ("http://example.org/v1", (), "openai"),
    ],
)
def test_detect_family(base_url: str, owners: tuple[str, ...], family: str) -> None:
    assert detect_family(base_url, owners) == family


def test_structured_options_per_family() -> None:
    assert structured_options("llama_cpp", SCHEMA, "n") == {
        "response_format": {"type": "json_object", "schema": SCHEMA}
    }
    openai_shape = {"type": "json_schema", "json_schema": {"name": "n", "schema": SCHEMA, "strict": True}}
    assert structured_options("openai", SCHEMA, "n") == {"response_format": openai_shape}
    assert structured_options("vllm", SCHEMA, "n") == {"response_format": openai_shape}


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("localhost:8000/v1", "'http://localhost:8000/v1'"),
        ("ftp://example.org/v1", "not an http"),
        ("http://", "not an http"),
        ("", "not an http"),
    ],
)
def test_base_url_is_checked_up_front(url: str, match: str, fake_llm_settings: Settings) -> None:
    with pytest.raises(LLMError, match=match):
        check_base_url(url)
    if url:
        with pytest.raises(LLMError, match="OPENAI_BASE_URL"):
            LLM.from_settings(fake_llm_settings.with_(llm_base_url=url))


def test_family_detected_from_models_and_overridable(
    fake_openai_server: FakeOpenAI, fake_llm_settings: Settings
) -> None:
    fake_openai_server.owned_by = "vllm"
    assert LLM.from_settings(fake_llm_settings).family == "vllm"
    assert LLM.from_settings(fake_llm_settings.with_(llm_server_family="openai")).family == "openai"
    assert list_models(fake_llm_settings) == [{"id": "fake-model", "owned_by": "vllm"}]


# --------------------------------------------------------------------------- json / text / auto


@pytest.mark.parametrize(
    ("owned_by", "field"), [("me", "schema"), ("vllm", "json_schema"), ("fake", "json_schema")]
)
def test_json_format_sends_the_family_shape_and_is_labelled(
    fake_openai_server: FakeOpenAI, fake_llm_settings: Settings, owned_by: str, field: str
) -> None:
    fake_openai_server.owned_by = owned_by
    fake_openai_server.responder = _answer
    prompts, variants = _batch(3)
    llm = LLM.from_settings(fake_llm_settings.with_(llm_answer_format="json"))
    out = run_batch(llm, prompts, _text_parse, json_variants=variants)
    assert [e.parsed for e in out] == [POOL[:2]] * 3
    assert {e.answer_format_used for e in out} == {"json"} and all(e.format_note is None for e in out)
    req = fake_openai_server.requests[0]
    assert field in json.dumps(req["response_format"])
    assert out[0].prompt[1]["content"] == "json prompt 0"
    assert out[0].prompt_tokens is not None and out[0].completion_tokens is not None


def test_refused_json_falls_back_to_text_per_query(
    fake_openai_server: FakeOpenAI, fake_llm_settings: Settings
) -> None:
    fake_openai_server.responder = refuse_json(_answer)
    prompts, variants = _batch(3)
    llm = LLM.from_settings(fake_llm_settings.with_(llm_answer_format="json"))
    out = run_batch(llm, prompts, _text_parse, json_variants=variants)
    assert [e.parsed for e in out] == [POOL[:2]] * 3
    assert {e.answer_format_used for e in out} == {"text"}
    assert all("json refused by the server" in str(e.format_note) for e in out)
    assert out[0].prompt[1]["content"] == "text prompt 0"  # the prompt that gave the answer
    assert fake_openai_server.n_requests == 6  # 3 refused json requests, 3 text requests


def test_auto_asks_json_once_when_refused(
    fake_openai_server: FakeOpenAI, fake_llm_settings: Settings
) -> None:
    fake_openai_server.responder = refuse_json(_answer)
    prompts, variants = _batch(4)
    llm = LLM.from_settings(fake_llm_settings.with_(llm_answer_format="auto"))
    out = run_batch(llm, prompts, _text_parse, json_variants=variants)
    assert {e.answer_format_used for e in out} == {"text"}
    assert sum(json_requested(r) for r in fake_openai_server.requests) == 1
    assert fake_openai_server.n_requests == 5


def test_auto_uses_json_when_accepted(fake_openai_server: FakeOpenAI, fake_llm_settings: Settings) -> None:
    fake_openai_server.responder = _answer
    prompts, variants = _batch(3)
    llm = LLM.from_settings(fake_llm_settings.with_(llm_answer_format="auto"))
    out = run_batch(llm, prompts, _text_parse, json_variants=variants)
    assert {e.answer_format_used for e in out} == {"json"} and fake_openai_server.n_requests == 3


@pytest.mark.parametrize(
    "ignored",
    [lgr_final_answer(POOL[:2]), '{"neighbours": "Trametinib"}', '{"neighbours": [', "[1, 2]", "   "],
)
def test_ignored_json_falls_back_to_text(
    fake_openai_server: FakeOpenAI, fake_llm_settings: Settings, ignored: str
) -> None:
    """A server that ignores the schema (or a hostile / truncated JSON answer): ask in text, say so."""
    fake_openai_server.responder = lambda r: ignored if json_requested(r) else lgr_final_answer(POOL[:2])
    prompts, variants = _batch(2)
    llm = LLM.from_settings(fake_llm_settings.with_(llm_answer_format="json"))
    out = run_batch(llm, prompts, _text_parse, json_variants=variants)
    if not ignored.strip():  # an empty answer is a failed call (LLMError), not an ignored schema
        assert all(e.raw_answer is None and e.answer_format_used is None for e in out)
        return
    assert [e.answer_format_used for e in out] == ["text", "text"]
    assert all(str(e.format_note).startswith("json ignored by the server") for e in out)
    assert [e.parsed for e in out] == [POOL[:2]] * 2


def test_text_format_ignores_variants(fake_openai_server: FakeOpenAI, fake_llm_settings: Settings) -> None:
    fake_openai_server.responder = _answer
    prompts, variants = _batch(2)
    out = run_batch(LLM.from_settings(fake_llm_settings), prompts, _text_parse, json_variants=variants)
    assert {e.answer_format_used for e in out} == {"text"}
    assert not any(json_requested(r) for r in fake_openai_server.requests)


def test_json_and_text_answers_are_cached_apart(
    fake_openai_server: FakeOpenAI, fake_llm_settings: Settings
) -> None:
    fake_openai_server.responder = _answer
    prompts, variants = _batch(2)
    llm = LLM.from_settings(fake_llm_settings.with_(llm_answer_format="json"))
    first = run_batch(llm, prompts, _text_parse, json_variants=variants)
    again = run_batch(llm, prompts, _text_parse, json_variants=variants)
    assert not any(e.cache_hit for e in first) and all(e.cache_hit for e in again)
    assert [e.prompt_tokens for e in again] == [e.prompt_tokens for e in first]  # counts kept in the cache
    assert fake_openai_server.n_requests == 2


# --------------------------------------------------------------------------- error policy


def test_model_not_found_fails_at_once_listing_served_models(
    fake_openai_server: FakeOpenAI, fake_llm_settings: Settings, make_llm: MakeLLM
) -> None:
    fake_openai_server.model_ids = ("SmolLM2-135M-Instruct.Q4_1", "other-model")
    fake_openai_server.responder = lambda r: model_not_found(r["model"])
    sleeps: list[float] = []
    with pytest.raises(
        LLMError, match=r"serves: SmolLM2-135M-Instruct.Q4_1, other-model; set PERTURB_CORE_LLM_MODEL"
    ):
        make_llm(fake_llm_settings, sleeps).complete(render_messages("", "hi"))
    assert sleeps == [] and fake_openai_server.n_requests == 1


def test_dns_failure_fails_at_once(fake_llm_settings: Settings, make_llm: MakeLLM) -> None:
    sleeps: list[float] = []
    llm = make_llm(
        fake_llm_settings, sleeps, llm_base_url="http://no-such-host.invalid/v1", llm_max_retries=3
    )
    with pytest.raises(LLMError, match="cannot be resolved; fix the host in OPENAI_BASE_URL"):
        llm.complete(render_messages("", "hi"))
    assert sleeps == []


@pytest.mark.parametrize("status", [401, 403])
def test_auth_errors_fail_at_once(
    fake_openai_server: FakeOpenAI, fake_llm_settings: Settings, make_llm: MakeLLM, status: int
) -> None:
    fake_openai_server.responder = lambda r: (status, error_body("no", "invalid_request_error"))
    sleeps: list[float] = []
    with pytest.raises(LLMError, match=f"HTTP {status}.*OPENAI_API_KEY|HTTP {status}.*key"):
        make_llm(fake_llm_settings, sleeps, llm_max_retries=3).complete(render_messages("", "hi"))
    assert sleeps == [] and fake_openai_server.n_requests == 1


def test_retry_after_is_honoured_and_capped(
    fake_openai_server: FakeOpenAI, fake_llm_settings: Settings
) -> None:
    replies: list[Any] = [
        (429, error_body("slow"), {"Retry-After": "2"}),
        (429, error_body("slow"), {"Retry-After": "999"}),
        "ok",
    ]
    fake_openai_server.responder = lambda r: replies.pop(0)
    sleeps: list[float] = []
    llm = LLM.from_settings(fake_llm_settings.with_(llm_max_retries=3), backoff_s=0.01, sleep=sleeps.append)
    llm = LLM(llm.client, llm.model, None, 3, 1, 0.01, 5.0, sleeps.append)
    assert llm.complete(render_messages("", "hi")).text == "ok"
    assert sleeps[0] >= 2.0 and sleeps[1] == 5.0  # Retry-After honoured, capped at max_backoff_s


def test_batch_stops_after_consecutive_failures(
    fake_openai_server: FakeOpenAI, fake_llm_settings: Settings
) -> None:
    fake_openai_server.responder = lambda r: (500, error_body("down"))
    llm = LLM.from_settings(
        fake_llm_settings.with_(llm_max_retries=0, llm_concurrency=1, llm_max_consecutive_failures=3),
        sleep=lambda s: None,
    )
    out = run_batch(llm, [render_messages("", f"q{i}") for i in range(10)], str)
    sent = fake_openai_server.n_requests
    assert 3 <= sent <= 4  # one more may already be in flight (concurrency 1) when the third fails
    assert all(e.raw_answer is None and e.parsed is None and e.answer_format_used is None for e in out)
    not_asked = [str(e.error) for e in out if str(e.error).startswith("not asked")]
    assert len(not_asked) == 10 - sent
    assert all("the batch stopped after 3 failed calls in a row" in m for m in not_asked)


def test_answers_are_handed_over_as_they_arrive(
    fake_openai_server: FakeOpenAI, fake_llm_settings: Settings
) -> None:
    seen: list[tuple[int, str | None]] = []
    fake_openai_server.responder = lambda r: "a" if "q0" in json.dumps(r) else (500, error_body("down"))
    llm = LLM.from_settings(
        fake_llm_settings.with_(llm_max_retries=0, llm_concurrency=1), sleep=lambda s: None
    )
    out = run_batch(
        llm,
        [render_messages("", f"q{i}") for i in range(3)],
        str,
        on_exchange=lambda i, e: seen.append((i, e.raw_answer)),
    )
    assert sorted(seen) == [(0, "a"), (1, None), (2, None)] and len(out) == 3


# --------------------------------------------------------------------------- cache hygiene and estimate


def test_orphaned_temp_files_are_removed_on_open(tmp_path: Path) -> None:
    sub = tmp_path / "cache" / "ab"
    sub.mkdir(parents=True)
    stale, fresh = sub / ".abcdef.123.tmp", sub / ".abcdef.456.tmp"
    for f in (stale, fresh):
        f.write_text('{"key": "trunc')
    old = time.time() - 3600
    os.utime(stale, (old, old))
    cache = ResponseCache(tmp_path / "cache")
    assert not stale.exists() and fresh.exists()  # a live writer's file is left alone
    assert cache.stats()["n_entries"] == 0


def test_estimate_counts_cache_misses_and_tokens(
    fake_openai_server: FakeOpenAI, fake_llm_settings: Settings
) -> None:
    prompts = [render_messages("", "x" * 400 + str(i)) for i in range(4)]
    llm = LLM.from_settings(fake_llm_settings)
    est = estimate_batch(llm, prompts)
    assert (
        est["calls"] == 4 and est["cached"] == 0 and est["prompt_tokens"] == pytest.approx(4 * 401 / 4, abs=2)
    )
    assert "assumed" in est["seconds_source"] and "characters / 4" in est["token_method"]
    run_batch(llm, prompts[:3], str, temperature=0.0)
    est = estimate_batch(llm, prompts)
    assert est["calls"] == 1 and est["cached"] == 3 and "median of 3 cached calls" in est["seconds_source"]
    assert est["time_s"] == pytest.approx(est["seconds_per_call"], abs=0.1)


def test_partial_parser_per_prompt_json(fake_openai_server: FakeOpenAI, fake_llm_settings: Settings) -> None:
    """Validation is always client-side: a JSON answer is parsed by the prompt's own parser."""
    fake_openai_server.responder = lambda r: lgr_json_answer(["Trametinib", "Aspirin", "Trametinib"])
    from perturb_core.retrieval import parse_llm_answer
    from perturb_core.retrieval._prompt import lgr_json_variant

    variant = lgr_json_variant("C32", "Cobimetinib", POOL, 3)
    llm = LLM.from_settings(fake_llm_settings.with_(llm_answer_format="json"))
    [ex] = run_batch(
        llm, [render_messages("", "t")], partial(parse_llm_answer, pool=POOL, k=3), json_variants=[variant]
    )
    assert ex.answer_format_used == "json"
    assert ex.parsed.neighbours[0][0] == "Trametinib" and ex.parsed.k_used == 1
    assert ex.parsed.filtered == ("Aspirin",) and ex.parsed.duplicates == ("Trametinib",)
