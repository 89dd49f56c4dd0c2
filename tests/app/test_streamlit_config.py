"""The shipped Streamlit config: local-only by default, no error details for visitors."""

from __future__ import annotations

import tomllib
from pathlib import Path

CONFIG = Path(__file__).resolve().parents[2] / ".streamlit" / "config.toml"


def test_the_app_binds_localhost_by_default() -> None:
    server = tomllib.loads(CONFIG.read_text())["server"]
    assert server["address"] == "127.0.0.1", (
        "expose the app deliberately with --server.address, not by default"
    )


def test_visitors_get_no_tracebacks() -> None:
    assert tomllib.loads(CONFIG.read_text())["client"]["showErrorDetails"] == "none"


def test_no_per_rerun_work_that_scales_with_the_heap() -> None:
    """A forced gc.collect(2) and the file watcher cost ~0.2 s of server CPU per rerun each (docs/BENCHMARKS.md)."""
    config = tomllib.loads(CONFIG.read_text())
    assert config["runner"]["postScriptGC"] is False
    assert config["server"]["fileWatcherType"] == "none"
