"""End-to-end: ``streamlit run app.py`` headless on a free port, every page opened in headless Chromium.

Chromium is driven over the DevTools protocol (``websockets``, a Streamlit dependency) so the
test waits until each page has really finished running instead of guessing a delay. Each page
must show its title and no error or traceback; a screenshot of each is saved to
``docs/screenshots/`` when ``UPDATE_SCREENSHOTS=1``, else to a temporary folder.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.sync.client import ClientConnection, connect

pytestmark = [pytest.mark.browser, pytest.mark.realdata]

ROOT = Path(__file__).resolve().parents[2]
#: (url path, title, screenshot name)
PAGES = [
    ("", "Perturbation reasoning explorer", "overview"),
    ("retrieval", "Retrieval explorer", "retrieval"),
    # a link straight to one pair (query parameters seed the inputs): a test positive with both kinds of evidence
    ("evidence?dataset=perturbqa-k562&perturbation=INTS1&gene=LIMD2", "Evidence graph", "evidence"),
    ("benchmarks", "Benchmarks", "benchmarks"),
    ("data", "Data", "data"),
    ("settings", "Settings", "settings"),
]
WIDTH, HEIGHT = 1400, 1500
#: taller screenshots for long pages (the neighbour table and structures are below the fold)
HEIGHTS = {"retrieval": 2350}
PAGE_TIMEOUT_S = 120.0

# What the page looks like now: its title(s), whether a script is still running, error elements.
_STATE_JS = """JSON.stringify({
  h1: Array.from(document.querySelectorAll('h1')).map(e => e.innerText.trim()),
  busy: (document.querySelector('[data-testid="stApp"]') || {dataset: {}}).dataset.testScriptState !== 'notRunning'
        || !!document.querySelector('[data-testid="stSpinner"], [data-testid="stSkeleton"]'),
  errors: Array.from(document.querySelectorAll('[data-testid="stException"], [data-testid="stAlertContentError"]'))
            .map(e => e.innerText.slice(0, 300)),
  text: document.body ? document.body.innerText : ''
})"""


def _chromium() -> str | None:
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, timeout: float, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with status {proc.returncode} before {url} answered")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as r:
            if r.status == 200:
                return
        time.sleep(0.25)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


@pytest.fixture(scope="module")
def server(real_data, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A headless Streamlit server on a free local port (no LLM endpoint, isolated cache)."""
    if _chromium() is None:
        pytest.skip("headless Chromium is not installed (Debian package `chromium`; .ci/run installs it)")
    port = _free_port()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("OPENAI_") and k != "PERTURB_CORE_LLM_MODEL"
    }
    env["PERTURB_CORE_CACHE_DIR"] = str(tmp_path_factory.mktemp("llm_cache"))
    # the visitor's view: no server paths in the screenshots (they are committed to docs/)
    env["PERTURB_CORE_OPERATOR_ACTIONS"] = "off"
    log = tmp_path_factory.mktemp("streamlit") / "server.log"
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "app.py",
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--server.fileWatcherType",
        "none",
        "--browser.gatherUsageStats",
        "false",
    ]
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT)
    try:
        _wait_http(f"http://127.0.0.1:{port}/_stcore/health", 60, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    text = log.read_text(errors="replace")
    assert "Traceback" not in text, f"the server logged a traceback:\n{text[-3000:]}"


class DevTools:
    """A minimal Chrome DevTools Protocol client for one page."""

    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws
        self._ids = itertools.count(1)

    def send(self, method: str, **params: object) -> dict:
        i = next(self._ids)
        self._ws.send(json.dumps({"id": i, "method": method, "params": params}))
        while True:
            msg = json.loads(self._ws.recv(timeout=60))
            if msg.get("id") == i:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def state(self) -> dict:
        res = self.send("Runtime.evaluate", expression=_STATE_JS, returnByValue=True)
        return json.loads(res["result"]["value"])


@pytest.fixture(scope="module")
def browser() -> Iterator[DevTools]:
    """Headless Chromium with remote debugging, one page, 1400 px wide."""
    exe = _chromium()
    if exe is None:
        pytest.skip("headless Chromium is not installed (Debian package `chromium`; .ci/run installs it)")
    profile = tempfile.mkdtemp(prefix="chromium-")
    proc = subprocess.Popen(
        [
            exe,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            f"--user-data-dir={profile}",
            "--remote-debugging-port=0",
            f"--window-size={WIDTH},{HEIGHT}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ws_url = None
        deadline = time.monotonic() + 30
        assert proc.stderr is not None
        while time.monotonic() < deadline and ws_url is None:
            line = proc.stderr.readline()
            if not line and proc.poll() is not None:
                break
            if m := re.search(r"DevTools listening on (ws://\S+)", line):
                ws_url = m.group(1)
        assert ws_url, "Chromium did not start its DevTools endpoint"
        port = int(re.search(r":(\d+)/", ws_url).group(1))  # type: ignore[union-attr]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            targets = json.loads(r.read())
        page = next(t for t in targets if t["type"] == "page")
        with connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=20) as ws:
            tools = DevTools(ws)
            tools.send(
                "Emulation.setDeviceMetricsOverride",
                width=WIDTH,
                height=HEIGHT,
                deviceScaleFactor=1,
                mobile=False,
            )
            yield tools
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def shot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """docs/screenshots when UPDATE_SCREENSHOTS=1, else a temporary folder."""
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        out = ROOT / "docs" / "screenshots"
        out.mkdir(parents=True, exist_ok=True)
        return out
    return tmp_path_factory.mktemp("screenshots")


def _open(browser: DevTools, url: str, title: str) -> dict:
    """Navigate and wait until the title is shown and nothing has been running for a moment."""
    browser.send("Page.navigate", url=url)
    deadline = time.monotonic() + PAGE_TIMEOUT_S
    quiet = 0
    state: dict = {}
    time.sleep(0.5)
    while time.monotonic() < deadline:
        state = browser.state()
        quiet = quiet + 1 if (title in state["h1"] and not state["busy"]) else 0
        if quiet >= 4:  # ~1 s without a running script or spinner
            return state
        time.sleep(0.25)
    raise AssertionError(
        f"{url}: title {title!r} not rendered within {PAGE_TIMEOUT_S:.0f} s; headings {state.get('h1')}"
    )


_CLICK_JS = """(() => {
  const b = Array.from(document.querySelectorAll('button')).find(b => b.innerText.includes(%s));
  if (b) { b.click(); return true; } return false; })()"""


# centre of the first marker of the graph trace whose legend name starts with `negative`
_NEGATIVE_NODE_JS = """(() => {
  const plot = document.querySelectorAll('.js-plotly-plot')[0];
  const k = plot.data.findIndex(t => (t.name || '').startsWith('negative'));
  if (k < 0) return null;
  const p = plot.querySelectorAll('.scatterlayer .trace')[k].querySelector('.points path');
  const r = p.getBoundingClientRect();
  return [r.x + r.width / 2, r.y + r.height / 2, plot.data[k].text[0]];
})()"""


def _click(browser: DevTools, x: float, y: float) -> None:
    for dx in (-4, -2, 0):  # plotly picks the hovered point, so hover first
        browser.send("Input.dispatchMouseEvent", type="mouseMoved", x=x + dx, y=y, button="none")
        time.sleep(0.2)
    for kind in ("mousePressed", "mouseReleased"):
        browser.send(
            "Input.dispatchMouseEvent",
            type=kind,
            x=x,
            y=y,
            button="left",
            buttons=int(kind == "mousePressed"),
            clickCount=1,
        )
        time.sleep(0.1)


def _wait_for_text(browser: DevTools, text: str, timeout: float = PAGE_TIMEOUT_S) -> dict:
    deadline = time.monotonic() + timeout
    quiet, state = 0, {}
    while time.monotonic() < deadline:
        state = browser.state()
        quiet = quiet + 1 if (text in state["text"] and not state["busy"]) else 0
        if quiet >= 4:
            return state
        time.sleep(0.25)
    raise AssertionError(f"{text!r} did not appear within {timeout:.0f} s")


@pytest.mark.parametrize(("path", "title", "name"), PAGES, ids=[p[2] for p in PAGES])
def test_page_renders(
    server: str, browser: DevTools, shot_dir: Path, path: str, title: str, name: str
) -> None:
    height = HEIGHTS.get(name, HEIGHT)
    browser.send(
        "Emulation.setDeviceMetricsOverride", width=WIDTH, height=height, deviceScaleFactor=1, mobile=False
    )
    state = _open(browser, f"{server}/{path}", title)
    if name == "evidence":  # click a negative evidence node: its path and outcome must appear
        found = browser.send("Runtime.evaluate", expression=_NEGATIVE_NODE_JS, returnByValue=True)
        x, y, label = found["result"]["value"]
        _click(browser, x, y)
        state = _wait_for_text(browser, f"negative {label}", timeout=30)
        browser.send(
            "Input.dispatchMouseEvent", type="mouseMoved", x=5, y=5, button="none"
        )  # hide the tooltip
        time.sleep(0.3)
    if name == "benchmarks":  # run the default small LGR benchmark so the screenshot shows results
        res = browser.send(
            "Runtime.evaluate", expression=_CLICK_JS % json.dumps("Run on"), returnByValue=True
        )
        assert res["result"]["value"], "no Run button on the Benchmarks page"
        time.sleep(0.5)
        state = _wait_for_text(browser, "Per-query results")
        browser.send(
            "Runtime.evaluate",
            expression="Array.from(document.querySelectorAll('h3')).find(h => h.innerText.includes(' on '))"
            "?.scrollIntoView()",
        )
        time.sleep(0.5)
    png = base64.b64decode(browser.send("Page.captureScreenshot", format="png")["data"])
    (shot_dir / f"{name}.png").write_bytes(png)
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
    server: str, browser: DevTools, shot_dir: Path
) -> None:
    browser.send(
        "Emulation.setDeviceMetricsOverride", width=WIDTH, height=1700, deviceScaleFactor=1, mobile=False
    )
    _open(
        browser, f"{server}/evidence?dataset=perturbqa-k562&perturbation=AARS2&gene=MT-ND5", "Evidence graph"
    )
    _wait_for_text(browser, "AARS2 → MT-ND5")
    boxes = browser.send("Runtime.evaluate", expression=_GRAPH_LABELS_JS, returnByValue=True)["result"][
        "value"
    ]
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
    tile = browser.send("Runtime.evaluate", expression=_TILE_JS, returnByValue=True)["result"]["value"]
    assert tile and tile["value"] == "77 / 11" and not tile["cut"], tile
    assert "569 unmeasured" in tile["delta"]
    png = base64.b64decode(browser.send("Page.captureScreenshot", format="png")["data"])
    (shot_dir / "evidence_showcase.png").write_bytes(png)
