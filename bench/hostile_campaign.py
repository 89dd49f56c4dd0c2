"""Hostile-input campaign: throw bad input at every command-line entry point and count what goes wrong.

Usage (from the repository root, on built data)::

    python bench/hostile_campaign.py                 # prints the counts and every failing case
    python bench/hostile_campaign.py --json out.json # also writes every case's outcome

Each case runs ``python -m perturb_core ...`` in-process (``perturb_core.cli.main``) against a
private data folder (symlinks to the built artifacts, so a damaged copy never touches the real
one) and, for LLM cases, a fake OpenAI-compatible server that misbehaves in one way. An outcome
is counted as

- ``traceback``: an exception other than ``SystemExit`` left ``main`` (a user would see a traceback);
- ``hang``: the case ran longer than its limit: 30 s, or for an LLM query the stated worst case
  of a hanging endpoint, two timed-out attempts (2 x the shipped 60 s timeout) plus 15 s;
- ``silently_accepted``: hostile input ended with exit status 0 where a refusal was due, or an LLM
  failure produced a prediction not labelled as a fallback;
- ``unclear_message``: refused, but the message does not start with ``error:`` (or argparse's
  ``usage:``) or does not name the bad value;
- ``half_written``: a temporary or partial file was left behind in the data folder or ``--out``;
- ``key_leak``: the API key appeared in anything printed.

The counts of the first run of this script (2026-11-30) are in docs/RELIABILITY.md.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

import anndata as ad  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from _machine import machine  # noqa: E402

from perturb_core.cli import main  # noqa: E402
from perturb_core.config import get_settings  # noqa: E402
from perturb_core.testing.fake_openai import (  # noqa: E402
    FakeOpenAI,
    error_body,
    raw_completion,
    scripted,
)

KEY = "sk-campaign-SECRET-0123456789"
LIMIT_S = 30
LLM_LIMIT_S = 2 * 60 + 15  # MAX_TIMEOUTS x the shipped [llm] timeout, plus backoff
SIG = [
    "lgr",
    "predict",
    "--dataset",
    "sciplex",
    "--cell-line",
    "A549",
    "--drug",
    "AR-42",
    "--selector",
    "chem_knn_retrieval",
]
KD = ["core", "explain", "--dataset", "perturbqa-k562", "--perturbation", "AARS2", "--gene", "MT-ND5"]
EVAL = ["lgr", "evaluate", "--dataset", "sciplex", "--regime", "unseen-drug", "--n-boot", "10"]
CEVAL = ["core", "evaluate", "--dataset", "perturbqa-k562", "--methods", "gene_frequency", "--n-boot", "10"]


@dataclass
class Case:
    """One hostile input: the command, what to prepare, and what must appear in the refusal."""

    category: str
    argv: list[str]
    names: str = ""  # a substring the message must contain (the bad value)
    setup: Callable[[Path], None] | None = None  # gets the private data folder
    llm: Callable[[FakeOpenAI], None] | None = None  # configures the fake server
    env: dict[str, str] = field(default_factory=dict)
    expect: str = "refuse"  # "refuse" | "fallback" (exit 0 with every LLM failure labelled)
    limit_s: int = LIMIT_S


class _Timeout(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise _Timeout


def _mirror(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for item in src.iterdir():
        if item.is_dir():
            _mirror(item, dst / item.name)
        elif not (dst / item.name).exists():
            os.symlink(item, dst / item.name)


def _replace(rel: str, content: bytes | pd.DataFrame) -> Callable[[Path], None]:
    def setup(data: Path) -> None:
        path = data / "processed" / rel
        path.unlink()
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            content.to_parquet(path)

    return setup


def _file(name: str, make: Callable[[Path], None]) -> Callable[[Path], None]:
    def setup(data: Path) -> None:
        make(data.parent / name)

    return setup


def _h5ad(obs: dict, x: np.ndarray) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        a = ad.AnnData(X=x, obs=pd.DataFrame(obs, index=[f"r{i}" for i in range(len(x))]))
        a.var_names = [f"G{i}" for i in range(x.shape[1])]
        a.write_h5ad(path)

    return make


GARBAGE = b"\x00garbage\xff" * 50


def cases() -> list[Case]:
    """The campaign's table (about 120 cases)."""
    out: list[Case] = []
    add = out.append
    # -- names: unknown or mistyped values of every name option
    for argv, bad in [
        (
            ["lgr", "predict", "--dataset", "tahoee", "--cell-line", "A549", "--drug", "x", *SIG[-2:]],
            "tahoee",
        ),
        ([*SIG[:4], "--cell-line", "A5490", "--drug", "AR-42", *SIG[-2:]], "A5490"),
        ([*SIG[:6], "--drug", "Trametinibb", *SIG[-2:]], "Trametinibb"),
        ([*SIG, "--selector", "llmm"], "llmm"),
        ([*SIG, "--regime", "unseen"], "unseen"),
        ([*SIG, "--aggregation", "median"], "median"),
        ([*KD[:4], "--perturbation", "NOTAGENE", "--gene", "MT-ND5"], "NOTAGENE"),
        ([*KD[:6], "--gene", "MT-ND55"], "MT-ND55"),
        ([*KD, "--method", "core_magic"], "core_magic"),
        ([*EVAL, "--methods", "cell_mean,nope"], "nope"),
        ([*EVAL, "--methods", ""], ""),
        (["core", "evaluate", "--dataset", "tahoe", "--methods", "core_voting"], "tahoe"),
        (["data", "import", str(ROOT / "README.md"), "--name", "x"], "README.md"),
    ]:
        add(Case("names", argv, bad))
    # -- numbers: every numeric option outside its range or not a number
    numeric = [
        (SIG, "--k", ["0", "-1", "1000000000", "ten", "1.5"]),
        (SIG, "--seed", ["-1", str(2**64)]),
        (SIG, "--similarity-power", ["-1", "nan", "inf", "1e308"]),
        (SIG, "--hybrid-min-k", ["-1", "1000000000"]),
        (SIG, "--top-genes", ["0", "1000000000"]),
        ([*EVAL, "--methods", "cell_mean"], "--n-boot", ["0", "1000000000"]),
        ([*EVAL, "--methods", "cell_mean"], "--max-queries", ["0", "-5"]),
        ([*EVAL, "--methods", "cell_mean"], "--test-fraction", ["0", "1", "2", "nan"]),
        ([*EVAL, "--methods", "cell_mean"], "--concurrency", ["0"]),
        (CEVAL, "--max-pairs", ["0"]),
        (CEVAL, "--seed", ["-1", str(2**64)]),
        (KD, "--budget", ["0", "1000000000"]),
    ]
    for base, flag, values in numeric:
        for v in values:
            add(Case("numbers", [*base, flag, v], {"1e308": "1e+308"}.get(v, v)))
    # -- files given by the user
    out_dir = ["--out"]
    for name, make, bad in [
        ("missing.h5ad", lambda p: None, "missing.h5ad"),
        ("empty.h5ad", lambda p: p.write_bytes(b""), "empty.h5ad"),
        ("garbage.h5ad", lambda p: p.write_bytes(GARBAGE), "garbage.h5ad"),
        ("zero.h5ad", lambda p: os.symlink("/dev/zero", p), "zero.h5ad"),
        ("fifo.h5ad", lambda p: os.mkfifo(p), "fifo.h5ad"),
        ("nocols.h5ad", _h5ad({"a": ["x"]}, np.zeros((1, 2), np.float32)), "nocols.h5ad"),
        (
            "text.h5ad",
            _h5ad({"cell_line": ["A"], "drug": ["d"]}, np.array([["a", "b"]], dtype=object)),
            "text.h5ad",
        ),
        ("norda", lambda p: p.mkdir(), "norda"),
    ]:
        add(Case("files", ["data", "import", "@" + name, "--name", "mine"], bad, setup=_file(name, make)))
    for bad_name in ["sci_plex", "open-problems", "../escape", "", "a" * 300]:
        add(
            Case(
                "files",
                ["data", "import", "@good.h5ad", "--name", bad_name],
                bad_name[:50],
                setup=_file(
                    "good.h5ad", _h5ad({"cell_line": ["A"], "drug": ["d"]}, np.ones((1, 2), np.float32))
                ),
            )
        )
    add(
        Case(
            "files",
            [*EVAL, "--methods", "cell_mean", *out_dir, "@outdir"],
            "outdir",
            setup=_file("outdir", lambda p: p.mkdir()),
        )
    )
    add(Case("files", [*EVAL, "--methods", "cell_mean", *out_dir, "/proc/campaign.csv"], "/proc"))
    # -- damaged or foreign built artifacts
    for rel, content, argv in [
        ("kg_edges.parquet", GARBAGE, KD),
        ("kg_edges.parquet", pd.DataFrame({"a": [1]}), KD),
        ("kg_nodes.parquet", GARBAGE, KD),
        ("labels/perturbqa-k562.de.parquet", GARBAGE, KD),
        ("labels/perturbqa-k562.de.parquet", pd.DataFrame({"pert": ["a"]}), KD),
        ("labels/tahoe.parquet", GARBAGE, KD),
        ("drugs.parquet", pd.DataFrame({"name": ["x"]}), SIG),
        ("drug_fingerprints.npz", GARBAGE, SIG),
        ("sciplex.h5ad", GARBAGE, SIG),
        ("kg_dropped.json", b"[1, 2]", ["data", "info", "--json"]),
    ]:
        add(Case("artifacts", list(argv), rel.split("/")[-1], setup=_replace(rel, content)))
    add(Case("artifacts", list(SIG), "sciplex.h5ad", setup=_foreign_sciplex))
    add(Case("artifacts", list(SIG), "datasets.json", setup=_user_registry(b"[1, 2]")))
    add(
        Case(
            "artifacts",
            list(SIG),
            "datasets.json",
            setup=_user_registry(b'{"x": {"file": "../../etc/passwd"}}'),
        )
    )
    # -- LLM endpoints that misbehave (the query must end labelled as a fallback, or be refused)
    llm = [*SIG, "--selector", "llm", "--json"]
    for label, configure in [
        ("garbage-200", lambda s: setattr(s, "responder", scripted(b"{not json"))),
        ("truncated", lambda s: setattr(s, "responder", scripted(raw_completion(choices="x")))),
        ("500", lambda s: setattr(s, "responder", scripted((500, error_body("boom"))))),
        ("429-retry-after-100", lambda s: setattr(s, "responder", scripted((429, error_body("slow"))))),
        ("401", lambda s: setattr(s, "api_key", "sk-other")),
        (
            "hostile-answer",
            lambda s: setattr(s, "responder", scripted("<Final Answer>\n1. DROP TABLE: x\n" * 5000)),
        ),
        ("empty-answer", lambda s: setattr(s, "responder", scripted(None))),
        ("slow", lambda s: setattr(s, "delay_s", 120)),
    ]:
        add(Case("llm", llm, label, llm=configure, expect="fallback", limit_s=LLM_LIMIT_S))
    for url in [
        "not a url",
        "ftp://example.org/v1",
        "http://127.0.0.1:9/v1",
        "http://no-such-host.invalid/v1",
    ]:
        add(Case("llm", llm, url, env={"OPENAI_BASE_URL": url}, expect="fallback", limit_s=LLM_LIMIT_S))
    return out


