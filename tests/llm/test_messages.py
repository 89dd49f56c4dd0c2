"""Prompts and keys of perturb_core.llm: rendering, validation, the prompt hash and the cache key."""

from __future__ import annotations

from typing import Any

import pytest

from perturb_core.errors import ValidationError
from perturb_core.llm import cache_key, prompt_hash, render_messages
from perturb_core.testing.fake_openai import FAKE_MODEL

MSGS = render_messages("You are terse.", "hello")


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
