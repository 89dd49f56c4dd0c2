"""Chat prompts: message validation, rendering, the short prompt hash and the content-addressed cache key."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from perturb_core.errors import ValidationError

__all__ = ["Message", "Messages", "cache_key", "prompt_hash", "render_messages"]

Message = Mapping[str, str]
"""One chat message: ``{"role": "system" | "user" | "assistant" | "developer", "content": str}``."""
Messages = Sequence[Message]
"""A chat prompt: a non-empty sequence of :data:`Message`."""

_ROLES = ("system", "user", "assistant", "developer")


def render_messages(system: str, user: str) -> list[dict[str, str]]:
    """Build a chat prompt from a system and a user message.

    Args:
        system: instructions; an empty string leaves the system message out.
        user: the request.

    Returns:
        ``[{"role": "system", ...}, {"role": "user", ...}]``.
    """
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": user})
    return messages


def _validate_messages(messages: Messages) -> list[dict[str, str]]:
    """Copy ``messages`` into plain dicts, checking roles and contents."""
    if isinstance(messages, str | bytes) or not isinstance(messages, Sequence) or not messages:
        raise ValidationError(
            f"messages must be a non-empty list of {{'role', 'content'}} dicts, got {messages!r:.80}; "
            "build one with render_messages(system, user)"
        )
    out = []
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise ValidationError(f"messages[{i}] is {message!r:.80}, not a dict with 'role' and 'content'")
        role, content = message.get("role"), message.get("content")
        if role not in _ROLES:
            raise ValidationError(f"messages[{i}] has role {role!r}; valid roles: {', '.join(_ROLES)}")
        if not isinstance(content, str):
            raise ValidationError(f"messages[{i}] content is {type(content).__name__}, not str")
        out.append(dict(message))
    return out


def _canonical_json(obj: object) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _drop_none(options: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in options.items() if v is not None}


def prompt_hash(messages: Messages) -> str:
    """Short stable id of a prompt (12 hex digits of the SHA-256 of its canonical JSON).

    Args:
        messages: the chat prompt.

    Returns:
        A 12-character lower-case hex string, the same across runs and machines.
    """
    return hashlib.sha256(_canonical_json(_validate_messages(messages)).encode()).hexdigest()[:12]


def cache_key(model: str, messages: Messages, options: Mapping[str, Any] | None = None) -> str:
    """Content hash of one request: SHA-256 of the canonical JSON of model, messages and options.

    Options whose value is ``None`` are dropped first, so ``{"max_tokens": None}`` and ``{}``
    give the same key.

    Args:
        model: model name sent to the endpoint.
        messages: the chat prompt.
        options: request options such as ``temperature`` and ``max_tokens``.

    Returns:
        64 lower-case hex digits.
    """
    payload = {"model": model, "messages": _validate_messages(messages), "options": _drop_none(options or {})}
    return hashlib.sha256(_canonical_json(payload).encode()).hexdigest()
