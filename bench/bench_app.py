"""Benchmark: the app under many users, driven through Streamlit's own websocket protocol.

Each simulated user is one real browser session as the server sees it: it connects to
``/_stcore/stream``, asks for a page (a ``rerun_script`` BackMsg, as the browser sends) and
waits for ``script_finished``; then it changes a widget (the drug on the Retrieval explorer,
the gene on the Evidence graph) as a click would, and waits again. Nothing renders, so the
numbers are the server's side of a page load and of an interaction (the browser adds its own
drawing time on top). Prints p50/p95 per kind, the server's resident memory, and the server
CPU time of one cached rerun (the same view again, every result already cached).

    python bench/bench_app.py --sessions 1,20            # starts `streamlit run app.py` itself
    python bench/bench_app.py --url http://127.0.0.1:8501 --sessions 5

The server is warmed first (one session opens every page and every view the users will ask
for once), so the timed runs measure many users on views someone already opened (shared
caches), not the first load of a dataset or the first computation of a view; the warm-up's own
latencies are printed as the cold case.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil
import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]

from _machine import machine  # noqa: E402

from perturb_core.processes import stop_process  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
#: url path -> (label of the selectbox an interaction changes, or None)
PAGES = {"": None, "retrieval": "Query drug", "evidence": "Gene g"}
TIMEOUT = 600.0


@dataclass
class Widget:
    """A selectbox as the page sent it."""

    id: str
    options: list[str]
    current: str


@dataclass
class Session:
    """One simulated browser tab."""

    ws: websockets.ClientConnection
    widgets: dict[str, Widget] = field(default_factory=dict)
    hashes: dict[str, str] = field(default_factory=dict)

    async def run(self, page: str, widget_states: list[tuple[str, str]] | None = None) -> float:
        """Ask for ``page`` (with these selectbox values changed); seconds until the script finished."""
        msg = BackMsg()
        cs = msg.rerun_script
        cs.query_string = ""
        cs.page_name = page
        cs.page_script_hash = self.hashes.get(page, "")
        for wid, value in widget_states or []:
            w = cs.widget_states.widgets.add()
            w.id = wid
            w.string_value = value
        t0 = time.perf_counter()
        await self.ws.send(msg.SerializeToString())
        while True:
            raw = await asyncio.wait_for(self.ws.recv(), TIMEOUT)
            fwd = ForwardMsg()
            fwd.ParseFromString(raw)
            kind = fwd.WhichOneof("type")
            if kind == "new_session":
                for p in fwd.new_session.app_pages:
                    self.hashes[p.url_pathname] = p.page_script_hash
            elif kind == "navigation":
                for p in fwd.navigation.app_pages:
                    self.hashes[p.url_pathname] = p.page_script_hash
            elif kind == "delta" and fwd.delta.WhichOneof("type") == "new_element":
                el = fwd.delta.new_element
                if el.WhichOneof("type") == "selectbox":
                    sb = el.selectbox
                    opts = list(sb.options)
                    cur = sb.raw_value if sb.HasField("raw_value") else (opts[sb.default] if opts else "")
                    self.widgets[sb.label] = Widget(sb.id, opts, cur)
            elif kind == "script_finished":
                status = ForwardMsg.ScriptFinishedStatus.Name(fwd.script_finished)
                if status in ("FINISHED_SUCCESSFULLY", "FINISHED_FRAGMENT_RUN_SUCCESSFULLY"):
                    return time.perf_counter() - t0
                if status == "FINISHED_WITH_COMPILE_ERROR":
                    raise RuntimeError(f"page {page!r} failed to compile")

    async def interact(self, page: str, label: str, step: int) -> float:
        """Pick another option of the selectbox ``label`` (cycling over its first options)."""
        w = self.widgets[label]
        value = w.options[(w.options.index(w.current) + 1 + step) % min(len(w.options), 6)]
        elapsed = await self.run(page, [(w.id, value)])
        self.widgets[label].current = value
        return elapsed


def ws_url(url: str) -> str:
    return url.replace("http://", "ws://").rstrip("/") + "/_stcore/stream"


async def connect(url: str) -> Session:
    ws = await websockets.connect(
        ws_url(url), subprotocols=["streamlit"], origin=url.rstrip("/"), max_size=None, open_timeout=60
    )
    return Session(ws)


async def user(url: str, interactions: int, out: dict[str, list[float]]) -> None:
    """One user: every page in turn, then ``interactions`` widget changes on pages that have one."""
    s = await connect(url)
    try:
        await s.run("")  # the first message learns the pages
        for page, label in PAGES.items():
            out["page load"].append(await s.run(page))
            if label and label in s.widgets:
                for i in range(interactions):
                    out["interaction"].append(await s.interact(page, label, i))
    finally:
        await s.ws.close()


async def users(url: str, n: int, interactions: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"page load": [], "interaction": []}
    await asyncio.gather(*(user(url, interactions, out) for _ in range(n)))
    return out


async def cached_rerun_cpu(
    url: str, proc: psutil.Process | None, page: str, reruns: int
) -> tuple[float, float]:
    """(server CPU seconds, wall seconds) per rerun of an unchanged ``page`` (everything cached)."""
    s = await connect(url)
    try:
        await s.run("")
        await s.run(page)
        await s.run(page)
        cpu0 = _cpu(proc)
        t0 = time.perf_counter()
        for _ in range(reruns):
            await s.run(page)
        wall = (time.perf_counter() - t0) / reruns
        cpu = (_cpu(proc) - cpu0) / reruns if proc else float("nan")
    finally:
        await s.ws.close()
    return cpu, wall


def _cpu(proc: psutil.Process | None) -> float:
    if proc is None:
        return float("nan")
    t = proc.cpu_times()
    return t.user + t.system


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(app: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(app), "--server.headless", "true",
        "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=app.parent, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=1) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the app did not start within 2 minutes")


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", help="an app already running (default: start `streamlit run app.py`)")
    ap.add_argument(
        "--pid", type=int, help="with --url: the server's process id, for its CPU time and memory"
    )
    ap.add_argument(
        "--app", type=Path, default=ROOT / "app.py", help="the app to start (default: this repo's)"
    )
    ap.add_argument("--sessions", default="1,20", help="comma-separated numbers of concurrent users")
    ap.add_argument("--interactions", type=int, default=3, help="widget changes per page with a widget")
    ap.add_argument("--reruns", type=int, default=20, help="cached reruns timed for the CPU figure")
    args = ap.parse_args()
    server = None
    if args.url:
        url, proc = args.url, (psutil.Process(args.pid) if args.pid else None)
    else:
        server, url = start_server(args.app.resolve())
        proc = psutil.Process(server.pid)
    try:
        t0 = time.perf_counter()
        # warm: every dataset and the graph loaded, and every view the users will ask for computed once
        cold = asyncio.run(users(url, 1, args.interactions))
        print(f"machine: {machine()}; load average {os.getloadavg()[0]:.2f} at start")
        print(
            f"warm-up (first user, every page and view once): {time.perf_counter() - t0:.1f} s; its "
            + ", ".join(f"{k}s p50 {pct(v, 50):.2f} s, max {max(v):.2f} s" for k, v in cold.items())
            + " (first load of datasets and first computation of each view)"
        )
        for page in ("retrieval", "evidence"):
            cpu, wall = asyncio.run(cached_rerun_cpu(url, proc, page, args.reruns))
            print(
                f"cached rerun of {page}: server CPU {cpu:.3f} s, wall {wall:.3f} s (mean of {args.reruns})"
            )
        for n in (int(x) for x in args.sessions.split(",")):
            t0, server0, client0 = time.perf_counter(), _cpu(proc), time.process_time()
            out = asyncio.run(users(url, n, args.interactions))
            wall = time.perf_counter() - t0
            server_cpu, client_cpu = _cpu(proc) - server0, time.process_time() - client0
            rss = proc.memory_info().rss / 2**20 if proc else float("nan")
            for kind, vals in out.items():
                print(
                    f"{n:>3} sessions  {kind:<12} n={len(vals):<4} p50 {pct(vals, 50):6.2f} s  "
                    f"p95 {pct(vals, 95):6.2f} s  max {max(vals, default=float('nan')):6.2f} s"
                )
            requests = sum(len(v) for v in out.values())
            print(
                f"{n:>3} sessions  total {wall:.1f} s, server RSS {rss:,.0f} MiB; CPU over the run: server "
                f"{server_cpu:.1f} s ({1000 * server_cpu / requests:.0f} ms per request), this client "
                f"{client_cpu:.1f} s (on the same cores); load average {os.getloadavg()[0]:.2f} at the end"
            )
    finally:
        if server is not None:
            stop_process(server)


if __name__ == "__main__":
    main()
