"""The explore functions on the real data: EGR1's gene view, a MEK signature query, Trametinib's enrichment."""

from __future__ import annotations

import pytest

from perturb_core.explore import gene_report, lgr_enrichment, signature_query

pytestmark = pytest.mark.realdata

#: MAPK pathway activity score genes (Wagle et al. 2018): lowered by MEK inhibition.
MPAS = ["PHLDA1", "SPRY2", "SPRY4", "DUSP4", "DUSP6", "CCND1", "EPHA2", "EPHA4", "ETV4", "ETV5"]


def test_mek_signature_recovers_mek_inhibitors(real_data) -> None:
    res = signature_query([], [*MPAS, "NOT_A_GENE"], settings=real_data)
    assert res.query.unknown == ["NOT_A_GENE"]
    top = res.by_drug().head(2)
    assert set(top["moa"]) == {"MEK inhibitor"}, top
    assert (res.table["score"] < 0).any() and res.table["score"].between(-1, 1).all()


def test_egr1_gene_view(real_data) -> None:
    v = gene_report("egr1", settings=real_data)
    assert v.gene == "EGR1" and len(v.response) > 3000
    assert v.matrix().shape[1] == 40  # every Tahoe line
    assert set(v.knockdowns["split"]) <= {"train", "test"}
    assert set(v.core_auroc["line"]) <= {"K562", "RPE1", "HEPG2", "JURKAT"}
    assert (v.gene_sets["source"].str.startswith("go_")).any()


def test_trametinib_enrichment_predicted_vs_observed(real_data) -> None:
    from perturb_core.retrieval import predict_query

    ex = predict_query(
        "tahoe", cell_line="A498", drug="Trametinib", selector="kg_mechanism", settings=real_data
    )
    res = lgr_enrichment(ex, settings=real_data)
    assert res.universe_size > 1500
    assert all(len(v) == 50 for v in res.top.values())
    assert "EGR1" in res.top[("observed", "down")][:5]
    s = res.summary()
    assert s["down"]["shared_best_20"] >= 1  # agreement at pathway level, descriptive
