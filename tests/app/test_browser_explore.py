"""End-to-end in headless Chromium: the Gene view (from a link) and the Signature query (MEK example run).

Same approach as ``test_browser.py`` (a headless ``streamlit run app.py`` on a free port, Chromium
driven over the DevTools protocol); kept separate so each file stays simple. Screenshots go to
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
WIDTH = 1400
TIMEOUT_S = 180.0
_STATE_JS = """JSON.stringify({
  h1: Array.from(document.querySelectorAll('h1')).map(e => e.innerText.trim()),
  busy: (document.querySelector('[data-testid="stApp"]') || {dataset: {}}).dataset.testScriptState !== 'notRunning'
        || !!document.querySelector('[data-testid="stSpinner"], [data-testid="stSkeleton"]'),
  errors: Array.from(document.querySelectorAll('[data-testid="stException"], [data-testid="stAlertContentError"]'))
            .map(e => e.innerText.slice(0, 300)),
  text: document.body ? document.body.innerText : ''
})"""
_CLICK_JS = """(() => {
  const b = Array.from(document.querySelectorAll('button')).find(b => b.innerText.includes(%s));
  if (b) { b.click(); return true; } return false; })()"""


def _chromium() -> str | None:
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DevTools:
    """A minimal Chrome DevTools Protocol client for one page."""

    def __init__(self, ws: ClientConnection) -> None:
        self._ws, self._ids = ws, itertools.count(1)

    def send(self, method: str, **params: object) -> dict:
        i = next(self._ids)
        self._ws.send(json.dumps({"id": i, "method": method, "params": params}))
        while True:
            msg = json.loads(self._ws.recv(timeout=120))
            if msg.get("id") == i:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def state(self) -> dict:
        res = self.send("Runtime.evaluate", expression=_STATE_JS, returnByValue=True)
        return json.loads(res["result"]["value"])

    def wait_for(self, text: str) -> dict:
        """Wait until ``text`` is on the page and no script or spinner has run for about a second."""
        deadline, quiet, state = time.monotonic() + TIMEOUT_S, 0, {}
        while time.monotonic() < deadline:
            state = self.state()
            quiet = quiet + 1 if (text in state["text"] and not state["busy"]) else 0
            if quiet >= 4:
                return state
            time.sleep(0.25)
        raise AssertionError(f"{text!r} did not appear within {TIMEOUT_S:.0f} s; headings {state.get('h1')}")


@contextlib.contextmanager
def _serve(script: str, tmp: Path) -> Iterator[str]:
    """``streamlit run <script>`` headless on a free local port (no LLM endpoint, the visitor's view)."""
    port = _free_port()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("OPENAI_") and k != "PERTURB_CORE_LLM_MODEL"
    }
    env["PERTURB_CORE_CACHE_DIR"] = str(tmp / "llm_cache")
    env["PERTURB_CORE_OPERATOR_ACTIONS"] = "off"
    log = tmp / "server.log"
    cmd = [sys.executable, "-m", "streamlit", "run", script, "--server.headless", "true", "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"]  # fmt: skip
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, "streamlit exited early"
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2),
            ):
                break
            time.sleep(0.25)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    assert "Traceback" not in log.read_text(errors="replace"), "the server logged a traceback"


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
def server(real_data, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app."""
    if _chromium() is None:
        pytest.skip("headless Chromium is not installed (Debian package `chromium`)")
    with _serve("app.py", tmp_path_factory.mktemp("app")) as url:
        yield url


@pytest.fixture(scope="module")
def section_server(real_data, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A one-section script: the enrichment of one real prediction."""
    if _chromium() is None:
        pytest.skip("headless Chromium is not installed (Debian package `chromium`)")
    tmp = tmp_path_factory.mktemp("section")
    script = tmp / "enrichment_section.py"
    script.write_text(SECTION_SCRIPT.format(root=str(ROOT)))
    with _serve(str(script), tmp) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[DevTools]:
    """Headless Chromium with remote debugging, one page."""
    exe = _chromium()
    if exe is None:
        pytest.skip("headless Chromium is not installed (Debian package `chromium`)")
    profile = tempfile.mkdtemp(prefix="chromium-")
    proc = subprocess.Popen(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        ws_url, deadline = None, time.monotonic() + 30
        assert proc.stderr is not None
        while time.monotonic() < deadline and ws_url is None:
            line = proc.stderr.readline()
            if m := re.search(r"DevTools listening on (ws://\S+)", line):
                ws_url = m.group(1)
        assert ws_url, "Chromium did not start its DevTools endpoint"
        port = int(re.search(r":(\d+)/", ws_url).group(1))  # type: ignore[union-attr]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            page = next(t for t in json.loads(r.read()) if t["type"] == "page")
        with connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=20) as ws:
            yield DevTools(ws)
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
        return ROOT / "docs" / "screenshots"
    return tmp_path_factory.mktemp("screenshots")


def _shot(browser: DevTools, state: dict, path: Path) -> None:
    png = base64.b64decode(browser.send("Page.captureScreenshot", format="png")["data"])
    path.write_bytes(png)
    assert not state["errors"], f"error shown on the page: {state['errors']}"
    assert "Traceback" not in state["text"]
    assert len(png) > 10_000


def test_gene_view_in_the_browser(server: str, browser: DevTools, shot_dir: Path) -> None:
    browser.send(
        "Emulation.setDeviceMetricsOverride", width=WIDTH, height=2300, deviceScaleFactor=1, mobile=False
    )
    browser.send("Page.navigate", url=f"{server}/gene?gene=EGR1")
    state = browser.wait_for("Pathways and GO terms")
    assert "Gene view" in state["h1"] and "CORE per-gene AUROC" in state["text"]
    _shot(browser, state, shot_dir / "gene.png")


def test_signature_query_in_the_browser(server: str, browser: DevTools, shot_dir: Path) -> None:
    browser.send(
        "Emulation.setDeviceMetricsOverride", width=WIDTH, height=2100, deviceScaleFactor=1, mobile=False
    )
    browser.send("Page.navigate", url=f"{server}/query")
    browser.wait_for("Score every signature")
    for label in ("Example: MEK inhibition", "Score every signature"):
        res = browser.send("Runtime.evaluate", expression=_CLICK_JS % json.dumps(label), returnByValue=True)
        assert res["result"]["value"], f"no {label!r} button"
        time.sleep(1.0)
        browser.wait_for("Score every signature")
    state = browser.wait_for("Scored 4,120 signatures")
    assert "Mean WTCS per drug" in state["text"]  # the chart (tables are drawn on a canvas)
    _shot(browser, state, shot_dir / "query.png")


def test_enrichment_section_in_the_browser(section_server: str, browser: DevTools, shot_dir: Path) -> None:
    browser.send(
        "Emulation.setDeviceMetricsOverride", width=WIDTH, height=1900, deviceScaleFactor=1, mobile=False
    )
    browser.send("Page.navigate", url=section_server)
    state = browser.wait_for("Down-regulated top 50")
    assert "Pathway enrichment: predicted vs observed" in state["text"]
    _shot(browser, state, shot_dir / "enrichment.png")
