"""Settings: config file defaults, environment overrides, key hygiene."""

from __future__ import annotations

from pathlib import Path

import pytest

from perturb_core.config import get_settings, repo_root
from perturb_core.errors import ConfigError


def test_defaults_come_from_the_committed_file(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("PERTURB_CORE_CONFIG", "PERTURB_CORE_MIRROR", "PERTURB_CORE_DATA_DIR"):
        monkeypatch.delenv(var, raising=False)  # the defaults, whatever the shell exports
    s = get_settings()
    assert s.mirror == (repo_root() / ".." / "shared" / "data" / "raw").resolve()
    assert s.data_dir == repo_root() / "data"
    assert s.raw_dir == s.data_dir / "raw" and s.processed_dir == s.data_dir / "processed"
    assert not s.enable_corum


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PERTURB_CORE_MIRROR", str(tmp_path / "m"))
    monkeypatch.setenv("PERTURB_CORE_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("PERTURB_CORE_CACHE_DIR", str(tmp_path / "c"))
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    monkeypatch.setenv("PERTURB_CORE_LLM_MODEL", "my-model")
    s = get_settings()
    assert (s.mirror, s.data_dir, s.cache_dir) == (tmp_path / "m", tmp_path / "d", tmp_path / "c")
    assert s.llm_base_url == "http://127.0.0.1:9/v1" and s.llm_model == "my-model" and s.llm_configured
    assert "sk-secret" not in repr(s)


def test_bad_config_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[llm]\ntimeout = 'soon'\n")
    monkeypatch.setenv("PERTURB_CORE_CONFIG", str(cfg))
    with pytest.raises(ConfigError, match="timeout = 'soon' is not a float"):
        get_settings()
    cfg.write_text("[llm\n")
    with pytest.raises(ConfigError, match="cannot read config file"):
        get_settings()
