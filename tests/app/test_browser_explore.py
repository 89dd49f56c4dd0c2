"""End-to-end in headless Chromium: the Gene view (from a link), the Signature query (MEK example run)
and the enrichment section.

The app under ``streamlit run`` and Chromium over DevTools come from
:mod:`perturb_core.testing.browser` (fixtures ``app_url``, ``devtools``, ``screenshot_dir``).
Screenshots go to ``docs/screenshots/`` when ``UPDATE_SCREENSHOTS=1``, else to a temporary folder.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from perturb_core.config import repo_root
from perturb_core.testing.browser import DevTools, chromium, serve

pytestmark = [pytest.mark.browser, pytest.mark.realdata]


#: The enrichment section on its own, as the Retrieval explorer renders it for its prediction.
SECTION_SCRIPT = """
import sys
sys.path.insert(0, {root!r})
import streamlit as st
st.set_page_config(page_title="Enrichment section", layout="wide")
from pages._enrichment import render_enrichment
from perturb_core.retrieval import predict_query
st.title("Trametinib in A498: kg_mechanism prediction")
render_enrichment(predict_query("tahoe", cell_line="A498", drug="Trametinib", selector="kg_mechanism"))
"""


@pytest.fixture(scope="module")
def section_url(real_data, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A one-section script: the enrichment of one real prediction."""
    if chromium() is None:
        pytest.skip("headless Chromium is not installed (Debian package `chromium`)")
    tmp = tmp_path_factory.mktemp("section")
    script = tmp / "enrichment_section.py"
    script.write_text(SECTION_SCRIPT.format(root=str(repo_root())))
    with serve(str(script), root=repo_root(), tmp=tmp) as url:
        yield url


def _shot(devtools: DevTools, state: dict, path: Path, height: int) -> None:
    assert not state["errors"], f"error shown on the page: {state['errors']}"
    assert "Traceback" not in state["text"]
    assert len(devtools.shot(path, height)) > 10_000


def test_gene_view_in_the_browser(app_url: str, devtools: DevTools, screenshot_dir: Path) -> None:
    devtools.open(f"{app_url}/gene?gene=EGR1", height=2300)
    state = devtools.wait("Pathways and GO terms")
    assert "Gene view" in state["h1"] and "CORE per-gene AUROC" in state["text"]
    _shot(devtools, state, screenshot_dir / "gene.png", 2300)


def test_signature_query_in_the_browser(app_url: str, devtools: DevTools, screenshot_dir: Path) -> None:
    devtools.open(f"{app_url}/query", height=2100)
    devtools.wait("Score every signature")
    for label in ("Example: MEK inhibition", "Score every signature"):
        assert devtools.click_button(label), f"no {label!r} button"
        time.sleep(1.0)
        devtools.wait("Score every signature")
    state = devtools.wait("Scored 4,120 signatures")
    assert "Mean WTCS per drug" in state["text"]  # the chart (tables are drawn on a canvas)
    _shot(devtools, state, screenshot_dir / "query.png", 2100)


def test_enrichment_section_in_the_browser(
    section_url: str, devtools: DevTools, screenshot_dir: Path
) -> None:
    devtools.open(section_url, height=1900)
    state = devtools.wait("Down-regulated top 50")
    assert "Pathway enrichment: predicted vs observed" in state["text"]
    _shot(devtools, state, screenshot_dir / "enrichment.png", 1900)
