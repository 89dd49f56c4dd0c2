"""Selectors: the registry (one spec per selector, derived label views) and each selector's ranking, on tiny data."""

from __future__ import annotations

from types import MappingProxyType
from typing import get_args

import numpy as np
import pytest

from perturb_core.data.registry import SignatureDataset
from perturb_core.errors import UnknownNameError
from perturb_core.retrieval import (
    SELECTOR_DEFINITIONS,
    SELECTOR_LABELS,
    SELECTORS,
    LGRIndex,
    SelectOptions,
    SelectorName,
    check_selector,
    make_split,
    select_neighbours,
    split_data,
)
from perturb_core.spec import MethodSpec


def test_registry_labels() -> None:
    assert (
        set(SELECTORS)
        == set(SELECTOR_LABELS)
        == {
            "llm",
            "kg_mechanism",
            "chem_knn_retrieval",
            "transcriptome_knn",
            "random",
            "oracle",
            "residual_oracle",
        }
    )
    assert SELECTOR_LABELS["kg_mechanism"].endswith("(rule-based, no LLM)")
    assert "ceiling" in SELECTOR_LABELS["oracle"] and "floor" in SELECTOR_LABELS["random"]


def test_hybrid_fallbacks_are_recorded(tiny: SignatureDataset, index: LGRIndex) -> None:
    idx = index
    sd = split_data(idx, make_split(tiny, "unseen-drug", seed=0, test_fraction=0.2))
    c, d = np.nonzero(sd.split.test)
    sel = select_neighbours(sd, c, d, "transcriptome_knn", SelectOptions(k=2))
    assert (sel.k_used == 0).all()  # held-out drugs have no training response elsewhere
    assert all(f and "no training response" in f for f in sel.fallback)
    # the unknown drug has no structure: chemistry cannot rank it -> whole-pool mean
    myst = idx.drug_index("Mysterium")
    sd2 = split_data(idx, make_split(tiny, "open-world"))
    sel = select_neighbours(sd2, np.array([0]), np.array([myst]), "chem_knn", SelectOptions(k=2))
    assert sel.n_used[0] == 4 and "whole pool" in sel.fallback[0]
    # k larger than the pool: every pool drug, no fallback
    sel = select_neighbours(sd2, np.array([0]), np.array([0]), "random", SelectOptions(k=50))
    assert sel.k_used[0] == sel.n_used[0] == 4 and sel.fallback == (None,)


def test_selectors_are_one_spec_each_and_the_label_maps_are_read_only_views() -> None:
    assert tuple(SELECTORS) == get_args(SelectorName)
    for name, spec in SELECTORS.items():
        assert isinstance(spec, MethodSpec) and spec.name == name and callable(spec.fn)
        assert SELECTOR_LABELS[name] == spec.label and SELECTOR_DEFINITIONS[name] == spec.definition
        assert spec.needs_llm == (name == "llm")
    for view in (SELECTORS, SELECTOR_LABELS, SELECTOR_DEFINITIONS):
        assert isinstance(view, MappingProxyType)
        with pytest.raises(TypeError):
            view["mine"] = "x"  # type: ignore[index]
    assert "Tanimoto breaks ties" in SELECTOR_DEFINITIONS["kg_mechanism"]


def test_check_selector_wording_and_spellings() -> None:
    assert check_selector("KG-Mechanism") == "kg_mechanism"
    with pytest.raises(
        UnknownNameError,
        match="^unknown selector 'psychic'; valid: llm, kg_mechanism, chem_knn_retrieval, transcriptome_knn, random, oracle, residual_oracle$",
    ):
        check_selector("psychic")


def test_kg_mechanism_ranks_shared_targets_then_graph_proximity(
    tiny: SignatureDataset, index: LGRIndex
) -> None:
    sd = split_data(index, make_split(tiny, "open-world"))
    tram, bini, afat = (index.drug_index(n) for n in ("Trametinib", "Binimetinib", "Afatinib"))
    sel = select_neighbours(sd, np.array([0]), np.array([tram]), "kg_mechanism", SelectOptions(k=2))
    assert list(sel.order[0][:2]) == [bini, afat] and sel.fallback == (None,)
    kg = index.kg
    assert kg.same_mechanism[tram, bini] and kg.overlap[tram, bini] == pytest.approx(1.0)
    assert "CYP3A4" not in kg.target_genes  # ADME genes are not mechanism targets
    assert kg.proximity[tram, afat] > 0 and kg.overlap[tram, afat] == 0  # a shared pathway
    assert not kg.available[index.drug_index("Mysterium")]


def test_chem_knn_ranks_by_tanimoto_and_random_is_seeded(tiny: SignatureDataset, index: LGRIndex) -> None:
    sd = split_data(index, make_split(tiny, "open-world"))
    afat = index.drug_index("Afatinib")
    sel = select_neighbours(sd, np.array([1]), np.array([afat]), "chem_knn", SelectOptions(k=4))
    used = sel.order[0][sel.order[0] >= 0]
    sims = index.tanimoto[afat, used]
    assert list(sims) == sorted(sims, reverse=True) and index.drug_index("Mysterium") not in used
    assert sel.k_used[0] == 3 and "padded" not in (sel.fallback[0] or "")
    a = select_neighbours(sd, np.array([1]), np.array([afat]), "random", SelectOptions(k=2, seed=5))
    b = select_neighbours(sd, np.array([1]), np.array([afat]), "random", SelectOptions(k=2, seed=5))
    assert (a.order == b.order).all() and afat not in a.order[0]
