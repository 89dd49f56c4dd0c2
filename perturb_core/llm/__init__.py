"""OpenAI-compatible LLM access: one client, prompt helpers, a content-addressed disk cache, retries, one batch runner.

Every call goes through :class:`LLM`: it looks the prompt up in a :class:`ResponseCache` (a hit
makes no HTTP request), otherwise asks the endpoint, retrying rate limits, server errors,
timeouts and dropped connections with exponential backoff, and stores the answer. Cache
entries are one human-readable JSON line per file, written atomically; they never hold the
API key. Works with any OpenAI-compatible server (OpenAI, vLLM, Ollama, llama.cpp).
:func:`run_batch` asks many prompts at once and parses the answers into :class:`Exchange` records.

Modules (private; import from here):
    ``_messages``: prompts, validation, :func:`prompt_hash`, :func:`cache_key`.
    ``_files``: JSON/JSONL files (:func:`append_jsonl`, :func:`read_jsonl`).
    ``_cache``: :class:`ResponseCache`.
    ``_client``: :func:`get_client`, :class:`LLM`, :class:`LLMResponse`, retries, :func:`test_connection`.
    ``_batch``: :func:`run_batch`, :class:`Exchange`.

Example:
    >>> llm = LLM.from_settings()  # doctest: +SKIP
    >>> llm.complete(render_messages("You are terse.", "Say OK.")).text  # doctest: +SKIP
    'OK'
"""

from __future__ import annotations

from perturb_core.llm._batch import Exchange, Parser, run_batch
from perturb_core.llm._cache import ResponseCache
from perturb_core.llm._client import (
    DEFAULT_BASE_URL,
    LLM,
    PLACEHOLDER_API_KEY,
    LLMResponse,
    get_client,
    test_connection,
)
from perturb_core.llm._files import append_jsonl, read_jsonl
from perturb_core.llm._messages import Message, Messages, cache_key, prompt_hash, render_messages

__all__ = [
    "DEFAULT_BASE_URL",
    "LLM",
    "PLACEHOLDER_API_KEY",
    "Exchange",
    "LLMResponse",
    "Message",
    "Messages",
    "Parser",
    "ResponseCache",
    "append_jsonl",
    "cache_key",
    "get_client",
    "prompt_hash",
    "read_jsonl",
    "render_messages",
    "run_batch",
    "test_connection",
]
