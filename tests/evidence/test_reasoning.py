"""CORE-Reasoning and the isolated LLM baseline against the fake OpenAI-compatible server."""

from __future__ import annotations

import re
import time
from typing import Any

import numpy as np
import pandas as pd
import pytest

from perturb_core.config import Settings, get_settings
from perturb_core.errors import LLMError, UnknownNameError, ValidationError
from perturb_core.evidence import (
    REASONING_COLUMNS,
    core_index,
    core_reasoning,
    explain,
    gene_frequency,
    isolated_llm,
    parse_answer,
    parse_probability,
    render_core_prompt,
    render_isolated_prompt,
)
from perturb_core.llm import LLM
from perturb_core.testing.fake_openai import FakeOpenAI, error_body, last_user_message
from perturb_core.testing.graphs import fixed, tiny_graph, tiny_labels

PAIRS = pd.DataFrame({"pert": ["A", "A", "A"], "gene": ["G1", "G2", "G3"]})


@pytest.fixture
def tiny() -> tuple[Any, Any, Any]:
    labels, graph = tiny_labels(), tiny_graph()
    return labels, graph, core_index(labels, graph, options=fixed())


def counting_responder(request: dict[str, Any]) -> str:
    """Answer from the prompt: the fraction of listed evidence items that is positive."""
    text = last_user_message(request)
    pos_block = text.split("Positive evidence")[1].split("Negative evidence")[0]
    neg_block = text.split("Negative evidence")[1].split("Contrast the two sides")[0]
    n_pos = len(re.findall(r"^\d+\. ", pos_block, re.MULTILINE))
    n_neg = len(re.findall(r"^\d+\. ", neg_block, re.MULTILINE))
    p = (n_pos + 1) / (n_pos + n_neg + 2)
    return f"Probability: {p:.4f}\nRationale: {n_pos} positive vs {n_neg} negative related perturbations."


def by_gene(replies: dict[str, Any]) -> Any:
    """A responder choosing its reply by the gene named in the question."""

    def respond(request: dict[str, Any]) -> Any:
        question = last_user_message(request).splitlines()[0]
        for gene, reply in replies.items():
            if re.search(rf"\b{gene}\b", question):
                return reply() if callable(reply) else reply
        return "Probability: 0.5"

    return respond


def make_llm(settings: Settings) -> LLM:
    return LLM.from_settings(settings, backoff_s=0.01, sleep=lambda s: None)


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("text", "prob", "error"),
    [
        ("Probability: 0.7\nRationale: shared complex", 0.7, None),
        ("**Probability:** 0.15", 0.15, None),
        ("probability = 70%", 0.7, None),
        ("The probability that G1 responds is about 0.35.", 0.35, None),
        ('{"probability": 0.25, "rationale": "few positives"}', 0.25, None),
        ('Sure: {"probability": "40%", "rationale": "x"}', 0.4, None),
        ("0.4", 0.4, None),
        ("I would say 30% likely.", 0.3, None),
        ("Probability: 1.7", None, "outside"),
        ("Probability: -0.2", None, "outside"),
        ("Probability: 85", None, "outside"),
        ('{"probability": 3}', None, "outside"),
        ("Probability: high", None, "no probability"),
        ("I cannot provide medical predictions.", None, "declined"),
        ("", None, "empty"),
        (None, None, "empty"),
        ("somewhere between 20% and 40%", None, "ambiguous"),
    ],
)
def test_parse_answer(text: str | None, prob: float | None, error: str | None) -> None:
    parsed = parse_answer(text)
    if prob is None:
        assert parsed.probability is None
        assert error is not None and error in (parsed.error or "")
    else:
        assert parsed.probability == pytest.approx(prob)
        assert parsed.error is None
    assert parse_probability(text) == parsed.probability


def test_parse_rationale() -> None:
    assert parse_answer("Probability: 0.6\nRationale: D interacts with A.").rationale == "D interacts with A."
    assert parse_answer('{"probability": 0.1, "rationale": "none"}').rationale == "none"


