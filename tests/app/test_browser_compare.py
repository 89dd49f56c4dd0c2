"""End-to-end in headless Chromium: the Compare page and the Data page's upload panel (issue 13).

The app under ``streamlit run`` and Chromium over DevTools come from
:mod:`perturb_core.testing.browser` (fixtures ``app_url``, ``devtools``, ``screenshot_dir``).
Screenshots go to ``docs/screenshots/`` with ``UPDATE_SCREENSHOTS=1``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from perturb_core.testing.browser import DevTools

pytestmark = [pytest.mark.browser, pytest.mark.realdata]

_EXPAND_JS = """(() => { const s = Array.from(document.querySelectorAll('summary'))
  .find(e => e.innerText.includes('Upload your own data')); if (s) { s.click(); return true; } return false; })()"""


def _clean(state: dict, name: str) -> None:
    assert not state["errors"], f"{name}: error shown: {state['errors']}"
    assert "Traceback" not in state["text"]


def test_compare_page(app_url: str, devtools: DevTools, screenshot_dir: Path) -> None:
    devtools.open(
        f"{app_url}/compare?mode=drugs&cell_line=C32&drug=Trametinib&drug_b=Binimetinib", height=2300
    )
    state = devtools.wait("All metrics side by side")
    _clean(state, "compare")
    assert "What differs" in state["text"] and "Binimetinib in C32" in state["text"]
    assert len(devtools.shot(screenshot_dir / "compare.png", 2300)) > 10_000


def test_data_upload_panel(app_url: str, devtools: DevTools, screenshot_dir: Path) -> None:
    devtools.open(f"{app_url}/data", height=1100)
    devtools.wait("Upload your own data")
    assert devtools.eval(_EXPAND_JS), "no upload panel on the Data page"
    state = devtools.wait("Dataset name")
    _clean(state, "data upload")
    assert "at most 200 MB" in state["text"]
    assert len(devtools.shot(screenshot_dir / "data_upload.png", 1100)) > 10_000
