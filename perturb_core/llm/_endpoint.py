"""Reaching an endpoint: the URL check, the one place the client is built, the model list, answer checks.

:func:`get_client` builds the ``openai.OpenAI`` client; :func:`list_models` asks ``GET /models``
(never retried); the helpers here turn a completion into its text and token counts and classify
connection errors that retrying cannot fix (refused, DNS).
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import openai
from openai.types.chat import ChatCompletionMessage
from openai.types.chat.chat_completion import Choice

from perturb_core.config import Settings, get_settings
from perturb_core.errors import LLMError

__all__ = [
    "DEFAULT_BASE_URL",
    "PLACEHOLDER_API_KEY",
    "FormatRejectedError",
    "check_base_url",
    "get_client",
    "list_models",
]

PLACEHOLDER_API_KEY = "not-needed"
"""Key sent to a local server (vLLM, Ollama, llama.cpp) when only ``OPENAI_BASE_URL`` is set."""
DEFAULT_BASE_URL = "https://api.openai.com/v1"
_MODELS_TIMEOUT_S = 5.0
_DETAIL_CHARS = 300


class FormatRejectedError(LLMError):
    """The endpoint refused a structured-output (json) request with HTTP 400/422: ask in text instead."""


def check_base_url(url: str) -> str:
    """The endpoint URL, checked: scheme http or https and a host.

    Raises:
        LLMError: naming the URL and the fix (e.g. ``localhost:8000/v1`` lacks ``http://``).
    """
    text = str(url).strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in text):
        prefixed = urlsplit(f"http://{text}")
        looks_like_host = "://" not in text and prefixed.hostname and not any(c.isspace() for c in text)
        hint = f"http://{text}" if looks_like_host else "http://localhost:8000/v1"
        raise LLMError(
            f"OPENAI_BASE_URL = {text!r} is not an http(s) URL with a host; set it like {hint!r} "
            "(scheme http:// or https://, host, usually ending in /v1)"
        )
    return text


def get_client(settings: Settings) -> openai.OpenAI:
    """Build the OpenAI-compatible client: the one place this happens.

    Uses ``settings.llm_base_url`` (default: OpenAI's) and ``settings.llm_api_key``; with a base
    URL but no key, a placeholder key is sent, since local servers (vLLM, Ollama, llama.cpp)
    need none. The client itself never retries (``max_retries=0``): :class:`LLM` does.

    Args:
        settings: resolved settings.

    Returns:
        An ``openai.OpenAI`` client with ``timeout=settings.llm_timeout``.

    Raises:
        LLMError: neither an endpoint nor a key is configured.
    """
    if not (settings.llm_base_url or settings.llm_api_key):
        raise LLMError(
            "no LLM endpoint configured: set OPENAI_BASE_URL (e.g. http://localhost:8000/v1 for a local "
            "vLLM/Ollama server) and/or OPENAI_API_KEY, or choose a method that needs no LLM"
        )
    if settings.llm_timeout <= 0:
        raise LLMError(f"[llm] timeout = {settings.llm_timeout!r} must be > 0 seconds (perturb_core.toml)")
    return openai.OpenAI(
        base_url=check_base_url(settings.llm_base_url or DEFAULT_BASE_URL),
        api_key=settings.llm_api_key or PLACEHOLDER_API_KEY,
        timeout=settings.llm_timeout,
        max_retries=0,
    )


def _malformed(where: str, what: str) -> LLMError:
    return LLMError(
        f"LLM endpoint {where} answered HTTP 200 with a malformed chat.completion body: {what}; "
        "not retried (a malformed body is not transient): check that OPENAI_BASE_URL points at an "
        "OpenAI-compatible /v1 API and the server's logs"
    )


def _kind(value: object) -> str:
    name = type(value).__name__
    return ("an " if name[0] in "aeiou" else "a ") + name


def _content(completion: object, where: str) -> str:
    """The answer text of a parsed completion, checking the shape the client did not validate.

    The openai client builds its response objects without validation, so a server that answers
    HTTP 200 with ``choices`` not a list, no ``message`` or a non-string ``content`` is caught
    here, as an :class:`LLMError`, instead of as an ``AttributeError`` later.
    """
    choices = getattr(completion, "choices", None)
    if choices is None or (isinstance(choices, list) and not choices):
        raise LLMError(
            f"empty answer from {where}: the response has no choices; "
            "check that OPENAI_BASE_URL points at an OpenAI-compatible /v1 API"
        )
    if not isinstance(choices, list):
        raise _malformed(where, f"'choices' is {_kind(choices)}, not a list")
    choice = choices[0]
    if not isinstance(choice, Choice):
        raise _malformed(where, f"choices[0] is {_kind(choice)}, not an object")
    message = getattr(choice, "message", None)
    if not isinstance(message, ChatCompletionMessage):
        what = "missing" if message is None else f"{_kind(message)}, not an object"
        raise _malformed(where, f"choices[0].message is {what}")
    content = getattr(message, "content", None)
    if content is not None and not isinstance(content, str):
        raise _malformed(where, f"choices[0].message.content is {_kind(content)}, not a string")
    if content is None or not content.strip():
        reason = getattr(choice, "finish_reason", None)
        raise LLMError(
            f"empty answer from {where} (finish_reason={reason!r}); if it is 'length', raise "
            "max_tokens; otherwise the model may refuse the prompt; try again or another model"
        )
    return content


def _usage(completion: object) -> tuple[int | None, int | None]:
    usage = getattr(completion, "usage", None)
    counts = []
    for name in ("prompt_tokens", "completion_tokens"):
        value = getattr(usage, name, None)
        counts.append(value if isinstance(value, int) and not isinstance(value, bool) else None)
    return counts[0], counts[1]


def _unreachable(exc: BaseException) -> str | None:
    """``"refused"`` or ``"dns"`` when a connection error is one that retrying cannot fix."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, ConnectionRefusedError):
            return "refused"
        if isinstance(cur, socket.gaierror):
            return "dns"
        text = str(cur).lower()
        if "connection refused" in text or "errno 111" in text:
            return "refused"
        if any(s in text for s in ("name or service not known", "nodename nor servname", "getaddrinfo")):
            return "dns"
        cur = cur.__cause__ or cur.__context__
    return None


def list_models(
    settings: Settings | None = None, *, client: openai.OpenAI | None = None
) -> list[dict[str, str]]:
    """The models an endpoint serves (``GET /models``), never retried, with a short timeout.

    Args:
        settings: resolved settings (endpoint and key); ``None`` reads them.
        client: an already built client (then ``settings`` is not read).

    Returns:
        ``[{"id": ..., "owned_by": ...}, ...]`` in the server's order.

    Raises:
        LLMError: the endpoint is unreachable, refuses the key, or has no ``/models`` route;
            the message says how to fix it.
    """
    if client is None:
        client = get_client(settings if settings is not None else get_settings())
    where = str(client.base_url).rstrip("/")
    try:
        page = client.with_options(timeout=_MODELS_TIMEOUT_S, max_retries=0).models.list()
        data = list(getattr(page, "data", None) or [])
    except openai.APIConnectionError as exc:
        raise LLMError(f"cannot list the models of {where}: {_connection_message(where, exc)}") from None
    except openai.APIStatusError as exc:
        raise LLMError(
            f"GET {where}/models answered HTTP {exc.status_code}; "
            + (
                "set OPENAI_API_KEY to a valid key for it"
                if exc.status_code in (401, 403)
                else "check that OPENAI_BASE_URL points at an OpenAI-compatible /v1 API"
            )
        ) from None
    except (openai.OpenAIError, ValueError) as exc:
        raise LLMError(
            f"GET {where}/models gave an unusable answer ({type(exc).__name__}); check OPENAI_BASE_URL"
        ) from None
    return [
        {"id": str(getattr(m, "id", "")), "owned_by": str(getattr(m, "owned_by", "") or "")}
        for m in data
        if getattr(m, "id", None)
    ]


def _connection_message(where: str, exc: BaseException) -> str:
    kind = _unreachable(exc)
    host = urlsplit(where).netloc
    if kind == "refused":
        return (
            f"connection refused at {host}: no server listens there; start it (e.g. `python -m perturb_core "
            "llm serve`) or fix the port in OPENAI_BASE_URL"
        )
    if kind == "dns":
        return f"host name of {host!r} cannot be resolved; fix the host in OPENAI_BASE_URL"
    return f"cannot connect to {host} ({str(exc.__cause__ or exc)[:_DETAIL_CHARS]}); check OPENAI_BASE_URL"
