"""A fake OpenAI-compatible HTTP server on 127.0.0.1 for tests: it answers from the prompt it receives.

No real model is involved: a ``responder`` callable turns each request body into an answer,
so a test decides what "the model" says, which HTTP errors it returns and how slow it is.

Server (``FakeOpenAI``):
    - ``POST /v1/chat/completions``: passes the request JSON to ``server.responder`` and answers
      in the OpenAI ``chat.completion`` schema. The responder returns
      ``str`` (the answer), ``None`` (``content: null``), ``(status, body_dict)`` (an HTTP
      error, e.g. ``(429, error_body("slow down"))``), ``(status, body_dict, headers)`` (e.g.
      ``(429, error_body("slow down"), {"Retry-After": "3"})``) or ``bytes`` (a raw body sent as is with
      HTTP 200, e.g. truncated JSON: see :func:`raw_completion`). It may ``time.sleep`` to force a
      client timeout.
    - ``GET /v1/models``: lists ``server.model_ids``.
    - ``server.delay_s``: seconds slept before every chat answer (simulated latency).
    - ``server.api_key``: when set, requests without ``Authorization: Bearer <api_key>`` get
      an OpenAI-style 401 (which echoes the wrong key, as a careless server would).
    - ``server.requests``: the chat request bodies received, in order (thread-safe).
    - ``server.base_url``: ``"http://127.0.0.1:PORT/v1"``.
    Use it as a context manager: ``with FakeOpenAI(responder) as server: ...``.

Responders: ``echo_responder`` (default; answers ``"echo: <last user message>"``),
``scripted(*replies)`` (replies in turn, then repeats the last), ``error_body(message)``,
``refuse_json(responder)`` (HTTP 400 to any structured-output request, like a server without
json support), ``model_not_found(model)`` (a vLLM/OpenAI-style 404). ``lgr_json_answer(names)``
is a well-formed json-format LGR answer; ``json_requested(request)`` says whether a request
carries a structured-output field.

Pytest fixtures (in :mod:`perturb_core.testing.pytest_plugin`; ``pytest_plugins = ["perturb_core.testing.pytest_plugin"]``):
    - ``fake_openai_server``: a running :class:`FakeOpenAI` with the echo responder.
    - ``fake_llm_settings``: :class:`perturb_core.config.Settings` pointing at that server
      (model ``FAKE_MODEL``, key ``FAKE_API_KEY``, cache in ``tmp_path/llm_cache``, timeout
      2 s, 2 retries, concurrency 8). Change fields with ``settings.with_(...)``.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "FAKE_API_KEY",
    "FAKE_MODEL",
    "FakeOpenAI",
    "Responder",
    "echo_responder",
    "error_body",
    "json_requested",
    "last_user_message",
    "lgr_candidates",
    "lgr_final_answer",
    "lgr_json_answer",
    "model_not_found",
    "raw_completion",
    "refuse_json",
    "scripted",
]

FAKE_MODEL = "fake-model"
FAKE_API_KEY = "sk-fake-test-0123456789abcdef"

Reply = str | None | bytes | tuple[int, dict[str, Any]] | tuple[int, dict[str, Any], dict[str, str]]
Responder = Callable[[dict[str, Any]], Reply]


def error_body(message: str, type_: str = "server_error", code: str | None = None) -> dict[str, Any]:
    """An OpenAI-style error body: ``{"error": {"message", "type", "param", "code"}}``."""
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def raw_completion(**fields: Any) -> bytes:
    """A raw HTTP 200 body: a well-formed ``chat.completion`` with ``fields`` replaced, as JSON bytes.

    E.g. ``raw_completion(choices={"0": 1})`` (``choices`` not a list); slice the result
    (``raw_completion()[:40]``) for a truncated body.
    """
    body: dict[str, Any] = {
        "id": "chatcmpl-fake-raw",
        "object": "chat.completion",
        "created": 0,
        "model": FAKE_MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "ok", "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
    }
    body.update(fields)
    return json.dumps(body).encode()


def last_user_message(request: dict[str, Any]) -> str:
    """Content of the last ``user`` message of a chat request (``""`` if none)."""
    users = [m.get("content", "") for m in request.get("messages", []) if m.get("role") == "user"]
    return str(users[-1]) if users else ""


def lgr_candidates(request: dict[str, Any]) -> tuple[list[str], int, str]:
    """The candidate names, k and anchor drug of an LGR selector prompt, as a fake model reads them."""
    text = last_user_message(request)
    block = text.split("<candidates>\n", 1)[1].split("\n</candidates>", 1)[0]
    k = int(re.search(r"\(k\): (\d+)", text).group(1))  # type: ignore[union-attr]
    anchor = re.search(r"Anchor drug: (.+)", text).group(1)  # type: ignore[union-attr]
    return [line[2:] for line in block.splitlines()], k, anchor


def lgr_final_answer(names: list[str], justification: str = "related.") -> str:
    """A well-formed LGR answer: ``names`` as a numbered ``<Final Answer>`` list."""
    return (
        "<Final Answer>\n"
        + "\n".join(f"{i}. {n}: {justification}" for i, n in enumerate(names, 1))
        + "\n</Final Answer>"
    )


def lgr_json_answer(names: list[str], justification: str = "related.") -> str:
    """A well-formed json-format LGR answer naming ``names``."""
    return json.dumps({"neighbours": [{"name": n, "justification": justification} for n in names]})


def json_requested(request: dict[str, Any]) -> bool:
    """Whether a chat request asks for a structured (json) answer."""
    return "response_format" in request or "guided_json" in request


def refuse_json(responder: Responder) -> Responder:
    """``responder``, except that structured-output requests get HTTP 400 (a server without json support)."""

    def respond(request: dict[str, Any]) -> Reply:
        if json_requested(request):
            return 400, error_body("response_format is not supported", "invalid_request_error")
        return responder(request)

    return respond


def model_not_found(model: str) -> Reply:
    """The 404 a vLLM or OpenAI server gives for a model it does not serve."""
    return 404, error_body(f"The model `{model}` does not exist.", "invalid_request_error", "model_not_found")


def echo_responder(request: dict[str, Any]) -> Reply:
    """Answer ``"echo: <last user message>"``."""
    return f"echo: {last_user_message(request)}"


def scripted(*replies: Reply) -> Responder:
    """A responder giving ``replies`` in turn (across threads), then repeating the last one."""
    if not replies:
        raise ValueError("scripted() needs at least one reply")
    lock = threading.Lock()
    queue = list(replies)

    def respond(request: dict[str, Any]) -> Reply:
        with lock:
            return queue.pop(0) if len(queue) > 1 else queue[0]

    return respond


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128
    fake: FakeOpenAI

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet when a client hung up (e.g. after its timeout)."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """No access log on stderr."""

    def _send(self, status: int, body: dict[str, Any] | bytes, headers: dict[str, str] | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        try:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up
            pass

    def do_GET(self) -> None:
        if self.path.rstrip("/") != "/v1/models":
            self._send(404, error_body(f"no route GET {self.path}", "invalid_request_error"))
            return
        models = [
            {"id": m, "object": "model", "created": 0, "owned_by": self.server.fake.owned_by}
            for m in self.server.fake.model_ids
        ]
        self._send(200, {"object": "list", "data": models})

    def do_POST(self) -> None:
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._send(404, error_body(f"no route POST {self.path}", "invalid_request_error"))
            return
        try:
            request = json.loads(raw)
        except json.JSONDecodeError:
            self._send(400, error_body("request body is not JSON", "invalid_request_error"))
            return
        fake._record(request)
        if fake.api_key is not None:
            given = self.headers.get("Authorization", "").removeprefix("Bearer ")
            if given != fake.api_key:
                body = error_body(
                    f"Incorrect API key provided: {given}", "invalid_request_error", "invalid_api_key"
                )
                self._send(401, body)
                return
        if fake.delay_s:
            time.sleep(fake.delay_s)
        reply = fake.responder(request)
        if isinstance(reply, tuple):
            self._send(*reply)
            return
        if isinstance(reply, bytes):
            self._send(200, reply)
            return
        self._send(200, fake._completion(request, reply))


class FakeOpenAI:
    """A fake OpenAI-compatible server running in a background thread (see the module docstring).

    Args:
        responder: turns a chat request body into a reply; default :func:`echo_responder`.
        delay_s: seconds slept before each chat answer.
        api_key: when set, the bearer key every request must carry (else HTTP 401).
        model_ids: models listed by ``GET /v1/models``.
        owned_by: their ``owned_by`` (e.g. ``"me"`` as llama-cpp-python says, ``"vllm"``).
    """

    def __init__(
        self,
        responder: Responder = echo_responder,
        *,
        delay_s: float = 0.0,
        api_key: str | None = None,
        model_ids: tuple[str, ...] = (FAKE_MODEL,),
        owned_by: str = "fake",
    ) -> None:
        self.responder = responder
        self.owned_by = owned_by
        self.delay_s = delay_s
        self.api_key = api_key
        self.model_ids = model_ids
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1`` (the server must be started)."""
        if self._httpd is None:
            raise RuntimeError("FakeOpenAI is not started; use it as a context manager or call start()")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    @property
    def n_requests(self) -> int:
        """Number of chat requests received so far."""
        with self._lock:
            return len(self.requests)

    def _record(self, request: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append(request)

    def _completion(self, request: dict[str, Any], content: str | None) -> dict[str, Any]:
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in request.get("messages", []))
        completion_tokens = len((content or "").split())
        return {
            "id": f"chatcmpl-fake-{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.get("model", FAKE_MODEL),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    def reset(self) -> None:
        """Forget the recorded requests."""
        with self._lock:
            self.requests.clear()

    def start(self) -> FakeOpenAI:
        """Bind a free port on 127.0.0.1 and serve in a daemon thread."""
        if self._httpd is None:
            self._httpd = _Server(("127.0.0.1", 0), _Handler)
            self._httpd.fake = self
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, args=(0.02,), name="fake-openai", daemon=True
            )
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving (requests still sleeping in handler threads are abandoned)."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