# --------------------------------------------------------------------------- prompts


def test_core_prompt_lists_both_sides(tiny: tuple[Any, Any, Any]) -> None:
    labels, graph, index = tiny
    ex = explain(labels, graph, perturbation="A", gene="G1", index=index)
    system, user = render_core_prompt(ex)
    assert system["role"] == "system" and user["role"] == "user"
    text = user["content"]
    assert "A is knocked down" in text and "TINY cells" in text
    pos, neg = text.split("Negative evidence")
    assert "1. D (protein interaction: A -> D" in pos and "2. B (shared pathway: A -> Pathway one -> B" in pos
    assert "1. C (shared pathway" in neg
    assert "Probability: <a number between 0 and 1>" in text
    assert "3 of the 5" in text  # the gene's training base rate
    assert "label" not in text.lower()  # never the pair's own (test) label


def test_core_prompt_direction_task() -> None:
    labels = tiny_labels(task="dir")
    graph = tiny_graph()
    ex = explain(labels, graph, perturbation="A", gene="G1", index=core_index(labels, graph, options=fixed()))
    text = render_core_prompt(ex)[1]["content"]
    assert "go UP" in text and "went up" in text and "went down" in text


def test_isolated_prompt_has_no_evidence(tiny: tuple[Any, Any, Any]) -> None:
    _, _, index = tiny
    ctx = {"task": "de", "kind": "knockdown", "cell_line": "TINY", **index.context("A", "G1")}
    text = render_isolated_prompt("A", "G1", ctx)[1]["content"]
    assert "A is knocked down" in text and "Pathway one" in text
    for other in ("B", "C", "D"):
        assert not re.search(rf"\b{other}\b", text)
    assert "evidence" not in text.lower() and "Base rate" not in text
    with pytest.raises(ValidationError, match="task"):
        render_isolated_prompt("A", "G1", {"task": "up"})
    with pytest.raises(ValidationError, match="kind"):
        render_isolated_prompt("A", "G1", {"kind": "virus"})


# --------------------------------------------------------------------------- batch scoring


def test_core_reasoning_good_answers_and_cache(
    tiny: tuple[Any, Any, Any], fake_openai_server: FakeOpenAI, fake_llm_settings: Settings
) -> None:
    labels, graph, index = tiny
    fake_openai_server.responder = counting_responder
    llm = make_llm(fake_llm_settings)
    seen: list[tuple[int, int]] = []
    out = core_reasoning(
        labels, graph, PAIRS, llm=llm, index=index, progress=lambda d, n: seen.append((d, n))
    )
    assert list(out.columns) == list(REASONING_COLUMNS)
    # G1: 2 positive (D, B) and 1 negative (C); G2: D +, B -; G3: none
    np.testing.assert_allclose(out["score"], [3 / 5, 2 / 4, 1 / 2], atol=1e-4)
    assert not out["fallback"].any() and out["error"].isna().all()
    assert out["rationale"].iloc[0].startswith("2 positive")
    assert fake_openai_server.n_requests == 3 and seen[-1] == (3, 3)
    again = core_reasoning(labels, graph, PAIRS, llm=llm, index=index)
    assert fake_openai_server.n_requests == 3 and again["cache_hit"].all()
    np.testing.assert_allclose(again["score"], out["score"])


