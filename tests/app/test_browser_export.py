"""End-to-end in headless Chromium: a chart's SVG and PNG buttons download real files (issue 13, export).

The app under ``streamlit run`` and Chromium over DevTools come from
:mod:`perturb_core.testing.browser` (fixtures ``app_url``, ``devtools``, ``screenshot_dir``). On the
Retrieval explorer, a click on the scatter's SVG and PNG buttons must save an SVG and a PNG file
drawn on the server by Kaleido. The screenshot (``docs/screenshots/export.png`` with
``UPDATE_SCREENSHOTS=1``) shows the buttons.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from pages import _export as export
from perturb_core.testing.browser import DevTools

pytestmark = [pytest.mark.browser, pytest.mark.realdata]

_CLICK_JS = """(() => {
  const b = Array.from(document.querySelectorAll('[data-testid="stDownloadButton"] button'))
    .find(b => b.innerText.trim().endsWith(%s));
  if (!b) return false;
  b.scrollIntoView({block: 'center'}); b.click(); return true; })()"""


def _downloaded(folder: Path, suffix: str, timeout: float = 90.0) -> bytes:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [p for p in folder.glob(f"*{suffix}") if p.stat().st_size > 0]
        if done:
            return done[0].read_bytes()
        time.sleep(0.25)
    raise AssertionError(f"no {suffix} file downloaded within {timeout:.0f} s: {sorted(folder.iterdir())}")


def test_the_scatter_downloads_as_svg_and_png(
    app_url: str, devtools: DevTools, screenshot_dir: Path, tmp_path: Path
) -> None:
    if export.browser_path() is None:
        pytest.skip("Kaleido finds no Chrome/Chromium")
    devtools.send("Browser.setDownloadBehavior", behavior="allow", downloadPath=str(tmp_path))
    devtools.open(f"{app_url}/retrieval?dataset=tahoe&cell_line=A498&drug=Trametinib", height=1300)
    state = devtools.wait("Predicted vs observed")
    assert not state["errors"] and "Traceback" not in state["text"]
    assert devtools.eval(_CLICK_JS % json.dumps("SVG")), "no SVG button"
    svg = _downloaded(tmp_path, ".svg")
    assert svg.lstrip().startswith((b"<svg", b"<?xml"))
    devtools.eval("window.scrollBy(0, -250)")
    assert len(devtools.shot(screenshot_dir / "export.png", 1300)) > 10_000
    assert devtools.eval(_CLICK_JS % json.dumps("PNG")), "no PNG button"
    assert _downloaded(tmp_path, ".png")[:8] == b"\x89PNG\r\n\x1a\n"
