"""Two LGR predictions side by side (perturb_core.compare): tiny data built in code, then Tahoe."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from perturb_core.compare import Comparison, compare_predictions, infer_mode
from perturb_core.data.registry import SignatureDataset
from perturb_core.errors import UnknownNameError, ValidationError
from perturb_core.retrieval import predict_query
from perturb_core.serialize import dumps
from perturb_core.testing.signatures import tiny_dataset, tiny_drugs, tiny_graph


@pytest.fixture(scope="module")
def tiny() -> SignatureDataset:
    return tiny_dataset()


@pytest.fixture(scope="module")
def kit() -> dict[str, Any]:
    return {"drugs": tiny_drugs(), "graph": tiny_graph()}


def test_infer_mode() -> None:
    q = {"cell_line": "C1", "drug": "Trametinib", "selector": "chem_knn_retrieval"}
    assert infer_mode(q, {**q, "selector": "random"}) == "selectors"
    assert infer_mode(q, {**q, "drug": "Binimetinib"}) == "drugs"
    assert infer_mode(q, {**q, "cell_line": "C2"}) == "cell_lines"
    with pytest.raises(ValidationError, match="same query"):
        infer_mode(q, dict(q))
    with pytest.raises(ValidationError, match="differ in selector and drug"):
        infer_mode(q, {**q, "selector": "random", "drug": "Afatinib"})


def test_two_drugs_in_one_line_by_hand(tiny: SignatureDataset, kit: dict[str, Any]) -> None:
    cmp = compare_predictions(
        tiny,
        cell_line="c1",
        drug="trametinib",
        selector="chem_knn_retrieval",
        drug_b="Binimetinib",
        k=2,
        **kit,
    )
    assert cmp.mode == "drugs" and cmp.label == "two drugs in one cell line"
    a = predict_query(tiny, cell_line="C1", drug="Trametinib", selector="chem_knn_retrieval", k=2, **kit)
    b = predict_query(tiny, cell_line="C1", drug="Binimetinib", selector="chem_knn_retrieval", k=2, **kit)
    names_a, names_b = [n.name for n in a.neighbours], [n.name for n in b.neighbours]
    assert [n.name for n in cmp.left.neighbours] == names_a
    nb = cmp.neighbours()
    assert [s["name"] for s in nb["shared"]] == sorted(
        set(names_a) & set(names_b), key=lambda n: (names_a.index(n) + names_b.index(n), names_a.index(n))
    )
    assert nb["only_left"] == [n for n in names_a if n not in names_b]
    assert nb["only_right"] == [n for n in names_b if n not in names_a]
    union = set(names_a) | set(names_b)
    assert nb["jaccard"] == pytest.approx(len(set(names_a) & set(names_b)) / len(union))
    metrics = cmp.metrics()
    for m in ("pearson", "mse"):
        assert metrics[m]["left"] == a.metrics[m] and metrics[m]["right"] == b.metrics[m]
        assert metrics[m]["difference"] == pytest.approx(b.metrics[m] - a.metrics[m])
    r_diff = b.metrics["pearson"] - a.metrics["pearson"]
    assert metrics["pearson"]["better"] == ("right" if r_diff > 0 else "left")
    mse_diff = b.metrics["mse"] - a.metrics["mse"]
    assert metrics["mse"]["better"] == ("right" if mse_diff < 0 else "left")  # lower is better
    # observed responses of the two drugs in C1 (genes where both are finite), by hand
    x, y = a.truth, b.truth
    ok = np.isfinite(x) & np.isfinite(y)
    assert cmp.similarity()["observed_pearson"] == pytest.approx(np.corrcoef(x[ok], y[ok])[0, 1])
    # same targets? Trametinib (MAP2K1/2, CYP3A4 dropped as ADME) and Binimetinib (MAP2K1/2)
    doc = json.loads(dumps(cmp.to_dict()))
    assert set(doc) == {
        "mode", "mode_label", "left", "right", "neighbours", "metrics", "similarity", "top_gene_overlap",
        "differences",
    }  # fmt: skip
    assert doc["left"]["drug"] == "Trametinib" and doc["right"]["drug"] == "Binimetinib"
    assert any("observed responses correlate" in d for d in doc["differences"])


def test_two_selectors_and_two_lines(tiny: SignatureDataset, kit: dict[str, Any]) -> None:
    sel = compare_predictions(
        tiny,
        cell_line="C1",
        drug="Trametinib",
        selector="chem_knn_retrieval",
        selector_b="random",
        k=2,
        **kit,
    )
    assert sel.mode == "selectors"
    assert sel.similarity()["observed_pearson"] == pytest.approx(1.0)  # same query, same truth
    lines = compare_predictions(
        tiny, cell_line="C1", drug="Trametinib", selector="chem_knn_retrieval", cell_line_b="C2", k=2, **kit
    )
    assert lines.mode == "cell_lines"
    assert (lines.left.cell_line, lines.right.cell_line) == ("C1", "C2")
    assert Comparison.side_label(lines.right) == "Trametinib in C2, chem_knn_retrieval"


def test_bad_comparisons_get_one_clear_message(tiny: SignatureDataset, kit: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="same query"):
        compare_predictions(
            tiny, cell_line="C1", drug="Trametinib", selector="chem_knn_retrieval", cell_line_b="c 1", **kit
        )
    with pytest.raises(UnknownNameError, match="Trametinib"):
        compare_predictions(
            tiny, cell_line="C1", drug="Trametinib", selector="chem_knn_retrieval", drug_b="Trametinb", **kit
        )
    with pytest.raises(ValidationError, match="not profiled|not measured"):
        compare_predictions(
            tiny, cell_line="C1", drug="Tucidinostat", selector="chem_knn_retrieval", cell_line_b="C3", **kit
        )


@pytest.mark.realdata
def test_tahoe_trametinib_vs_binimetinib(real_data) -> None:
    cmp = compare_predictions(
        "tahoe", cell_line="C32", drug="Trametinib", selector="kg_mechanism", drug_b="Binimetinib"
    )
    nb = cmp.neighbours()
    # each MEK inhibitor retrieves the other first; the rest of the neighbours are mostly shared
    assert nb["only_left"][0] == "Binimetinib" and nb["only_right"][0] == "Trametinib"
    assert len(nb["shared"]) >= 5
    assert cmp.similarity()["observed_pearson"] > 0.5  # two MEK inhibitors respond alike in C32
    assert cmp.similarity()["n_genes"] == 2000
