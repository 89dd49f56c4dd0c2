"""The OpenAI-compatible client: one place builds it; :class:`LLM` adds the cache, retries and concurrency.

Every call goes through :class:`LLM`: it looks the prompt up in a :class:`ResponseCache` (a hit
makes no HTTP request), otherwise asks the endpoint, retrying rate limits, server errors,
timeouts and dropped connections with exponential backoff, and stores the answer. Works with
any OpenAI-compatible server (OpenAI, vLLM, Ollama, llama.cpp).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import CancelledError, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import openai

from perturb_core.config import Settings, get_settings
from perturb_core.errors import LLMError, ValidationError
from perturb_core.llm._cache import ResponseCache
from perturb_core.llm._endpoint import (
    PLACEHOLDER_API_KEY,
    FormatRejectedError,
    _connection_message,
    _content,
    _malformed,
    _unreachable,
    _usage,
    get_client,
    list_models,
)
from perturb_core.llm._formats import check_answer_format, check_server_family, detect_family
from perturb_core.llm._messages import Messages, _drop_none, _validate_messages, cache_key, render_messages
from perturb_core.memo import Memo

__all__ = ["LLM", "LLMResponse", "test_connection"]

log = logging.getLogger(__name__)


MAX_TIMEOUTS = 2
"""Timed-out attempts of one request before it fails (a timeout is retried once, whatever ``max_retries``)."""
_RETRYABLE_STATUS = frozenset({408, 429})  # and every 5xx; 408 is a timeout
_NOT_ASKED = "not asked"
_DETAIL_CHARS = 300
_MODEL_HINT = "PERTURB_CORE_LLM_MODEL (or [llm] model in perturb_core.toml)"
# How to fix a non-retryable HTTP status; {model}/{endpoint} are filled in.
_STATUS_FIX: Mapping[int, str] = MappingProxyType(
    {
        400: "check that model {model!r} accepts these options and that the prompt fits its context window",
        401: "set OPENAI_API_KEY to a valid key for {endpoint}",
        403: "use a key with access to model {model!r}, or set " + _MODEL_HINT + " to a model it may use",
        404: (
            "set " + _MODEL_HINT + " to a model the endpoint serves (GET {endpoint}/models lists them) "
            "and check OPENAI_BASE_URL (it usually ends in /v1)"
        ),
        413: "shorten the prompt (fewer candidates or less evidence)",
        422: "check that model {model!r} accepts these options",
    }
)
_DEFAULT_FIX = "check OPENAI_BASE_URL, " + _MODEL_HINT + " and the endpoint's logs"


@dataclass(frozen=True)
class LLMResponse:
    """One answer.

    Attributes:
        text: the model's answer, as returned (not stripped or parsed).
        model: the model that was asked.
        key: the request's :func:`cache_key`.
        cache_hit: whether the answer came from the cache (no HTTP request was made).
        elapsed_s: wall time of this call in seconds (a hit takes milliseconds; the original
            request's time is in the cache entry).
        prompt_tokens: prompt tokens the server counted (``None``: it did not say).
        completion_tokens: answer tokens the server counted (``None``: it did not say).
    """

    text: str
    model: str
    key: str
    cache_hit: bool
    elapsed_s: float
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class _Retryable(Exception):
    """A failed attempt worth repeating; ``description`` says what happened."""

    def __init__(
        self, description: str, retry_after: float | None = None, *, timed_out: bool = False
    ) -> None:
        super().__init__(description)
        self.description = description
        self.retry_after = retry_after
        self.timed_out = timed_out


def _retry_after(response: Any) -> float | None:
    try:
        value = response.headers.get("retry-after")
        return float(value) if value is not None else None
    except (AttributeError, TypeError, ValueError):
        return None


@dataclass(frozen=True)
class LLM:
    """A model behind an OpenAI-compatible endpoint, with cache and retries.

    Build it with :meth:`from_settings`. Thread-safe: :meth:`complete_many` shares one
    instance across worker threads.

    Attributes:
        client: the ``openai.OpenAI`` client (from :func:`get_client`).
        model: model name sent with every request.
        cache: where answers are stored; ``None`` disables caching.
        max_retries: extra attempts after a 429, 408/409, 5xx, timeout or connection error.
        concurrency: worker threads in :meth:`complete_many`.
        backoff_s: first retry delay; it doubles each retry, with random jitter in [50%, 100%].
        max_backoff_s: upper bound of one retry delay (also caps a server's ``Retry-After``).
        sleep: the sleep function (tests inject a no-op).
        answer_format: ``text``, ``json`` or ``auto`` (read by the methods that build prompts).
        server_family: request shape of json answers (``auto``: detected on first use, see
            :attr:`family`).
        max_consecutive_failures: :meth:`complete_many` stops asking after this many failed
            calls in a row; the prompts not asked get an error saying so.
        max_tokens_cap: upper bound of every call's ``max_tokens`` (``None``: no bound).
    """

    client: openai.OpenAI = field(repr=False)
    model: str
    cache: ResponseCache | None = None
    max_retries: int = 4
    concurrency: int = 8
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    answer_format: str = "text"
    server_family: str = "auto"
    max_consecutive_failures: int | None = 8
    max_tokens_cap: int | None = None
    _memo: Memo = field(default_factory=Memo, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "answer_format", check_answer_format(self.answer_format))
        object.__setattr__(self, "server_family", check_server_family(self.server_family))
        checks = {
            "max_retries": (self.max_retries >= 0, ">= 0"),
            "concurrency": (self.concurrency >= 1, ">= 1"),
            "backoff_s": (self.backoff_s >= 0, ">= 0"),
            "max_backoff_s": (self.max_backoff_s >= 0, ">= 0"),
            "max_tokens_cap": (self.max_tokens_cap is None or self.max_tokens_cap >= 1, ">= 1 or None"),
            "max_consecutive_failures": (
                self.max_consecutive_failures is None or self.max_consecutive_failures >= 1,
                ">= 1 or None",
            ),
        }
        for name, (ok, rule) in checks.items():
            if not ok:
                raise ValidationError(f"LLM {name} = {getattr(self, name)!r} must be {rule}")
        if not self.model:
            raise ValidationError("LLM model name is empty; set " + _MODEL_HINT)

    @classmethod
    def from_settings(
        cls,
        settings: Settings | None = None,
        *,
        use_cache: bool = True,
        backoff_s: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> LLM:
        """Build from settings: endpoint, key, model, timeout, retries, concurrency, cache folder.

        Args:
            settings: resolved settings; ``None`` reads them with :func:`get_settings`.
            use_cache: cache answers in ``settings.cache_dir``.
            backoff_s: first retry delay in seconds.
            sleep: the sleep function used between retries.

        Returns:
            The configured :class:`LLM`.

        Raises:
            LLMError: no endpoint or key is configured.
        """
        settings = settings if settings is not None else get_settings()
        return cls(
            client=get_client(settings),
            model=settings.llm_model,
            cache=ResponseCache(settings.cache_dir) if use_cache else None,
            max_retries=settings.llm_max_retries,
            concurrency=settings.llm_concurrency,
            backoff_s=backoff_s,
            sleep=sleep,
            answer_format=settings.llm_answer_format,
            server_family=settings.llm_server_family,
            max_consecutive_failures=settings.llm_max_consecutive_failures,
            max_tokens_cap=settings.llm_max_tokens,
        )

    @property
    def endpoint(self) -> str:
        """The endpoint's base URL (never includes the key)."""
        return str(self.client.base_url).rstrip("/")

    def served_models(self) -> list[dict[str, str]]:
        """The endpoint's models (``GET /models``; see :func:`list_models`), asked once per object."""
        return self._memo.get("models", lambda: list_models(client=self.client))

    @property
    def family(self) -> str:
        """The server family of json requests: the setting, or detected from ``GET /models`` and the URL.

        Detection never fails: an endpoint without a usable ``/models`` is treated as ``openai``.
        """
        if self.server_family != "auto":
            return self.server_family

        def detect() -> str:
            try:
                owners = tuple(m["owned_by"] for m in self.served_models())
            except LLMError:
                owners = ()
            return detect_family(self.endpoint, owners)

        return self._memo.get("family", detect)

    def _model_missing(self, status: int, detail: str) -> str | None:
        """For a 404 (or a 400 naming the model): the served models, if the model is not among them."""
        if status != 404 and "model" not in detail.lower():
            return None
        try:
            ids = [m["id"] for m in self.served_models()]
        except LLMError:
            return None
        if not ids or self.model in ids:
            return None
        return (
            f"model {self.model!r} is not served by {self.endpoint}; it serves: {', '.join(ids[:20])}"
            f"{' ...' if len(ids) > 20 else ''}; set {_MODEL_HINT} to one of them"
        )

    def _redact(self, text: str) -> str:
        key = self.client.api_key
        if isinstance(key, str) and len(key) >= 4 and key != PLACEHOLDER_API_KEY:
            text = text.replace(key, "***")
        return text[:_DETAIL_CHARS]

    def _detail(self, exc: openai.APIStatusError) -> str:
        body = exc.body
        if isinstance(body, Mapping) and isinstance(body.get("message"), str):
            detail = body["message"]
        elif isinstance(body, str) and body:
            detail = body
        else:
            detail = exc.message
        return self._redact(" ".join(str(detail).split()))

    def _attempt(
        self, messages: list[dict[str, str]], options: dict[str, Any]
    ) -> tuple[str, tuple[int | None, int | None]]:
        """One request; returns the answer text and token counts, or raises :class:`_Retryable` / :class:`LLMError`."""
        where = f"{self.endpoint} (model {self.model!r})"
        try:
            completion = self.client.chat.completions.create(
                model=self.model,
                messages=messages,  # type: ignore[arg-type]
                **options,
            )
        except openai.APITimeoutError:
            raise _Retryable(f"timed out (no answer within {self._timeout_text()})", timed_out=True) from None
        except openai.APIConnectionError as exc:
            if _unreachable(exc) is not None:  # retrying cannot fix these: fail at once
                raise LLMError(
                    f"LLM endpoint {where}: {self._redact(_connection_message(self.endpoint, exc))}"
                ) from None
            raise _Retryable(f"cannot connect ({self._redact(str(exc.__cause__ or exc))})") from None
        except openai.APIStatusError as exc:
            status, detail = exc.status_code, self._detail(exc)
            if status in _RETRYABLE_STATUS or status >= 500:
                raise _Retryable(f"HTTP {status}: {detail}", _retry_after(exc.response)) from None
            if status in (404, 400) and (missing := self._model_missing(status, detail)) is not None:
                raise LLMError(f"LLM endpoint {where} answered HTTP {status}: {detail}; {missing}") from None
            if status in (400, 422) and ("response_format" in options or "extra_body" in options):
                raise FormatRejectedError(
                    f"LLM endpoint {where} refused the json answer format (HTTP {status}: {detail}); "
                    "asked in text instead (set PERTURB_CORE_LLM_ANSWER_FORMAT=text to skip the attempt)"
                ) from None
            fix = _STATUS_FIX.get(status, _DEFAULT_FIX).format(model=self.model, endpoint=self.endpoint)
            raise LLMError(f"LLM endpoint {where} answered HTTP {status}: {detail}; {fix}") from None
        except openai.OpenAIError as exc:  # malformed response and the like
            raise LLMError(
                f"LLM endpoint {where} gave an unusable response: {self._redact(str(exc))}; "
                "check that OPENAI_BASE_URL points at an OpenAI-compatible /v1 API"
            ) from None
        except ValueError as exc:  # json.JSONDecodeError: a truncated or non-JSON HTTP 200 body
            raise _malformed(where, f"the body is not valid JSON ({self._redact(str(exc))})") from None
        return _content(completion, where), _usage(completion)

    def _timeout_text(self) -> str:
        timeout = getattr(self.client, "timeout", None)
        seconds = getattr(timeout, "read", timeout)
        return f"{seconds:g} s" if isinstance(seconds, int | float) else "the timeout"

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        delay = min(self.max_backoff_s, self.backoff_s * 2**attempt) * random.uniform(0.5, 1.0)
        if retry_after is not None and self.backoff_s > 0:
            delay = max(delay, min(retry_after, self.max_backoff_s))
        return delay

    def complete(
        self,
        messages: Messages,
        *,
        temperature: float | None = 0.0,
        max_tokens: int | None = None,
        use_cache: bool = True,
        extra: Mapping[str, Any] | None = None,
    ) -> LLMResponse:
        """Answer one prompt, from the cache when possible.

        Args:
            messages: the chat prompt (see :func:`render_messages`).
            temperature: sampling temperature; ``None`` leaves it to the endpoint (some
                reasoning models accept only their default).
            max_tokens: answer length limit; ``None`` leaves it to the endpoint.
            use_cache: look the answer up in, and store it into, the cache; ``False`` always
                asks the endpoint and stores nothing.
            extra: more request options (e.g. ``response_format`` from
                :func:`perturb_core.llm.structured_options`); part of the cache key.

        Returns:
            The answer; ``cache_hit`` says whether an HTTP request was made.

        Raises:
            ValidationError: ``messages`` is malformed.
            LLMError: the endpoint refused the request (bad key, unknown model, bad request:
                raised at once), kept failing after ``max_retries`` retries (429, 5xx, timeouts,
                connection errors), or gave an empty answer.
        """
        start = time.perf_counter()
        msgs = _validate_messages(messages)
        if self.max_tokens_cap is not None:
            max_tokens = min(max_tokens or self.max_tokens_cap, self.max_tokens_cap)
        options = _drop_none({"temperature": temperature, "max_tokens": max_tokens, **(extra or {})})
        key = cache_key(self.model, msgs, options)
        cache = self.cache if use_cache else None
        if cache is not None and (hit := cache.get(key)) is not None:
            usage = hit.get("usage") if isinstance(hit.get("usage"), Mapping) else {}
            return LLMResponse(
                hit["response"],
                self.model,
                key,
                True,
                time.perf_counter() - start,
                usage.get("prompt_tokens"),
                usage.get("completion_tokens"),
            )

        attempts = self.max_retries + 1
        timeouts = 0
        for attempt in range(attempts):
            try:
                text, (n_prompt, n_completion) = self._attempt(msgs, options)
                break
            except _Retryable as exc:
                timeouts += exc.timed_out
                if timeouts >= MAX_TIMEOUTS:  # a hanging endpoint: minutes per query are no use to anyone
                    raise LLMError(
                        f"LLM request to {self.endpoint} (model {self.model!r}) timed out {timeouts} times "
                        f"(no answer within {self._timeout_text()}); the endpoint hangs or the model is too slow "
                        "for this timeout: check the server, or raise [llm] timeout in perturb_core.toml "
                        "(PERTURB_CORE_LLM_TIMEOUT)"
                    ) from None
                if attempt + 1 == attempts:
                    raise LLMError(
                        f"LLM request to {self.endpoint} (model {self.model!r}) failed after {attempts} "
                        f"attempt(s), last: {exc.description}; the endpoint is overloaded, slow or "
                        "unreachable: check OPENAI_BASE_URL, raise [llm] timeout or max_retries in "
                        "perturb_core.toml, lower [llm] concurrency, or try again later"
                    ) from None
                delay = self._backoff(attempt, exc.retry_after)
                log.warning(
                    "LLM %s attempt %d/%d: %s; retrying in %.1fs",
                    self.model,
                    attempt + 1,
                    attempts,
                    exc.description,
                    delay,
                )
                self.sleep(delay)
        elapsed = time.perf_counter() - start
        if cache is not None:
            record = {
                "key": key,
                "model": self.model,
                "messages": msgs,
                "options": options,
                "response": text,
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "elapsed_s": round(elapsed, 3),
                "usage": {"prompt_tokens": n_prompt, "completion_tokens": n_completion},
            }
            try:
                cache.put(record)
            except OSError as exc:  # the answer is still good; only caching failed
                log.warning("could not write LLM cache entry in %s: %s", cache.directory, exc)
        return LLMResponse(text, self.model, key, False, elapsed, n_prompt, n_completion)

    def _complete_or_error(
        self,
        messages: Messages,
        temperature: float | None,
        max_tokens: int | None,
        use_cache: bool,
        extra: Mapping[str, Any] | None,
    ) -> LLMResponse | LLMError:
        try:
            return self.complete(
                messages, temperature=temperature, max_tokens=max_tokens, use_cache=use_cache, extra=extra
            )
        except LLMError as exc:
            return exc

    def complete_many(
        self,
        batch: Sequence[Messages],
        *,
        temperature: float | None = 0.0,
        max_tokens: int | None = None,
        use_cache: bool = True,
        progress: Callable[[int, int], None] | None = None,
        extras: Sequence[Mapping[str, Any] | None] | None = None,
        on_result: Callable[[int, LLMResponse | LLMError], None] | None = None,
    ) -> list[LLMResponse | LLMError]:
        """Answer many prompts concurrently (``concurrency`` threads), keeping their order.

        A prompt that fails does not stop the others: its slot holds the :class:`LLMError`. After
        ``max_consecutive_failures`` failed calls in a row (a refused json format does not count)
        the prompts not yet sent are not asked: their slots hold an :class:`LLMError` that starts
        with "not asked" and says why.

        Args:
            batch: the prompts.
            temperature: as in :meth:`complete`.
            max_tokens: as in :meth:`complete`.
            use_cache: as in :meth:`complete`.
            progress: called as ``progress(done, total)`` after each prompt finishes, in the
                calling thread (safe for UI updates such as a Streamlit progress bar).
            extras: per prompt, more request options (see :meth:`complete`), or ``None``.
            on_result: called as ``on_result(i, result)`` as soon as prompt ``i`` is answered (or
                failed), in the calling thread: callers record answers as they arrive, so a batch
                killed midway keeps the answered ones.

        Returns:
            One :class:`LLMResponse` or :class:`LLMError` per prompt, in ``batch`` order.

        Raises:
            ValidationError: a prompt is malformed (checked before any request is sent).
        """
        prompts = [_validate_messages(m) for m in batch]
        total = len(prompts)
        results: list[LLMResponse | LLMError | None] = [None] * total
        if total == 0:
            return []
        if extras is not None and len(extras) != total:
            raise ValidationError(
                f"extras has {len(extras)} entries for {total} prompt(s); pass one per prompt"
            )
        extra_of = list(extras) if extras is not None else [None] * total
        streak, stopped = 0, None
        with ThreadPoolExecutor(max_workers=min(self.concurrency, total), thread_name_prefix="llm") as pool:
            futures = {
                pool.submit(self._complete_or_error, m, temperature, max_tokens, use_cache, extra_of[i]): i
                for i, m in enumerate(prompts)
            }
            try:
                for done, future in enumerate(as_completed(futures), 1):
                    i = futures[future]
                    try:
                        result = future.result()
                    except CancelledError:
                        result = LLMError(f"{_NOT_ASKED}: {stopped}")
                    results[i] = result
                    failed = isinstance(result, LLMError) and not isinstance(result, FormatRejectedError)
                    streak = streak + 1 if failed and stopped is None else 0
                    limit = self.max_consecutive_failures
                    if stopped is None and limit is not None and streak >= limit:
                        stopped = (
                            f"the batch stopped after {streak} failed calls in a row (last: {str(result)[:200]}); "
                            "fix the endpoint and run again (answers so far are cached)"
                        )
                        for f in futures:
                            f.cancel()
                    if on_result is not None:
                        on_result(i, result)
                    if progress is not None:
                        progress(done, total)
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
        return results  # type: ignore[return-value]


def test_connection(settings: Settings | None = None) -> str:
    """Send a tiny prompt (never cached, no retries) to check the endpoint, key and model.

    Args:
        settings: resolved settings; ``None`` reads them with :func:`get_settings`.

    Returns:
        The model's reply, stripped.

    Raises:
        LLMError: nothing is configured, or the endpoint fails; the message says how to fix it.
    """
    settings = settings if settings is not None else get_settings()
    llm = LLM.from_settings(settings.with_(llm_max_retries=0), use_cache=False)
    messages = render_messages("You are a connection test. Answer with one word.", "Reply with: OK")
    return llm.complete(messages, temperature=None, use_cache=False).text.strip()


test_connection.__test__ = False  # type: ignore[attr-defined]  # not a pytest test
