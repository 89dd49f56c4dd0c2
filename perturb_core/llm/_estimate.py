"""What a batch of LLM prompts will cost before it is sent: calls (cache misses), prompt tokens, time."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from itertools import islice
from typing import Any

from perturb_core.llm._batch import JSONVariant
from perturb_core.llm._client import LLM
from perturb_core.llm._formats import structured_options
from perturb_core.llm._messages import Messages, _drop_none, cache_key

__all__ = ["ASSUMED_S_PER_CALL", "CHARS_PER_TOKEN", "estimate_batch", "format_estimate"]

CHARS_PER_TOKEN = 4.0
"""Approximate characters per token of English prompts (the estimate divides characters by this)."""
ASSUMED_S_PER_CALL = 10.0
"""Seconds per call assumed when the cache holds no measured call of the model yet."""
_TIMING_SAMPLE = 200


def _measured_s_per_call(llm: LLM) -> tuple[float | None, int]:
    """Median request time of up to 200 cached calls of ``llm.model`` (they record their time)."""
    if llm.cache is None:
        return None, 0
    times = [
        float(r["elapsed_s"])
        for r in islice((r for r in llm.cache.iter_records() if r.get("model") == llm.model), _TIMING_SAMPLE)
        if isinstance(r.get("elapsed_s"), int | float)
    ]
    return (statistics.median(times), len(times)) if len(times) >= 3 else (None, len(times))


def estimate_batch(
    llm: LLM,
    prompts: Sequence[Messages],
    *,
    max_tokens: int | None = None,
    json_variants: Sequence[JSONVariant[Any]] | None = None,
    n_total: int | None = None,
) -> dict[str, Any]:
    """Estimate the cost of asking ``prompts`` (as :func:`perturb_core.llm.run_batch` would).

    A prompt whose first request (json where the answer format asks for it, else text) is in the
    cache costs nothing. Prompt tokens are approximate: characters / :data:`CHARS_PER_TOKEN` of the
    uncached prompts. Time assumes ``concurrency`` calls in flight, each taking the median time of
    this model's cached calls (or :data:`ASSUMED_S_PER_CALL` when none is cached yet); a text
    fallback after a refused json request would add calls.

    Args:
        llm: the model.
        prompts: the text prompts.
        max_tokens: answer length limit of the calls (part of the cache key).
        json_variants: the json-format requests (used when ``llm.answer_format`` is not text).
        n_total: the batch's real size when ``prompts`` is a sample of it (counts are scaled up).

    Returns:
        ``{"prompts", "calls", "cached", "prompt_tokens", "token_method", "seconds_per_call",
        "seconds_source", "concurrency", "time_s", "model", "answer_format", "sampled"}``.
    """
    use_json = json_variants is not None and llm.answer_format != "text"
    family = llm.family if use_json else None
    if llm.max_tokens_cap is not None:
        max_tokens = min(max_tokens or llm.max_tokens_cap, llm.max_tokens_cap)
    base = {"temperature": 0.0, "max_tokens": max_tokens}
    misses, chars = 0, 0
    for i, msgs in enumerate(prompts):
        if use_json:
            v = json_variants[i]  # type: ignore[index]
            sent, options = v.messages, _drop_none({**base, **structured_options(family, v.schema, v.name)})  # type: ignore[arg-type]
        else:
            sent, options = msgs, _drop_none(base)
        if llm.cache is not None and llm.cache.get(cache_key(llm.model, sent, options)) is not None:
            continue
        misses += 1
        chars += sum(len(m["content"]) for m in sent)
    n = len(prompts)
    scale = (n_total / n) if n_total and n else 1.0
    calls = round(misses * scale)
    measured, n_timed = _measured_s_per_call(llm)
    per_call = measured if measured is not None else ASSUMED_S_PER_CALL
    source = (
        f"median of {n_timed} cached calls of {llm.model}"
        if measured is not None
        else f"assumed ({n_timed} measured calls of {llm.model} in the cache; need 3)"
    )
    return {
        "prompts": round(n * scale),
        "calls": calls,
        "cached": round((n - misses) * scale),
        "prompt_tokens": round(chars / CHARS_PER_TOKEN * scale),
        "token_method": f"approximate: characters / {CHARS_PER_TOKEN:g} of the uncached prompts",
        "seconds_per_call": round(per_call, 2),
        "seconds_source": source,
        "concurrency": llm.concurrency,
        "time_s": round(math.ceil(calls / llm.concurrency) * per_call, 1),
        "model": llm.model,
        "answer_format": llm.answer_format,
        "sampled": None if scale == 1.0 else f"estimated from {n} of {n_total} prompts",
    }


def format_estimate(method: str, est: dict[str, Any]) -> str:
    """One line for stderr: ``estimate for llm: 20 calls (0 cached), ~31,000 prompt tokens, ...``."""
    sampled = f"; {est['sampled']}" if est.get("sampled") else ""
    return (
        f"estimate for {method}: {est['calls']:,} LLM calls ({est['cached']:,} of {est['prompts']:,} prompts "
        f"cached), ~{est['prompt_tokens']:,} prompt tokens ({est['token_method']}), ~{est['time_s']:,.0f} s at "
        f"concurrency {est['concurrency']} and {est['seconds_per_call']:g} s per call ({est['seconds_source']}); "
        f"model {est['model']}, answer format {est['answer_format']}{sampled}"
    )
