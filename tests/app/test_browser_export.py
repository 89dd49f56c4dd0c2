"""End-to-end in headless Chromium: a chart's SVG and PNG buttons download real files (issue 13, export).

A compact twin of ``test_browser.py`` (test modules never import each other): ``streamlit run
app.py`` on a free port, Chromium driven over the DevTools protocol. On the Retrieval explorer, a click
on the scatter's SVG and PNG buttons must save an SVG and a PNG file drawn on the server by Kaleido.
The screenshot (``docs/screenshots/export.png`` with ``UPDATE_SCREENSHOTS=1``) shows the buttons.
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
from websockets.sync.client import connect

from pages import _export as export

pytestmark = [pytest.mark.browser, pytest.mark.realdata]

ROOT = Path(__file__).resolve().parents[2]
WIDTH = 1400
TIMEOUT_S = 150.0
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


@pytest.fixture(scope="module")
def server(real_data, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if _chromium() is None:
        pytest.skip("headless Chromium is not installed (Debian package `chromium`)")
    port = _free_port()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("OPENAI_") and k != "PERTURB_CORE_LLM_MODEL"
    }
    env["PERTURB_CORE_CACHE_DIR"] = str(tmp_path_factory.mktemp("llm_cache"))
    env["PERTURB_CORE_OPERATOR_ACTIONS"] = "off"  # the visitor's view: no server paths
    log = tmp_path_factory.mktemp("streamlit") / "server.log"
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port",
           str(port), "--server.address", "127.0.0.1", "--server.fileWatcherType", "none",
           "--browser.gatherUsageStats", "false"]  # fmt: skip
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, "streamlit exited early"
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r,
            ):
                if r.status == 200:
                    break
            time.sleep(0.25)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    assert "Traceback" not in log.read_text(errors="replace")


class DevTools:
    def __init__(self, ws) -> None:
        self._ws, self._ids = ws, itertools.count(1)

    def send(self, method: str, **params: object) -> dict:
        i = next(self._ids)
        self._ws.send(json.dumps({"id": i, "method": method, "params": params}))
        while True:
            msg = json.loads(self._ws.recv(timeout=60))
            if msg.get("id") == i:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def eval(self, js: str) -> object:
        return self.send("Runtime.evaluate", expression=js, returnByValue=True)["result"].get("value")

    def wait(self, text: str) -> dict:
        deadline, quiet, state = time.monotonic() + TIMEOUT_S, 0, {}
        time.sleep(0.5)
        while time.monotonic() < deadline:
            state = json.loads(self.eval(_STATE_JS))  # type: ignore[arg-type]
            quiet = quiet + 1 if (text in state["text"] and not state["busy"]) else 0
            if quiet >= 4:
                return state
            time.sleep(0.25)
        raise AssertionError(f"{text!r} not shown within {TIMEOUT_S:.0f} s")

    def shot(self, path: Path, height: int) -> bytes:
        self.send(
            "Emulation.setDeviceMetricsOverride",
            width=WIDTH,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        time.sleep(0.8)
        png = base64.b64decode(self.send("Page.captureScreenshot", format="png")["data"])
        path.write_bytes(png)
        return png


@pytest.fixture(scope="module")
def browser() -> Iterator[DevTools]:
    exe = _chromium()
    if exe is None:
        pytest.skip("headless Chromium is not installed (Debian package `chromium`)")
    profile = tempfile.mkdtemp(prefix="chromium-")
    proc = subprocess.Popen(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
         "--remote-debugging-port=0", f"--window-size={WIDTH},1500", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        ws_url, deadline = None, time.monotonic() + 30
        while ws_url is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line and proc.poll() is not None:
                break
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
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def shot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        return ROOT / "docs" / "screenshots"
    return tmp_path_factory.mktemp("screenshots")


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
    server: str, browser: DevTools, shot_dir: Path, tmp_path: Path
) -> None:
    if export.browser_path() is None:
        pytest.skip("Kaleido finds no Chrome/Chromium")
    browser.send(
        "Emulation.setDeviceMetricsOverride", width=WIDTH, height=1300, deviceScaleFactor=1, mobile=False
    )
    browser.send("Browser.setDownloadBehavior", behavior="allow", downloadPath=str(tmp_path))
    browser.send("Page.navigate", url=f"{server}/retrieval?dataset=tahoe&cell_line=A498&drug=Trametinib")
    state = browser.wait("Predicted vs observed")
    assert not state["errors"] and "Traceback" not in state["text"]
    assert browser.eval(_CLICK_JS % json.dumps("SVG")), "no SVG button"
    svg = _downloaded(tmp_path, ".svg")
    assert svg.lstrip().startswith((b"<svg", b"<?xml"))
    browser.eval("window.scrollBy(0, -250)")
    assert len(browser.shot(shot_dir / "export.png", 1300)) > 10_000
    assert browser.eval(_CLICK_JS % json.dumps("PNG")), "no PNG button"
    assert _downloaded(tmp_path, ".png")[:8] == b"\x89PNG\r\n\x1a\n"