def _foreign_sciplex(data: Path) -> None:
    _replace("sciplex.h5ad", b"")(data)
    (data / "processed" / "sciplex.h5ad").unlink()
    _h5ad({"cell_line": ["A549"], "drug": ["AR-42"]}, np.ones((1, 2), np.float32))(
        data / "processed" / "sciplex.h5ad"
    )


def _user_registry(content: bytes) -> Callable[[Path], None]:
    def setup(data: Path) -> None:
        (data / "user").mkdir(exist_ok=True)
        (data / "user" / "datasets.json").write_bytes(content)

    return setup


def _leftovers(folder: Path) -> list[str]:
    return [
        str(p.relative_to(folder)) for p in folder.rglob("*") if p.name.endswith(".tmp") or ".tmp." in p.name
    ]


def run_case(case: Case, real: Path, work: Path, server: FakeOpenAI) -> dict:
    """Run one case in a private data folder; return its outcome flags."""
    data = work / "data"
    _mirror(real / "processed", data / "processed")
    if case.setup:
        case.setup(data)
    argv = [a.replace("@", str(work) + "/", 1) if a.startswith("@") else a for a in case.argv]
    server.reset()
    server.responder, server.api_key, server.delay_s = scripted("<Final Answer>\n</Final Answer>"), KEY, 0
    if case.llm:
        case.llm(server)
    env = {
        "PERTURB_CORE_DATA_DIR": str(data),
        "PERTURB_CORE_CACHE_DIR": str(work / "cache"),
        "OPENAI_BASE_URL": server.base_url,
        "OPENAI_API_KEY": KEY,
        "PERTURB_CORE_LLM_MODEL": "fake-model",
        **case.env,
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    out, err = io.StringIO(), io.StringIO()
    crash = hang = False
    status: int | None = None
    t0 = time.perf_counter()
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(case.limit_s)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = main(argv)
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 2
    except _Timeout:
        hang = True
    except BaseException as exc:
        crash = True
        err.write(f"Traceback: {type(exc).__name__}: {exc}")
    finally:
        signal.alarm(0)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    seconds = time.perf_counter() - t0
    text_out, text_err = out.getvalue(), err.getvalue()
    first = text_err.strip().splitlines()[-1:] or [""]
    refused = status not in (0, None)
    silent = unclear = False
    if case.expect == "refuse":
        silent = status == 0
        clear = text_err.lstrip().startswith(("error:", "usage:")) or "error:" in text_err
        unclear = refused and (not clear or (case.names.lower() not in text_err.lower()))
    elif status == 0:
        try:
            result = json.loads(text_out)
        except ValueError:
            result = {}
        silent = not (result.get("fallback") or (result.get("llm") or {}).get("error"))
    else:
        unclear = not text_err.lstrip().startswith("error:")
    return {
        "category": case.category,
        "argv": case.argv,
        "status": status,
        "seconds": round(seconds, 2),
        "traceback": crash or "Traceback" in text_err,
        "hang": hang,
        "silently_accepted": silent,
        "unclear_message": unclear and not crash and not hang,
        "half_written": _leftovers(work),
        "key_leak": KEY in text_out or KEY in text_err,
        "message": first[0][:200],
    }


def main_campaign() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", type=Path, help="write every case's outcome here")
    ap.add_argument("--only", help="run only this category")
    args = ap.parse_args()
    real = get_settings().data_dir
    table = [c for c in cases() if args.only in (None, c.category)]
    results = []
    with FakeOpenAI() as server, tempfile.TemporaryDirectory() as tmp:
        for i, case in enumerate(table):
            work = Path(tmp) / f"case{i}"
            work.mkdir()
            results.append(run_case(case, real, work, server))
            print(f"\r{i + 1}/{len(table)} cases", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    kinds = ["traceback", "hang", "silently_accepted", "unclear_message", "half_written", "key_leak"]
    counts = {c: Counter() for c in sorted({r["category"] for r in results})}
    for r in results:
        counts[r["category"]]["cases"] += 1
        for k in kinds:
            counts[r["category"]][k] += bool(r[k])
    print(f"Hostile-input campaign, {time.strftime('%Y-%m-%d')}, {machine()}\n")
    print("| category | cases | " + " | ".join(kinds) + " |")
    print("|---|" + "---|" * (len(kinds) + 1))
    for cat, c in counts.items():
        print(f"| {cat} | {c['cases']} | " + " | ".join(str(c[k]) for k in kinds) + " |")
    total = sum(counts.values(), Counter())
    print(f"| **all** | {total['cases']} | " + " | ".join(str(total[k]) for k in kinds) + " |")
    bad = [r for r in results if any(r[k] for k in kinds)]
    for r in bad:
        flags = ", ".join(k for k in kinds if r[k])
        print(f"\n- {flags}: `{' '.join(r['argv'])}` (exit {r['status']}, {r['seconds']} s): {r['message']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main_campaign())