def test_core_reasoning_nonsense_falls_back_to_the_vote(
    tiny: tuple[Any, Any, Any], fake_openai_server: FakeOpenAI, fake_llm_settings: Settings
) -> None:
    labels, graph, index = tiny
    fake_openai_server.responder = by_gene(
        {"G1": "Probability: 7", "G2": "I cannot help with predictions like this.", "G3": None}
    )
    out = core_reasoning(labels, graph, PAIRS, llm=make_llm(fake_llm_settings), index=index)
    vote = index.score(np.array([0, 0, 0]), np.array([0, 1, 2]))["score"].to_numpy()
    assert out["fallback"].all()
    np.testing.assert_allclose(out["score"], vote)
    np.testing.assert_allclose(out["fallback_score"], vote)
    assert out["probability"].isna().all()
    assert "outside [0, 1]" in out["error"].iloc[0]
    assert "declined" in out["error"].iloc[1]
    assert out["error"].iloc[2].startswith("LLM call failed") and "empty answer" in out["error"].iloc[2]
    assert out["raw"].iloc[0] == "Probability: 7"  # the model's answer is kept for inspection


def test_core_reasoning_http_errors_and_timeouts(
    tiny: tuple[Any, Any, Any], fake_openai_server: FakeOpenAI, fake_llm_settings: Settings
) -> None:
    labels, graph, index = tiny

    def slow() -> str:
        time.sleep(1.0)
        return "Probability: 0.9"

    fake_openai_server.responder = by_gene(
        {"G1": (500, error_body("boom")), "G2": slow, "G3": "Probability: 0.2"}
    )
    settings = fake_llm_settings.with_(llm_timeout=0.3, llm_max_retries=1)
    out = core_reasoning(labels, graph, PAIRS, llm=make_llm(settings), index=index)
    assert out["fallback"].tolist() == [True, True, False]
    assert "HTTP 500" in out["error"].iloc[0]
    assert "timed out" in out["error"].iloc[1]
    assert out["score"].iloc[2] == pytest.approx(0.2)


def test_isolated_llm_sends_no_evidence_and_falls_back_to_gene_frequency(
    tiny: tuple[Any, Any, Any], fake_openai_server: FakeOpenAI, fake_llm_settings: Settings
) -> None:
    labels, graph, index = tiny
    fake_openai_server.responder = by_gene({"G1": "Probability: 0.35", "G2": "no idea"})
    out = isolated_llm(labels, graph, PAIRS, llm=make_llm(fake_llm_settings), index=index)
    assert out["score"].iloc[0] == pytest.approx(0.35)
    assert out["fallback"].tolist() == [False, True, False]
    assert out["score"].iloc[1] == pytest.approx(gene_frequency(labels)["G2"])
    for req in fake_openai_server.requests:
        assert "evidence" not in last_user_message(req).lower()


def test_unknown_pair_names(tiny: tuple[Any, Any, Any], fake_llm_settings: Settings) -> None:
    labels, graph, _ = tiny
    with pytest.raises(UnknownNameError, match="closest known: G1"):
        core_reasoning(
            labels, graph, pd.DataFrame({"pert": ["A"], "gene": ["G11"]}), llm=make_llm(fake_llm_settings)
        )


def test_llm_not_configured_says_how_to_fix() -> None:
    settings = get_settings()
    assert not settings.llm_configured
    with pytest.raises(LLMError, match="OPENAI_BASE_URL"):
        LLM.from_settings(settings)


@pytest.mark.parametrize(
    ("text", "probability", "error"),
    [
        (
            "Probability: 0.99\nOn reflection, Probability: 0.01",
            None,
            r"2 different probabilities \(0.01, 0.99\)",
        ),
        ('{"probability": 0.9, "probability": 0.2}', None, "2 different probabilities"),
        ('{"probability": 0.3} and later {"probability": 0.7}', None, "2 different probabilities"),
        ("I say 30% but maybe 70%", None, "2 different percentages"),
        ("Probability: 0.4. Final answer - probability: 40%", 0.4, None),  # the same value twice is fine
        ('{"probability": 0.25, "probability": "25%"}', 0.25, None),
    ],
)
def test_conflicting_probabilities_follow_one_rule(
    text: str, probability: float | None, error: str | None
) -> None:
    parsed = parse_answer(text)
    assert parsed.probability == (pytest.approx(probability) if probability is not None else None)
    if error is None:
        assert parsed.error is None
    else:
        assert re.search(error, parsed.error or "")
