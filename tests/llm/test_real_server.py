"""End to end against the REAL llama.cpp server with the bundled SmolLM2-135M (marked ``llm_server``; issue 12).

These tests check the pipeline (valid JSON out, pool validation, ``k_used``, fallbacks labelled as
fallbacks, the cache, timing fields), never the model's biology: a 135M model is a wiring check.
They are skipped locally without ``requirements-llm.txt`` and fail in CI (``CI=true``) without it.
"""

from __future__ import annotations

import json

import pytest

from perturb_core.cli import main
from perturb_core.config import Settings
from perturb_core.llm import LLM, list_models, render_messages
from perturb_core.testing.pytest_plugin import LocalLLMServer

K = 3


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_real_server_lists_its_model_and_answers(
    llm_server: LocalLLMServer, llm_server_settings: Settings
) -> None:
    assert llm_server.model in [m["id"] for m in list_models(llm_server_settings)]
    llm = LLM.from_settings(llm_server_settings)
    assert llm.family == "llama_cpp"
    answer = llm.complete(render_messages("Answer with one word.", "Say OK."), max_tokens=8)
    assert answer.text.strip() and not answer.cache_hit and answer.prompt_tokens and answer.prompt_tokens > 5
    assert llm.complete(render_messages("Answer with one word.", "Say OK."), max_tokens=8).cache_hit


@pytest.mark.parametrize("answer_format", ["text", "json"])
def test_lgr_predict_llm_selector(
    real_data: Settings,
    llm_server_settings: Settings,
    capsys: pytest.CaptureFixture[str],
    answer_format: str,
) -> None:
    argv = (
        "lgr", "predict", "--cell-line", "C32", "--drug", "Trametinib", "--selector", "llm", "--k", str(K),
        "--answer-format", answer_format, "--json",
    )  # fmt: skip
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    doc = json.loads(out)
    llm = doc["llm"]
    assert llm["raw_answer"] is not None and llm["error"] is None and llm["elapsed_s"] > 0
    assert llm["answer_format_used"] in ("json", "text")
    if answer_format == "text":
        assert llm["answer_format_used"] == "text"
    elif llm["answer_format_used"] == "text":  # the json answer was unusable: the fallback says why
        assert llm["format_note"].startswith("json ")
    assert 0 <= doc["k_used"] <= K and doc["pool_size"] > K
    chosen = [n for n in doc["neighbours"] if n["source"] == "selector"]
    assert len(chosen) == doc["k_used"]  # only validated pool names count as the LLM's picks
    assert not {n["name"] for n in chosen} & set(doc["filtered"])
    if doc["k_used"] < min(doc["hybrid_min_k"], K):  # too few valid picks: padded, and labelled so
        assert doc["fallback"] and any(n["source"] != "selector" for n in doc["neighbours"])
    code, out, _ = run(capsys, *argv)
    assert code == 0 and json.loads(out)["llm"]["cache_hit"]


def test_core_explain_core_reasoning(
    real_data: Settings, llm_server_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        capsys, "core", "explain", "--dataset", "perturbqa-k562", "--perturbation", "aars2", "--gene", "MT-ND5",
        "--method", "core_reasoning", "--answer-format", "json", "--budget", "6", "--json",
    )  # fmt: skip
    assert code == 0, err
    doc = json.loads(out)
    llm = doc["llm"]
    assert 0.0 <= doc["score"] <= 1.0 and llm["raw_answer"] is not None
    if llm["fallback"]:  # no usable probability: the score is CORE-Voting's, and says so
        assert (
            doc["score"] == pytest.approx(doc["voting_score"]) and llm["error"] and "FALLBACK" in doc["note"]
        )
    else:
        assert doc["score"] == pytest.approx(llm["probability"])
    assert llm["answer_format_used"] in ("json", "text") and llm["elapsed_s"] > 0


def test_lgr_evaluate_limit_then_all_cache_hits(
    real_data: Settings, llm_server_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = (
        "lgr", "evaluate", "--regime", "unseen-cell-line", "--methods", "llm", "--limit", "5", "--k", str(K),
        "--n-boot", "20", "--concurrency", "1", "--answer-format", "json", "--json", "--quiet",
    )  # fmt: skip
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    assert "estimate for llm: 5 LLM calls (0 of 5 prompts cached)" in err
    doc = json.loads(out)
    st = doc["llm_stats"]["llm"]
    assert doc["methods"]["llm"]["n_queries"] == 5 and "seeded subset" in doc["subset"]
    assert st["n_queries"] == 5 and st["cache_hits"] == 0 and st["wall_time_s"] > 0
    answered = round(st["answered_rate"] * 5)
    assert st["answer_format_used"]["json"] + st["answer_format_used"]["text"] == answered
    assert 0.0 <= (st["out_of_pool_rate"] or 0.0) <= 1.0 and st["prompt_tokens"] > 0
    assert doc["fallbacks"]["llm"] <= 5 and doc["elapsed_s"]["llm"] > 0
    code, out, err = run(capsys, *argv)
    again = json.loads(out)["llm_stats"]["llm"]
    assert code == 0 and f"({answered} of 5 prompts cached)" in err
    assert again["cache_hits"] == answered and again["answer_format_used"] == st["answer_format_used"]
    assert again["wall_time_s"] < st["wall_time_s"]
