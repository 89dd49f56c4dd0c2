"""stop_process: a child is stopped for sure, politely first."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from perturb_core.processes import stop_process

IGNORE_TERM = (
    "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('ready', flush=True); time.sleep(60)"
)


def _child(code: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def test_a_child_that_obeys_sigterm_ends_with_it() -> None:
    proc = _child("import time; print('ready', flush=True); time.sleep(60)")
    assert stop_process(proc) == -signal.SIGTERM


def test_a_child_that_ignores_every_step_is_killed() -> None:
    proc = _child(IGNORE_TERM)
    t0 = time.monotonic()
    assert stop_process(proc, ((signal.SIGTERM, 0.3),)) == -signal.SIGKILL
    assert time.monotonic() - t0 < 10


def test_steps_are_tried_in_order_and_an_exited_child_is_only_reaped() -> None:
    proc = _child(IGNORE_TERM)
    assert stop_process(proc, ((signal.SIGTERM, 0.3), (signal.SIGINT, 10.0))) not in (-signal.SIGKILL, None)
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    assert stop_process(done) == 0
