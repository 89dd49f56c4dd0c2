"""evaluate_core: the method registry, the contract dict, pair sampling, LLM methods, real data."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from perturb_core.config import Settings, get_settings
from perturb_core.data.registry import load_labels
from perturb_core.errors import LLMError, UnknownNameError, ValidationError
from perturb_core.evaluate.core import (
    CONTRACT_KEYS,
    CORE_METHODS,
    CORE_NON_LLM_METHODS,
    evaluate_core,
    resolve_method,
    sample_pairs,
)
from perturb_core.evidence import core_index
from perturb_core.kg import load_graph
from perturb_core.llm import LLM
from perturb_core.spec import MethodSpec
from perturb_core.testing.fake_openai import FakeOpenAI, last_user_message
from perturb_core.testing.graphs import F_G1, F_G2, F_G3, TINY_ROWS, fixed, tiny_graph, tiny_labels

# a tiny set with two test perturbations, so per-gene AUROC is defined for G1 and G2
ROWS = [*TINY_ROWS, ("F", "G2", 1, "test"), ("E", "G3", 1, "test")]
ROWS = [r for r in ROWS if (r[0], r[1]) != ("F", "G1")] + [("F", "G1", 0, "test")]


@pytest.fixture
def tiny() -> tuple[Any, Any]:
    labels, graph = tiny_labels(ROWS), tiny_graph()
    core_index(labels, graph)  # warm the default index (fitted by CV on the tiny train split)
    return labels, graph


def test_registry() -> None:
    assert {"gene_frequency", "core_voting", "core_reasoning", "isolated_llm", "random"} <= set(CORE_METHODS)
    assert CORE_METHODS["core_reasoning"].needs_llm and CORE_METHODS["isolated_llm"].needs_llm
    assert "core_reasoning" not in CORE_NON_LLM_METHODS
    assert resolve_method("Core-Voting") == "core_voting"
    with pytest.raises(UnknownNameError, match="valid: gene_frequency, core_voting,"):
        resolve_method("core_votin")


def test_registry_is_one_spec_shape() -> None:
    assert all(isinstance(s, MethodSpec) and s.name == n for n, s in CORE_METHODS.items())
    assert all(s.label and s.definition and callable(s.fn) for s in CORE_METHODS.values())
    assert tuple(n for n, s in CORE_METHODS.items() if not s.needs_llm) == CORE_NON_LLM_METHODS
    assert {n for n, s in CORE_METHODS.items() if s.needs_llm} == {"core_reasoning", "isolated_llm"}
    with pytest.raises(TypeError):
        CORE_METHODS["x"] = CORE_METHODS["random"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("name", "canonical"),
    [("core_voting", "core_voting"), ("CORE VOTING", "core_voting"), ("gene-frequency", "gene_frequency")],
)
def test_resolve_method_is_insensitive(name: str, canonical: str) -> None:
    assert resolve_method(name) == canonical


@pytest.mark.parametrize("name", ["core_votin", "", "voting"])
def test_unknown_method_wording_comes_from_check_choice(name: str) -> None:
    valid = ", ".join(CORE_METHODS)
    with pytest.raises(UnknownNameError) as info:
        resolve_method(name)
    assert str(info.value) == f"unknown CORE method {name!r}; valid: {valid}"


def test_contract_and_known_values(tiny: tuple[Any, Any]) -> None:
    labels, graph = tiny
    res = evaluate_core(labels, graph, methods="gene_frequency,random,core_voting", n_boot=20)
    d = res.to_dict()
    assert set(d) >= {"dataset", "task", "methods"}
    assert (d["dataset"], d["task"]) == ("tiny", "de")
    for m in ("gene_frequency", "random", "core_voting"):
        assert set(CONTRACT_KEYS) <= set(d["methods"][m])
        assert d["methods"][m]["n_pairs"] == 6
    gf = d["methods"]["gene_frequency"]
    # training rates: G1 2/4 (B+, C-, D+, E-), G2 1/3 (B-, D+, E-), G3 none -> global 3/7
    assert gf["macro_gene_auroc"] == pytest.approx(0.5)
    assert gf["n_genes_macro"] == 3  # G1 (A+, F-), G2 (A-, F+), G3 (A-, E+)
    assert gf["true_positive_rate"] == pytest.approx(3 / 6)
    assert gf["predicted_positive_rate"] == pytest.approx(2 / 6)  # G1 pairs score 0.5 >= 0.5
    pp = res.per_pair[res.per_pair["method"] == "gene_frequency"].set_index(["pert", "gene"])
    assert pp.at[("A", "G1"), "score"] == pytest.approx(2 / 4)
    assert pp.at[("A", "G2"), "score"] == pytest.approx(1 / 3)
    assert pp.at[("E", "G3"), "score"] == pytest.approx(3 / 7)
    assert set(res.per_gene.columns) == {"method", "gene", "auroc", "n"}
    assert set(res.reliability.columns) == {"method", "bin", "p_mean", "y_rate", "count"}
    assert set(res.summary["method"]) == set(res.methods)
    assert res.models["core_voting"]["dataset"] == "tiny"


def test_per_gene_auroc_exact_with_fixed_weights() -> None:
    """Hand-checked: with interacts + pathway weights, A ranks above F for G1 (A has evidence)."""
    labels, graph = tiny_labels(), tiny_graph()
    index = core_index(labels, graph, options=fixed())
    s = index.test_scores().set_index("gene")["score"]
    assert s["G1"] == pytest.approx((4 + F_G1) / 6)
    assert s["G2"] == pytest.approx((3 + F_G2) / 5)
    assert s["G3"] == pytest.approx(F_G3)


def test_sample_pairs_keeps_whole_genes() -> None:
    rng = np.random.default_rng(0)
    test = pd.DataFrame({"gene": rng.choice([f"g{i}" for i in range(50)], 400), "x": np.arange(400)})
    a = sample_pairs(test, 100, seed=3)
    b = sample_pairs(test, 100, seed=3)
    assert a.equals(b) and 0 < len(a) <= 100
    sizes = test["gene"].value_counts()
    assert (a["gene"].value_counts() == sizes[a["gene"].value_counts().index]).all()
    assert sample_pairs(test, None) is test and sample_pairs(test, 10_000) is test
    with pytest.raises(ValidationError, match="max_pairs"):
        sample_pairs(test, 0)


def test_bad_methods(tiny: tuple[Any, Any]) -> None:
    labels, graph = tiny
    with pytest.raises(UnknownNameError, match="gene_frequency"):
        evaluate_core(labels, graph, methods=["gene_freq"])
    with pytest.raises(ValidationError, match="no method"):
        evaluate_core(labels, graph, methods="")


def test_llm_method_without_endpoint(tiny: tuple[Any, Any]) -> None:
    labels, graph = tiny
    with pytest.raises(LLMError, match="OPENAI_BASE_URL"):
        evaluate_core(labels, graph, methods="core_reasoning", settings=get_settings())


def test_llm_methods_through_the_fake_server(
    tiny: tuple[Any, Any], fake_openai_server: FakeOpenAI, fake_llm_settings: Settings
) -> None:
    labels, graph = tiny

    def respond(request: dict[str, Any]) -> str:
        text = last_user_message(request)
        return "no idea" if "G3" in text.splitlines()[0] else "Probability: 0.6\nRationale: related."

    fake_openai_server.responder = respond
    llm = LLM.from_settings(fake_llm_settings, backoff_s=0.01)
    steps: list[tuple[int, int]] = []
    res = evaluate_core(
        labels,
        graph,
        methods=["core_reasoning", "isolated_llm", "gene_frequency"],
        llm=llm,
        n_boot=10,
        progress=lambda d, n: steps.append((d, n)),
    )
    d = res.to_dict()
    assert d["llm_calls"]["core_reasoning"]["n_fallback"] == 2  # the two G3 pairs
    assert d["llm_calls"]["isolated_llm"]["n_failed"] == 2
    assert steps[-1] == (13, 13)  # 6 + 6 pairs + 1 method
    pp = res.per_pair[res.per_pair["method"] == "core_reasoning"]
    assert {"fallback", "error", "rationale", "raw"} <= set(pp.columns)
    assert fake_openai_server.n_requests == 12


def test_llm_pair_limit(tiny: tuple[Any, Any], fake_llm_settings: Settings) -> None:
    import perturb_core.evaluate.core as ec

    labels, graph = tiny
    old = ec.LLM_PAIR_LIMIT
    ec.LLM_PAIR_LIMIT = 3
    try:
        with pytest.raises(ValidationError, match="--max-pairs"):
            evaluate_core(labels, graph, methods="core_reasoning", llm=LLM.from_settings(fake_llm_settings))
    finally:
        ec.LLM_PAIR_LIMIT = old


@pytest.mark.realdata
def test_real_tahoe_c32(real_data: Settings) -> None:
    labels = load_labels("tahoe-c32", "de", real_data)
    graph = load_graph(real_data)
    res = evaluate_core(labels, graph, methods=["gene_frequency", "core_voting", "random"], n_boot=50)
    doc = res.to_dict()
    d = doc["methods"]
    assert d["gene_frequency"]["macro_gene_auroc"] == pytest.approx(0.5, abs=1e-9)
    assert d["core_voting"]["macro_gene_auroc"] > 0.5
    assert d["core_voting"]["auroc"] >= d["gene_frequency"]["auroc"] - 0.01
    lo, hi = doc["ci"]["core_voting"]["macro_gene_auroc"]
    assert lo <= d["core_voting"]["macro_gene_auroc"] <= hi
    assert d["core_voting"]["n_pairs"] == int((labels.table["split"] == "test").sum())


def test_n_boot_is_checked_before_any_work(real_data) -> None:
    from perturb_core.kg import load_graph

    with pytest.raises(ValidationError, match=r"n_boot must be an integer in 1\.\.100000"):
        evaluate_core(
            load_labels("tahoe-c32", "de", real_data), load_graph(real_data), methods=["random"], n_boot=0
        )
