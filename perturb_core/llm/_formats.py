"""Answer formats (text / json / auto), server families and the structured-output request each family understands.

``text`` is the paper's free-text format (parsed by the method's own parser). ``json`` asks for a
JSON object that follows a schema (for LGR: the candidate pool as an enum; for CORE: a probability
in [0, 1]); the request shape differs per server family:

- ``llama_cpp`` (llama-cpp-python's server): ``response_format={"type": "json_object", "schema": S}``;
- ``vllm``: ``response_format={"type": "json_schema", "json_schema": {...}}``, which vLLM has accepted
  since 0.6 (its older ``guided_json`` extra field was deprecated in 0.10.2 and removed in 0.12, so it
  is not sent);
- ``openai`` (OpenAI, Ollama >= 0.5 and other compatible servers):
  ``response_format={"type": "json_schema", "json_schema": {"name", "schema", "strict"}}``.

Whatever the server does with it, the answer is validated client-side (never trusted). A server
that refuses the request (HTTP 400/422) or ignores it (the answer is not valid JSON of the
schema's shape) gets the text prompt instead, and the record says which format answered.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from perturb_core.config import ANSWER_FORMATS, SERVER_FAMILIES, AnswerFormat, ServerFamily
from perturb_core.errors import check_choice

__all__ = [
    "ANSWER_FORMATS",
    "SERVER_FAMILIES",
    "AnswerFormat",
    "JSONAnswerError",
    "ServerFamily",
    "detect_family",
    "load_json_object",
    "structured_options",
]


_OWNER_FAMILY = {"llamacpp": "llama_cpp", "llama_cpp": "llama_cpp", "me": "llama_cpp", "vllm": "vllm"}


class JSONAnswerError(ValueError):
    """The answer of a json-format request is not the JSON object asked for (the server ignored the schema)."""


def check_answer_format(value: object) -> str:
    """The canonical answer format (``text``, ``json`` or ``auto``); an unknown one lists the valid ones."""
    return check_choice("answer format", value, ANSWER_FORMATS)


def check_server_family(value: object) -> str:
    """The canonical server family; an unknown one lists the valid ones."""
    return check_choice("server family", value, SERVER_FAMILIES)


def detect_family(base_url: str, owners: tuple[str, ...] = ()) -> str:
    """The server family of an endpoint, from the ``owned_by`` of its models and its URL.

    Args:
        base_url: the endpoint (``.../v1``).
        owners: ``owned_by`` of the models ``GET /models`` listed (empty when not known).

    Returns:
        ``llama_cpp`` (llama-cpp-python reports ``owned_by`` ``"me"``, llama.cpp's own server
        ``"llamacpp"``), ``vllm``, or ``openai`` (OpenAI, Ollama and anything else: the
        OpenAI request shape is the most widely understood).
    """
    for owner in owners:
        family = _OWNER_FAMILY.get(str(owner).strip().lower())
        if family is not None:
            return family
    port = urlsplit(base_url).port
    if not owners and port == 8080:  # llama.cpp's own server's default port
        return "llama_cpp"
    return "openai"


def structured_options(family: str, schema: Mapping[str, Any], name: str) -> dict[str, Any]:
    """Request options that ask ``family``'s server for a JSON answer following ``schema``.

    Args:
        family: ``llama_cpp``, ``vllm`` or ``openai`` (not ``auto``: resolve it first).
        schema: a JSON schema (an object).
        name: the schema's name (letters, digits, ``_``), required by the OpenAI shape.

    Returns:
        Options for ``chat.completions.create`` (``response_format``).
    """
    schema = dict(schema)
    if family == "llama_cpp":
        return {"response_format": {"type": "json_object", "schema": schema}}
    return {
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": name, "schema": schema, "strict": True},
        }
    }


def load_json_object(text: str | None) -> dict[str, Any]:
    """The JSON object of a json-format answer (a markdown code fence around it is tolerated).

    Raises:
        JSONAnswerError: the answer is empty, not JSON, or not a JSON object.
    """
    body = (text or "").strip()
    if body.startswith("```"):
        body = body.strip("`").removeprefix("json").strip()
    try:
        value = json.loads(body)
    except ValueError:
        raise JSONAnswerError(f"the answer is not valid JSON: {body[:80]!r}") from None
    if not isinstance(value, dict):
        raise JSONAnswerError(f"the answer is JSON but {type(value).__name__}, not an object")
    return value
