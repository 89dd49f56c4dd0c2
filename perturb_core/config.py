"""Settings: paths (mirror, data, cache), the LLM endpoint and options, from file and env.

Precedence (highest first): environment variables, the committed ``perturb_core.toml`` at
the repository root (or the file named by ``PERTURB_CORE_CONFIG``), built-in defaults.
Relative paths in the config file are relative to the file's folder.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, get_args

from perturb_core.errors import ConfigError

__all__ = [
    "ANSWER_FORMATS",
    "OPERATOR_ACTIONS",
    "SERVER_FAMILIES",
    "AnswerFormat",
    "OperatorActions",
    "ServerFamily",
    "Settings",
    "get_settings",
    "repo_root",
]

OperatorActions = Literal["local", "on", "off"]
OPERATOR_ACTIONS: tuple[str, ...] = get_args(OperatorActions)
"""Who may clear the cache, rebuild the data and see server paths in the app (see :class:`Settings`)."""

AnswerFormat = Literal["text", "json", "auto"]
ANSWER_FORMATS: tuple[str, ...] = get_args(AnswerFormat)
"""``text``: the paper's free-text format; ``json``: a JSON schema on every query (text where the
server refuses or ignores it); ``auto``: json if the first query of a batch is accepted, else text."""

ServerFamily = Literal["auto", "llama_cpp", "vllm", "openai"]
SERVER_FAMILIES: tuple[str, ...] = get_args(ServerFamily)
"""Request shape of structured answers; ``auto`` detects it from ``GET /models`` and the URL."""

_ENV = {
    "mirror": "PERTURB_CORE_MIRROR",
    "data_dir": "PERTURB_CORE_DATA_DIR",
    "cache_dir": "PERTURB_CORE_CACHE_DIR",
    "llm_base_url": "OPENAI_BASE_URL",
    "llm_api_key": "OPENAI_API_KEY",
    "llm_model": "PERTURB_CORE_LLM_MODEL",
    "llm_answer_format": "PERTURB_CORE_LLM_ANSWER_FORMAT",
    "llm_server_family": "PERTURB_CORE_LLM_SERVER_FAMILY",
    "llm_max_tokens": "PERTURB_CORE_LLM_MAX_TOKENS",
    "llm_timeout": "PERTURB_CORE_LLM_TIMEOUT",
    "llm_concurrency": "PERTURB_CORE_LLM_CONCURRENCY",
}


def repo_root() -> Path:
    """The folder that holds ``perturb_core/`` (the repository root in a checkout)."""
    return Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    """Resolved settings. ``llm_api_key`` is never shown in ``repr``.

    Attributes:
        mirror: folder holding a mirror of the raw files (``None``: download from URLs).
        data_dir: where ``raw/`` (verified copies) and ``processed/`` (built artifacts) go.
        cache_dir: LLM response cache.
        llm_base_url: OpenAI-compatible endpoint (``None``: the client's default).
        llm_api_key: its key (``None``: no LLM methods).
        llm_model: model name sent to the endpoint.
        llm_timeout: seconds before one LLM request times out.
        llm_max_retries: retries of one request on 429, 5xx or timeouts.
        llm_concurrency: parallel requests in a batch.
        llm_answer_format: ``text`` (the paper's list), ``json`` (a schema) or ``auto``
            (``PERTURB_CORE_LLM_ANSWER_FORMAT``; see :mod:`perturb_core.llm`).
        llm_server_family: request shape of json answers: ``auto`` (detected), ``llama_cpp``,
            ``vllm`` or ``openai`` (``PERTURB_CORE_LLM_SERVER_FAMILY``).
        llm_max_consecutive_failures: a batch stops asking after this many failed calls in a row
            (the rest are recorded as not asked).
        llm_max_tokens: upper bound of every answer's length in tokens (``None``: each method's
            own limit; ``PERTURB_CORE_LLM_MAX_TOKENS``); small local models can ramble.
        enable_corum: include CORUM complexes in the graph (licence CC BY-NC).
        operator_actions: who may use the app's destructive actions (clear the LLM cache, rebuild
            the data) and see server paths: ``"local"`` (default: only while the app listens on
            localhost), ``"on"`` or ``"off"``.
        upload_max_mb: largest file the Data page accepts for an upload, in MB (``[app]
            upload_max_mb`` or ``PERTURB_CORE_UPLOAD_MAX_MB``; keep Streamlit's
            ``server.maxUploadSize`` in ``.streamlit/config.toml`` the same).
    """

    mirror: Path | None
    data_dir: Path
    cache_dir: Path
    llm_base_url: str | None = None
    llm_api_key: str | None = field(default=None, repr=False)
    llm_model: str = "gpt-4o-mini"
    llm_timeout: float = 60.0
    llm_max_retries: int = 3
    llm_concurrency: int = 8
    llm_answer_format: AnswerFormat = "text"
    llm_server_family: ServerFamily = "auto"
    llm_max_consecutive_failures: int = 8
    llm_max_tokens: int | None = None
    enable_corum: bool = False
    operator_actions: OperatorActions = "local"
    upload_max_mb: int = 200

    @property
    def raw_dir(self) -> Path:
        """Verified copies of the raw files."""
        return self.data_dir / "raw"

    @property
    def processed_dir(self) -> Path:
        """Built artifacts (AnnData, parquet, graph)."""
        return self.data_dir / "processed"

    @property
    def llm_configured(self) -> bool:
        """Whether an endpoint or key is set, so LLM methods can be offered."""
        return bool(self.llm_api_key or self.llm_base_url)

    def with_(self, **changes: object) -> Settings:
        """A copy with some fields changed."""
        return replace(self, **changes)  # type: ignore[arg-type]


def _config_file() -> Path:
    env = os.environ.get("PERTURB_CORE_CONFIG")
    return Path(env) if env else repo_root() / "perturb_core.toml"


def _path(value: str, base: Path) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else (base / p).resolve()


def get_settings() -> Settings:
    """Read the config file and the environment into :class:`Settings`.

    Raises:
        ConfigError: the config file is unreadable or a value has the wrong type.
    """
    cfg_path = _config_file()
    cfg: dict[str, object] = {}
    app: dict[str, object] = {}
    if cfg_path.exists():
        try:
            doc = tomllib.loads(cfg_path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {cfg_path}: {exc}") from exc
        for section in ("data", "llm"):
            cfg.update(doc.get(section, {}))
        app = dict(doc.get("app", {}))
    base = cfg_path.parent
    values: dict[str, object] = {}
    for key in ("mirror", "data_dir", "cache_dir"):
        raw = os.environ.get(_ENV[key]) or cfg.get(key)
        if raw not in (None, ""):
            values[key] = _path(str(raw), Path.cwd() if os.environ.get(_ENV[key]) else base)
    values.setdefault("mirror", None)
    values.setdefault("data_dir", repo_root() / "data")
    values.setdefault("cache_dir", Path(values["data_dir"]) / "llm_cache")  # type: ignore[arg-type]
    for key, cfg_key in (("llm_base_url", "base_url"), ("llm_model", "model")):
        raw = os.environ.get(_ENV[key]) or cfg.get(cfg_key)
        if raw:
            values[key] = str(raw)
    values["llm_api_key"] = os.environ.get(_ENV["llm_api_key"]) or None
    for key, choices in (("answer_format", ANSWER_FORMATS), ("server_family", SERVER_FAMILIES)):
        raw = os.environ.get(_ENV[f"llm_{key}"]) or cfg.get(key)
        if raw in (None, ""):
            continue
        value = str(raw).strip().lower().replace("-", "_").replace(".", "_")
        if value not in choices:
            raise ConfigError(
                f"{key} = {raw!r} ({_ENV[f'llm_{key}']} or [llm] in {cfg_path.name}); valid: {', '.join(choices)}"
            )
        values[f"llm_{key}"] = value
    for key, cast in (
        ("timeout", float),
        ("max_retries", int),
        ("concurrency", int),
        ("max_consecutive_failures", int),
        ("max_tokens", int),
    ):
        env = _ENV.get(f"llm_{key}")
        raw = (os.environ.get(env) if env else None) or cfg.get(key)
        if raw not in (None, ""):
            try:
                values[f"llm_{key}"] = cast(raw)  # type: ignore[arg-type]
            except (TypeError, ValueError) as exc:
                where = f"{env} or {cfg_path}" if env else f"{cfg_path}"
                raise ConfigError(f"[llm] {key} = {raw!r} is not a {cast.__name__} ({where})") from exc
    corum = os.environ.get("PERTURB_CORE_ENABLE_CORUM", cfg.get("enable_corum", False))
    values["enable_corum"] = str(corum).lower() in ("1", "true", "yes")
    actions = os.environ.get("PERTURB_CORE_OPERATOR_ACTIONS") or app.get("operator_actions") or "local"
    if actions not in OPERATOR_ACTIONS:
        raise ConfigError(
            f"operator_actions = {actions!r} (PERTURB_CORE_OPERATOR_ACTIONS or [app] in {cfg_path.name}); "
            f"valid: {', '.join(OPERATOR_ACTIONS)}"
        )
    values["operator_actions"] = actions
    upload = os.environ.get("PERTURB_CORE_UPLOAD_MAX_MB") or app.get("upload_max_mb") or 200
    try:
        values["upload_max_mb"] = int(upload)  # type: ignore[call-overload]
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"upload_max_mb = {upload!r} (PERTURB_CORE_UPLOAD_MAX_MB or [app] in {cfg_path.name}) "
            "is not a whole number of MB"
        ) from exc
    if values["upload_max_mb"] < 1:  # type: ignore[operator]
        raise ConfigError(f"upload_max_mb = {upload!r} must be at least 1 (MB)")
    return Settings(**values)  # type: ignore[arg-type]
