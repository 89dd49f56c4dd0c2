"""JSONL files of perturb_core.llm: locked appends across processes, tolerant reads."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from perturb_core.llm import append_jsonl, read_jsonl


def _append_many(path: str, worker: int) -> None:
    for i in range(200):
        append_jsonl(path, {"worker": worker, "i": i, "pad": "x" * 500})


def test_append_jsonl_is_safe_across_processes(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "nested" / "queries.jsonl"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append_many, args=(str(path), w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=30)
    assert all(p.exitcode == 0 for p in procs)
    lines = path.read_text().splitlines()
    assert len(lines) == 800
    records = [json.loads(line) for line in lines]
    assert sorted((r["worker"], r["i"]) for r in records) == [(w, i) for w in range(4) for i in range(200)]


def test_append_jsonl_recovers_from_partial_line(tmp_path: Path) -> None:
    import numpy as np

    path = tmp_path / "log.jsonl"
    append_jsonl(path, {"a": 1})
    with open(path, "a") as fh:
        fh.write('{"half": ')  # a writer killed mid-line
    append_jsonl(path, {"b": np.float32(0.5), "c": np.arange(2), "p": Path("x")})
    assert read_jsonl(path) == [{"a": 1}, {"b": 0.5, "c": [0, 1], "p": "x"}]
    assert read_jsonl(tmp_path / "missing.jsonl") == []
    with pytest.raises(TypeError, match="cannot write object"):
        append_jsonl(path, {"bad": object()})
