"""Tests of ``llm serve`` / ``llm models`` and of the LLM flags of ``lgr``/``core`` (fake server; issue 12)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from perturb_core.cli import main
from perturb_core.config import Settings
from perturb_core.testing.fake_openai import (
    FAKE_MODEL,
    FakeOpenAI,
    json_requested,
    lgr_candidates,
    lgr_final_answer,
    lgr_json_answer,
)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def _point_at(server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("PERTURB_CORE_LLM_MODEL", FAKE_MODEL)


def test_serve_without_the_extra_names_the_pip_command(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import perturb_core.llm._serve as serve

    monkeypatch.setattr(serve, "llama_cpp_available", lambda: False)
    code, _, err = run(capsys, "llm", "serve")
    assert code == 2 and "pip install -r requirements-llm.txt" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model", "/no/such/model.gguf"], "model file '/no/such/model.gguf' does not exist"),
        (["--port", "0"], "port must be an integer in 1..65535"),
    ],
)
def test_serve_bad_arguments(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, argv: list[str], message: str
) -> None:
    import perturb_core.llm._serve as serve

    monkeypatch.setattr(serve, "llama_cpp_available", lambda: True)
    code, _, err = run(capsys, "llm", "serve", *argv)
    assert code == 2 and message in err and "Traceback" not in err


def test_models_lists_served_models_and_family(
    capsys: pytest.CaptureFixture[str], fake_openai_server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_openai_server.model_ids = (FAKE_MODEL, "other")
    fake_openai_server.owned_by = "vllm"
    _point_at(fake_openai_server, monkeypatch)
    code, out, _ = run(capsys, "llm", "models", "--json")
    doc = json.loads(out)
    assert code == 0 and [m["id"] for m in doc["models"]] == [FAKE_MODEL, "other"]
    assert doc["configured_model_served"] and doc["server_family"] == "vllm"
    monkeypatch.setenv("PERTURB_CORE_LLM_MODEL", "missing")
    code, out, _ = run(capsys, "llm", "models")
    assert code == 0 and "'missing' is not among them" in out


def test_models_on_a_closed_port_says_how_to_fix(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeOpenAI() as server:
        url = server.base_url
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    code, _, err = run(capsys, "llm", "models")
    assert code == 2 and "connection refused" in err and "llm serve" in err


def test_bad_answer_format_env_is_a_config_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("PERTURB_CORE_LLM_ANSWER_FORMAT", "yaml")
    code, _, err = run(capsys, "llm", "models")
    assert code == 2 and "answer_format = 'yaml'" in err and "valid: text, json, auto" in err


def _lgr_answer(request: dict[str, Any]) -> str:
    names, k, _ = lgr_candidates(request)
    return lgr_json_answer(names[:k]) if json_requested(request) else lgr_final_answer(names[:k])


@pytest.mark.realdata
@pytest.mark.parametrize("answer_format", ["text", "json"])
def test_lgr_evaluate_limit_estimate_and_llm_stats(
    real_data: Settings,
    capsys: pytest.CaptureFixture[str],
    fake_openai_server: FakeOpenAI,
    monkeypatch: pytest.MonkeyPatch,
    answer_format: str,
) -> None:
    fake_openai_server.responder = _lgr_answer
    _point_at(fake_openai_server, monkeypatch)
    argv = (
        "lgr", "evaluate", "--regime", "unseen-cell-line", "--methods", "llm,random", "--limit", "4",
        "--k", "3", "--n-boot", "10", "--answer-format", answer_format, "--json", "--quiet",
    )  # fmt: skip
    code, out, err = run(capsys, *argv)
    doc = json.loads(out)
    assert code == 0 and "estimate for llm: 4 LLM calls (0 of 4 prompts cached)" in err
    assert "prompt tokens (approximate: characters / 4" in err
    assert {"pearson", "n_queries", "mean_k_used"} <= set(doc["methods"]["llm"])  # contract keys kept
    st = doc["llm_stats"]["llm"]
    assert set(doc["llm_stats"]) == {"llm"} and "seeded subset" in doc["subset"]
    assert st["answered_rate"] == 1.0 and st["parse_failure_rate"] == 0.0 and st["out_of_pool_rate"] == 0.0
    assert st["mean_k_used"] == 3.0 and st["answer_format_used"][answer_format] == 4
    assert st["cache_hits"] == 0 and st["prompt_tokens"] > 0 and st["wall_time_s"] >= 0
    code, out, err = run(capsys, *argv)
    assert "(4 of 4 prompts cached)" in err and json.loads(out)["llm_stats"]["llm"]["cache_hits"] == 4
    assert fake_openai_server.n_requests == 4
    code, out, _ = run(capsys, *argv[:-2], "--quiet")
    assert "llm calls of llm: answered 100% of 4" in out and "note: the queries are a seeded subset" in out


@pytest.mark.realdata
def test_lgr_evaluate_out_of_pool_rate(
    real_data: Settings,
    capsys: pytest.CaptureFixture[str],
    fake_openai_server: FakeOpenAI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_openai_server.responder = lambda r: lgr_final_answer(
        [lgr_candidates(r)[0][0], "Aspirin", "Unobtainium"]
    )
    _point_at(fake_openai_server, monkeypatch)
    code, out, _ = run(
        capsys, "lgr", "evaluate", "--regime", "open-world", "--methods", "llm", "--limit", "3", "--k", "3",
        "--n-boot", "10", "--json", "--quiet",
    )  # fmt: skip
    st = json.loads(out)["llm_stats"]["llm"]
    assert code == 0 and st["out_of_pool_rate"] == pytest.approx(2 / 3, abs=1e-3) and st["mean_k_used"] == 1.0


@pytest.mark.realdata
def test_core_evaluate_limit_and_explain_core_reasoning(
    real_data: Settings,
    capsys: pytest.CaptureFixture[str],
    fake_openai_server: FakeOpenAI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_openai_server.responder = lambda r: (
        '{"probability": 0.25, "justification": "few related perturbations moved it."}'
        if json_requested(r)
        else "Probability: 0.25\nRationale: few."
    )
    _point_at(fake_openai_server, monkeypatch)
    code, out, err = run(
        capsys, "core", "evaluate", "--dataset", "tahoe-c32", "--methods", "core_reasoning,gene_frequency",
        "--limit", "5", "--answer-format", "json", "--n-boot", "10", "--json", "--quiet",
    )  # fmt: skip
    doc = json.loads(out)
    assert code == 0 and "estimate for core_reasoning: 5 LLM calls" in err
    assert doc["methods"]["core_reasoning"]["n_pairs"] == 5 and "seeded subset" in doc["subset"]
    st = doc["llm_stats"]["core_reasoning"]
    assert (
        st["answered_rate"] == 1.0
        and st["parse_failure_rate"] == 0.0
        and st["answer_format_used"]["json"] == 5
    )
    assert st["out_of_pool_rate"] is None and st["mean_k_used"] is None
    code, out, _ = run(
        capsys, "core", "explain", "--dataset", "perturbqa-k562", "--perturbation", "aars2", "--gene", "MT-ND5",
        "--method", "core_reasoning", "--answer-format", "json", "--json",
    )  # fmt: skip
    doc = json.loads(out)
    assert code == 0 and doc["score"] == 0.25 and doc["llm"]["fallback"] is False
    assert doc["llm"]["answer_format_used"] == "json" and "voting_score" in doc
    fake_openai_server.responder = lambda r: "no idea"
    code, out, _ = run(
        capsys, "core", "explain", "--dataset", "perturbqa-k562", "--perturbation", "aars2", "--gene", "MT-ND5",
        "--method", "core_reasoning", "--answer-format", "text",
    )  # fmt: skip
    assert code == 0 and "FALLBACK to CORE-Voting (not an LLM answer)" in out
