"""End-to-end browser kit: the app under ``streamlit run`` and headless Chromium over DevTools.

A plain ``chromium --screenshot`` of a Streamlit page is blank (the page draws after its
websocket delivers the script's output), so tests drive Chromium over the DevTools protocol and
wait until the page shows a text and no script or spinner has run for about a second.

- :func:`chromium`: the browser executable, or ``None``.
- :func:`serve`: ``streamlit run SCRIPT`` headless on a free local port, the visitor's view (no
  LLM endpoint, operator actions off); asserts the server logged no traceback.
- :func:`open_chromium`: headless Chromium with one page, as a :class:`DevTools` client.
- :class:`DevTools`: ``send``, ``eval``, ``wait`` (for a text, page settled), ``click_button``,
  ``shot`` (screenshot at the page width).

Pytest fixtures (in :mod:`perturb_core.testing.pytest_plugin`): ``app_url`` (the app, one server
per test module), ``devtools`` (one Chromium page per module), ``screenshot_dir``
(``docs/screenshots`` with ``UPDATE_SCREENSHOTS=1``, else a temporary folder).
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
from typing import Any

from perturb_core.processes import stop_process

__all__ = ["WIDTH", "DevTools", "chromium", "free_port", "open_chromium", "serve"]

WIDTH = 1400
"""Page width of every screenshot (the app's layout is checked at this width)."""

STATE_JS = """JSON.stringify({
  h1: Array.from(document.querySelectorAll('h1')).map(e => e.innerText.trim()),
  busy: (document.querySelector('[data-testid="stApp"]') || {dataset: {}}).dataset.testScriptState !== 'notRunning'
        || !!document.querySelector('[data-testid="stSpinner"], [data-testid="stSkeleton"]'),
  errors: Array.from(document.querySelectorAll('[data-testid="stException"], [data-testid="stAlertContentError"]'))
            .map(e => e.innerText.slice(0, 300)),
  text: document.body ? document.body.innerText : ''
})"""
"""The page's headings, whether a script or spinner is running, shown errors and its text."""

_CLICK_JS = """(() => {
  const b = Array.from(document.querySelectorAll('button')).find(b => b.innerText.includes(%s));
  if (b) { b.click(); return true; } return false; })()"""


def chromium() -> str | None:
    """The Chromium (or Chrome) executable on PATH, or ``None``."""
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve(script: str, *, root: Path, tmp: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """``streamlit run script`` from ``root`` on a free port; yields its URL.

    The visitor's view: no LLM endpoint from the environment, ``operator_actions`` off (no server
    paths), an LLM cache in ``tmp``. Extra ``env`` entries override. On exit the server is
    stopped and its log (``tmp/server.log``) must hold no traceback.
    """
    port = free_port()
    environ = {
        k: v for k, v in os.environ.items() if not k.startswith("OPENAI_") and k != "PERTURB_CORE_LLM_MODEL"
    }
    environ |= {"PERTURB_CORE_CACHE_DIR": str(tmp / "llm_cache"), "PERTURB_CORE_OPERATOR_ACTIONS": "off"}
    environ |= env or {}
    log = tmp / "server.log"
    cmd = [sys.executable, "-m", "streamlit", "run", script, "--server.headless", "true", "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"]  # fmt: skip
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, cwd=root, env=environ, stdout=fh, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"streamlit exited early: {log.read_text(errors='replace')[-2000:]}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2),
            ):
                break
            time.sleep(0.25)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(proc)
    assert "Traceback" not in log.read_text(errors="replace"), f"the server logged a traceback: see {log}"


class DevTools:
    """A minimal Chrome DevTools Protocol client for one page."""

    def __init__(self, ws: Any, *, timeout_s: float = 180.0) -> None:
        self._ws, self._ids, self.timeout_s = ws, itertools.count(1), timeout_s

    def send(self, method: str, **params: object) -> dict:
        """Call a DevTools method; returns its result (raises on a protocol error)."""
        i = next(self._ids)
        self._ws.send(json.dumps({"id": i, "method": method, "params": params}))
        while True:
            msg = json.loads(self._ws.recv(timeout=120))
            if msg.get("id") == i:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def eval(self, js: str) -> object:
        """Evaluate ``js`` in the page; returns its value."""
        return self.send("Runtime.evaluate", expression=js, returnByValue=True)["result"].get("value")

    def state(self) -> dict:
        """Headings, busy flag, shown errors and text of the page (:data:`STATE_JS`)."""
        return json.loads(self.eval(STATE_JS))  # type: ignore[arg-type]

    def resize(self, height: int, width: int = WIDTH) -> None:
        """Set the viewport (device scale 1)."""
        self.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )

    def open(self, url: str, *, height: int) -> None:
        """Resize the viewport and navigate to ``url``."""
        self.resize(height)
        self.send("Page.navigate", url=url)

    def wait(self, text: str, *, heading: bool = False, timeout_s: float | None = None) -> dict:
        """Wait until ``text`` is on the page (a heading of it, with ``heading``) and no script or
        spinner has run for about a second; returns the page's :meth:`state`."""
        timeout_s = self.timeout_s if timeout_s is None else timeout_s
        deadline, quiet, state = time.monotonic() + timeout_s, 0, {}
        time.sleep(0.5)
        while time.monotonic() < deadline:
            state = self.state()
            shown = text in state["h1"] if heading else text in state["text"]
            quiet = quiet + 1 if (shown and not state["busy"]) else 0
            if quiet >= 4:
                return state
            time.sleep(0.25)
        raise AssertionError(f"{text!r} not shown within {timeout_s:.0f} s; headings {state.get('h1')}")

    def click_button(self, label: str) -> bool:
        """Click the first button whose text contains ``label``; whether there was one."""
        return bool(self.eval(_CLICK_JS % json.dumps(label)))

    def shot(self, path: Path, height: int) -> bytes:
        """Screenshot at :data:`WIDTH` x ``height`` into ``path``; returns the PNG bytes."""
        self.resize(height)
        time.sleep(0.8)
        png = base64.b64decode(self.send("Page.captureScreenshot", format="png")["data"])
        path.write_bytes(png)
        return png


@contextlib.contextmanager
def open_chromium(exe: str, *, width: int = WIDTH) -> Iterator[DevTools]:
    """Headless Chromium with remote debugging and one blank page; yields its :class:`DevTools`."""
    from websockets.sync.client import connect

    profile = tempfile.mkdtemp(prefix="chromium-")
    proc = subprocess.Popen(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
         "--remote-debugging-port=0", f"--window-size={width},1500", "about:blank"],
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
        stop_process(proc)
        shutil.rmtree(profile, ignore_errors=True)
