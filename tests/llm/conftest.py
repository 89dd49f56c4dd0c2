"""Fixtures of the LLM-layer tests: an LLM factory that records retry delays, the cache's files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from perturb_core.config import Settings
from perturb_core.llm import LLM

MakeLLM = Callable[..., LLM]


@pytest.fixture
def make_llm() -> MakeLLM:
    """``make_llm(settings, sleeps=None, **changes)``: an LLM on ``settings.with_(**changes)``
    that records its retry delays in ``sleeps`` instead of sleeping."""

    def make(settings: Settings, sleeps: list[float] | None = None, **changes: Any) -> LLM:
        sleeps = [] if sleeps is None else sleeps
        return LLM.from_settings(settings.with_(**changes), backoff_s=0.01, sleep=sleeps.append)

    return make


@pytest.fixture
def cache_files() -> Callable[[Settings], list[Path]]:
    """``cache_files(settings)``: every file under the settings' LLM cache folder, sorted."""

    def files(settings: Settings) -> list[Path]:
        return sorted(p for p in settings.cache_dir.rglob("*") if p.is_file())

    return files
