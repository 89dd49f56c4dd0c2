"""AppTest of the enrichment section (``pages/_enrichment.render_enrichment``) on a real LGR prediction."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

pytestmark = pytest.mark.realdata

SCRIPT = """
from pages._enrichment import render_enrichment
from perturb_core.retrieval import predict_query

ex = predict_query("tahoe", cell_line="A498", drug="Trametinib", selector="kg_mechanism")
render_enrichment(ex)
"""


def test_enrichment_section_predicted_vs_observed(real_data) -> None:
    at = AppTest.from_string(SCRIPT, default_timeout=180).run()
    assert not at.exception and not at.error
    tables = [d.value for d in at.dataframe if "k/K" in d.value.columns]
    assert len(tables) == 4  # predicted and observed, up and down
    assert all(t["p"].is_monotonic_increasing for t in tables)
    assert any("enriched terms (q < 0.05) predicted" in m.value for m in at.markdown)
    at.toggle(key="enrich_hide").set_value(True).run()
    assert not at.exception and not at.error
    assert any(c.value.startswith("Hidden:") for c in at.caption)
    at.multiselect(key="enrich_sources").set_value([]).run()
    assert any("at least one gene-set source" in w.value for w in at.warning)
