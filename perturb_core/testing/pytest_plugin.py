"""Pytest fixtures of the test kit: an isolated LLM environment, the fake OpenAI-compatible server, the real data.

Enable them with ``pytest_plugins = ["perturb_core.testing.pytest_plugin"]`` in a ``conftest.py``.
Real-data tests request ``real_data`` (session scope): it fetches from the mirror and builds the
processed artifacts once if they are missing (about a minute on 2 cores); missing data is a
failure, not a skip.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from perturb_core.config import Settings, get_settings
from perturb_core.testing.fake_openai import FAKE_API_KEY, FAKE_MODEL, FakeOpenAI

__all__ = [
    "fake_llm_settings",
    "fake_openai_server",
    "isolated_llm_env",
    "pytest_collection_modifyitems",
    "real_data",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses ``real_data`` as ``realdata`` (so ``-m "not realdata"`` needs no data)."""
    for item in items:
        if "real_data" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.realdata)


@pytest.fixture(autouse=True)
def isolated_llm_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
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


@pytest.fixture
def fake_openai_server() -> Iterator[FakeOpenAI]:
    """A running :class:`FakeOpenAI` with the echo responder; tests may change its attributes."""
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def fake_llm_settings(fake_openai_server: FakeOpenAI, tmp_path: Path) -> Settings:
    """Settings pointing at ``fake_openai_server``, with the LLM cache in ``tmp_path``."""
    return Settings(
        mirror=None,
        data_dir=tmp_path / "data",
        cache_dir=tmp_path / "llm_cache",
        llm_base_url=fake_openai_server.base_url,
        llm_api_key=FAKE_API_KEY,
        llm_model=FAKE_MODEL,
        llm_timeout=2.0,
        llm_max_retries=2,
        llm_concurrency=8,
    )
