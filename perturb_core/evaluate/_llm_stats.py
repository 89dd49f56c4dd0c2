"""How an LLM method's calls went: answered, parse-failure and out-of-pool rates, formats, tokens, time.

Per query (LGR) or pair (CORE) the evaluation keeps a few columns (:data:`LLM_COLUMNS`) next to
the metrics; :func:`llm_stats` sums them per method for ``evaluate --json`` (key ``llm_stats``).
Definitions (over the queries of the method):

- ``answered_rate``: queries whose call returned an answer / queries asked (failed calls and
  prompts not asked after a batch stopped are unanswered);
- ``parse_failure_rate``: answered queries from which nothing usable was read (LGR: no
  ``<Final Answer>`` list and no valid JSON; CORE: no probability in [0, 1]) / answered queries;
- ``out_of_pool_rate`` (LGR): names outside the candidate pool / all names the model gave;
- ``mean_k_used`` (LGR): valid pool names kept per answered query;
- ``answer_format_used``: queries answered by a json request, by a text request, and unanswered;
- ``prompt_tokens`` / ``completion_tokens``: as counted by the server (cached answers keep the
  counts of their original call; ``None`` when the server reported none);
- ``wall_time_s``: the method's wall time in this run (a run of cache hits takes milliseconds).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["LLM_COLUMNS", "lgr_llm_columns", "llm_stats"]

LLM_COLUMNS: tuple[str, ...] = (
    "answered",
    "parse_failure",
    "n_named",
    "n_out_of_pool",
    "answer_format_used",
    "prompt_tokens",
    "completion_tokens",
    "cache_hit",
)
"""Per-query columns of LLM methods in ``per_query`` / ``per_pair`` (``None`` for other methods)."""


def lgr_llm_columns(traces: Sequence[Any], k_used: np.ndarray) -> pd.DataFrame:
    """:data:`LLM_COLUMNS` of the ``llm`` selector's queries from its :class:`~perturb_core.retrieval.LLMTrace` records."""
    rows = []
    for trace, k in zip(traces, k_used, strict=True):
        if trace is None:  # empty pool: never asked
            rows.append(dict.fromkeys(LLM_COLUMNS, None) | {"answered": False})
            continue
        answered = trace.raw_answer is not None
        readable = trace.answer_format_used == "json" or trace.block_found
        n_out = len(trace.filtered)
        rows.append(
            {
                "answered": answered,
                "parse_failure": answered and not readable,
                "n_named": int(k) + n_out + len(trace.duplicates) if answered else None,
                "n_out_of_pool": n_out if answered else None,
                "answer_format_used": trace.answer_format_used,
                "prompt_tokens": trace.prompt_tokens,
                "completion_tokens": trace.completion_tokens,
                "cache_hit": trace.cache_hit,
            }
        )
    return pd.DataFrame(rows, columns=list(LLM_COLUMNS))


def _flag(values: pd.Series) -> np.ndarray:
    """A column of bools with missing values as False."""
    return np.array([bool(v) if isinstance(v, bool | np.bool_) else False for v in values], dtype=bool)


def _sum(values: pd.Series) -> int | None:
    v = pd.to_numeric(values, errors="coerce").dropna()
    return int(v.sum()) if len(v) else None


def _rate(num: float, den: float) -> float | None:
    return round(float(num) / float(den), 4) if den else None


def llm_stats(frame: pd.DataFrame, wall_time_s: float, *, k_used: pd.Series | None = None) -> dict[str, Any]:
    """The ``llm_stats`` of one method from its rows of :data:`LLM_COLUMNS`.

    Args:
        frame: the method's rows (``answered`` and ``parse_failure`` as bools; LGR rows also
            ``n_named`` and ``n_out_of_pool``).
        wall_time_s: the method's wall time.
        k_used: LGR's valid names per query (``None`` for CORE).

    Returns:
        ``{"n_queries", "answered_rate", "parse_failure_rate", "out_of_pool_rate", "mean_k_used",
        "answer_format_used": {"json", "text", "none"}, "cache_hits", "prompt_tokens",
        "completion_tokens", "wall_time_s"}`` (see the module docstring).
    """
    answered = _flag(frame["answered"])
    n, n_ans = len(frame), int(answered.sum())
    failures = _flag(frame["parse_failure"]) & answered
    named = pd.to_numeric(frame.get("n_named"), errors="coerce") if "n_named" in frame else None
    out = pd.to_numeric(frame.get("n_out_of_pool"), errors="coerce") if "n_out_of_pool" in frame else None
    formats = frame["answer_format_used"].where(answered, None)
    return {
        "n_queries": n,
        "answered_rate": _rate(n_ans, n),
        "parse_failure_rate": _rate(failures.sum(), n_ans),
        "out_of_pool_rate": (
            _rate(np.nansum(out[answered]), np.nansum(named[answered]))
            if named is not None and out is not None
            else None
        ),
        "mean_k_used": (
            round(float(pd.to_numeric(k_used, errors="coerce")[answered].mean()), 3)
            if k_used is not None and n_ans
            else None
        ),
        "answer_format_used": {
            "json": int((formats == "json").sum()),
            "text": int((formats == "text").sum()),
            "none": int(n - n_ans),
        },
        "cache_hits": int(_flag(frame["cache_hit"]).sum()),
        "prompt_tokens": _sum(frame["prompt_tokens"]),
        "completion_tokens": _sum(frame["completion_tokens"]),
        "wall_time_s": round(float(wall_time_s), 3),
    }
