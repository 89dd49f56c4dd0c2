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
    ``_endpoint``: :func:`get_client`, :func:`check_base_url`, :func:`list_models`.
    ``_client``: :class:`LLM`, :class:`LLMResponse`, retries, :func:`test_connection`.
    ``_batch``: :func:`run_batch`, :class:`Exchange`, :class:`JSONVariant`.
    ``_estimate``: :func:`estimate_batch` (calls, prompt tokens, time before a batch is sent).
    ``_formats``: answer formats (text / json / auto), server families, structured-output requests.
    ``_serve``: the local llama.cpp server (``python -m perturb_core llm serve``), the bundled model.

Example:
    >>> llm = LLM.from_settings()  # doctest: +SKIP
    >>> llm.complete(render_messages("You are terse.", "Say OK.")).text  # doctest: +SKIP
    'OK'
"""

from __future__ import annotations

from perturb_core.llm._batch import Exchange, JSONVariant, Parser, run_batch
from perturb_core.llm._cache import ResponseCache
from perturb_core.llm._client import LLM, LLMResponse, test_connection
from perturb_core.llm._endpoint import (
    DEFAULT_BASE_URL,
    PLACEHOLDER_API_KEY,
    FormatRejectedError,
    check_base_url,
    get_client,
    list_models,
)
from perturb_core.llm._estimate import estimate_batch, format_estimate
from perturb_core.llm._files import append_jsonl, read_jsonl
from perturb_core.llm._formats import (
    JSONAnswerError,
    check_answer_format,
    check_server_family,
    detect_family,
    load_json_object,
    structured_options,
)
from perturb_core.llm._messages import Message, Messages, cache_key, prompt_hash, render_messages
from perturb_core.llm._serve import (
    DEFAULT_PORT,
    ServeCommand,
    bundled_model,
    env_lines,
    llama_cpp_available,
    serve_command,
    wait_until_serving,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_PORT",
    "LLM",
    "PLACEHOLDER_API_KEY",
    "Exchange",
    "FormatRejectedError",
    "JSONAnswerError",
    "JSONVariant",
    "LLMResponse",
    "Message",
    "Messages",
    "Parser",
    "ResponseCache",
    "ServeCommand",
    "append_jsonl",
    "bundled_model",
    "cache_key",
    "check_answer_format",
    "check_base_url",
    "check_server_family",
    "detect_family",
    "env_lines",
    "estimate_batch",
    "format_estimate",
    "get_client",
    "list_models",
    "llama_cpp_available",
    "load_json_object",
    "prompt_hash",
    "read_jsonl",
    "render_messages",
    "run_batch",
    "serve_command",
    "structured_options",
    "test_connection",
    "wait_until_serving",
]
