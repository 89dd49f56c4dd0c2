"""Fixtures of the LGR tests: the tiny signature dataset and its index (tiny drug table and graph, no real data)."""

from __future__ import annotations

import pytest

from perturb_core.data.registry import SignatureDataset
from perturb_core.retrieval import LGRIndex, lgr_index
from perturb_core.testing.signatures import tiny_dataset, tiny_drugs, tiny_graph


@pytest.fixture(scope="module")
def tiny() -> SignatureDataset:
    """The tiny signature dataset (a fresh object per test module)."""
    return tiny_dataset()


@pytest.fixture(scope="module")
def index(tiny: SignatureDataset) -> LGRIndex:
    """Its LGR index over the tiny drug table and graph."""
    return lgr_index(tiny, drugs=tiny_drugs(), graph=tiny_graph())
