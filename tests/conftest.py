"""Shared fixtures: isolated LLM cache, the fake OpenAI-compatible server, the real data.

Real-data tests request ``real_data`` (session scope): it fetches from the mirror and
builds the processed artifacts once if they are missing (about a minute on 2 cores), and
skips nothing — missing data is a failure, not a skip.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fake_openai import fake_llm_settings as fake_llm_settings
from fake_openai import fake_openai_server as fake_openai_server

from perturb_core.config import Settings, get_settings


@pytest.fixture(autouse=True)
def _isolated_llm_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the LLM cache at a temporary folder and unset any real endpoint or key."""
    monkeypatch.setenv("PERTURB_CORE_CACHE_DIR", str(tmp_path / "llm_cache"))
    for var in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "PERTURB_CORE_LLM_MODEL"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="session")
def real_data() -> Settings:
    """Settings whose processed folder holds the built real data (built on first use)."""
    from perturb_core.data.build import ensure_data

    settings = get_settings()
    ensure_data(settings=settings)
    return settings
