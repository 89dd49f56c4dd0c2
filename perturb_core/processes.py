"""Child processes: stop one for sure (the LLM server of ``llm serve``, and the test and benchmark kits'
Streamlit, Chromium and llama.cpp servers)."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Sequence

__all__ = ["stop_process"]


def stop_process(
    proc: subprocess.Popen, steps: Sequence[tuple[signal.Signals, float]] = ((signal.SIGTERM, 10.0),)
) -> int:
    """Stop ``proc``: send each ``(signal, seconds to wait)`` in turn until it exits, then SIGKILL.

    Returns:
        Its exit code (negative: the signal that ended it). A process that already exited is
        only reaped.
    """
    for sig, wait_s in steps:
        if proc.poll() is not None:
            break
        proc.send_signal(sig)
        try:
            proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            continue
    if proc.poll() is None:
        proc.kill()
    return proc.wait()
