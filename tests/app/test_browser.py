"""End-to-end: ``streamlit run app.py`` headless on a free port, every page opened in headless Chromium.

Chromium is driven over the DevTools protocol (:mod:`perturb_core.testing.browser`; fixtures
``app_url``, ``devtools``, ``screenshot_dir``) so the test waits until each page has really finished
running instead of guessing a delay. Each page must show its title and no error or traceback; a
screenshot of each is saved to ``docs/screenshots/`` when ``UPDATE_SCREENSHOTS=1``, else to a
temporary folder.
"""

from __future__ import annotations

import itertools
import re
import time
from pathlib import Path

import pytest

from perturb_core.testing.browser import DevTools

pytestmark = [pytest.mark.browser, pytest.mark.realdata]

#: (url path, title, screenshot name)
PAGES = [
    ("", "Perturbation reasoning explorer", "overview"),
    ("retrieval", "Retrieval explorer", "retrieval"),
    # a link straight to one pair (query parameters seed the inputs): a test positive with both kinds of evidence
    ("evidence?dataset=perturbqa-k562&perturbation=INTS1&gene=LIMD2", "Evidence graph", "evidence"),
    # cross-line evidence from a link: ATF4 responded to EIF2B1 in other lines (same_knockdown items)
    (
        "evidence?dataset=perturbqa-k562&perturbation=EIF2B1&gene=ATF4&crossline=1",
        "Evidence graph",
        "evidence_crossline",
    ),
    ("benchmarks", "Benchmarks", "benchmarks"),
    ("data", "Data", "data"),
    ("settings", "Settings", "settings"),
]
HEIGHT = 1500
#: taller screenshots for long pages (the neighbour table and structures are below the fold)
HEIGHTS = {"retrieval": 2350}

# centre of the first marker of the graph trace whose legend name starts with `negative`
_NEGATIVE_NODE_JS = """(() => {
  const plot = document.querySelectorAll('.js-plotly-plot')[0];
  const k = plot.data.findIndex(t => (t.name || '').startsWith('negative'));
  if (k < 0) return null;
  const p = plot.querySelectorAll('.scatterlayer .trace')[k].querySelector('.points path');
  const r = p.getBoundingClientRect();
  return [r.x + r.width / 2, r.y + r.height / 2, plot.data[k].text[0]];
})()"""


def _click(devtools: DevTools, x: float, y: float) -> None:
    for dx in (-4, -2, 0):  # plotly picks the hovered point, so hover first
        devtools.send("Input.dispatchMouseEvent", type="mouseMoved", x=x + dx, y=y, button="none")
        time.sleep(0.2)
    for kind in ("mousePressed", "mouseReleased"):
        devtools.send(
            "Input.dispatchMouseEvent",
            type=kind,
            x=x,
            y=y,
            button="left",
            buttons=int(kind == "mousePressed"),
            clickCount=1,
        )
        time.sleep(0.1)


@pytest.mark.parametrize(("path", "title", "name"), PAGES, ids=[p[2] for p in PAGES])
def test_page_renders(
    app_url: str, devtools: DevTools, screenshot_dir: Path, path: str, title: str, name: str
) -> None:
    height = HEIGHTS.get(name, HEIGHT)
    devtools.open(f"{app_url}/{path}", height=height)
    state = devtools.wait(title, heading=True)
    if name == "evidence":  # click a negative evidence node: its path and outcome must appear
        x, y, label = devtools.eval(_NEGATIVE_NODE_JS)  # type: ignore[misc]
        _click(devtools, x, y)
        state = devtools.wait(f"negative {label}", timeout_s=30)
        devtools.send(
            "Input.dispatchMouseEvent", type="mouseMoved", x=5, y=5, button="none"
        )  # hide the tooltip
        time.sleep(0.3)
    if name == "benchmarks":  # run the default small LGR benchmark so the screenshot shows results
        assert devtools.click_button("Run on"), "no Run button on the Benchmarks page"
        time.sleep(0.5)
        state = devtools.wait("Per-query results")
        devtools.send(
            "Runtime.evaluate",
            expression="Array.from(document.querySelectorAll('h3')).find(h => h.innerText.includes(' on '))"
            "?.scrollIntoView()",
        )
        time.sleep(0.5)
    png = devtools.shot(screenshot_dir / f"{name}.png", height)
    assert not state["errors"], f"{name}: error shown on the page: {state['errors']}"
    assert "Traceback" not in state["text"], f"{name}: a traceback reached the page"
    assert not re.search(r"\b\w*Error\b", state["text"]), f"{name}: error text on the page"
    assert len(png) > 10_000


# every text label of the evidence graph (node names, "+ N more" rows) with its box on the screen
_GRAPH_LABELS_JS = """(() => {
  const plot = document.querySelectorAll('.js-plotly-plot')[0];
  return Array.from(plot.querySelectorAll('.scatterlayer .textpoint text')).map(t => {
    const r = t.getBoundingClientRect();
    return {text: t.textContent, x: r.x, y: r.y, w: r.width, h: r.height};
  }).filter(b => b.text && b.w > 0);
})()"""

# the Evidence tile: its value and whether the value is cut (wider than its box)
_TILE_JS = """(() => {
  const tile = Array.from(document.querySelectorAll('[data-testid="stMetric"]'))
    .find(m => m.innerText.startsWith('Evidence'));
  if (!tile) return null;
  const v = tile.querySelector('[data-testid="stMetricValue"]');
  const inner = v.querySelector('div') || v;
  return {value: v.innerText, cut: inner.scrollWidth > inner.clientWidth + 1, delta: tile.innerText};
})()"""


def test_the_showcase_pair_has_no_overlapping_labels_and_a_whole_tile(
    app_url: str, devtools: DevTools, screenshot_dir: Path
) -> None:
    devtools.open(f"{app_url}/evidence?dataset=perturbqa-k562&perturbation=AARS2&gene=MT-ND5", height=1700)
    devtools.wait("Evidence graph", heading=True)
    devtools.wait("AARS2 → MT-ND5")
    boxes = devtools.eval(_GRAPH_LABELS_JS)
    assert len(boxes) >= 20, boxes  # 8 per side, p, g, path nodes and the "+ N more" rows
    assert any(b["text"].startswith("+ 69 more positive") for b in boxes), [b["text"] for b in boxes]
    overlaps = [
        (a["text"], b["text"])
        for a, b in itertools.combinations(boxes, 2)
        if a["x"] < b["x"] + b["w"] - 1
        and b["x"] < a["x"] + a["w"] - 1
        and a["y"] < b["y"] + b["h"] - 1
        and b["y"] < a["y"] + a["h"] - 1
    ]
    assert not overlaps, f"overlapping graph labels: {overlaps}"
    tile = devtools.eval(_TILE_JS)
    assert tile and tile["value"] == "77 / 11" and not tile["cut"], tile
    assert "569 unmeasured" in tile["delta"]
    devtools.shot(screenshot_dir / "evidence_showcase.png", 1700)
