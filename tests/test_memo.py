"""Memo: derived values built once per key, bounded, safe under threads."""

from __future__ import annotations

import threading
import time

import pytest

from perturb_core.memo import Memo


def test_builds_once_per_key() -> None:
    memo = Memo()
    calls: list[str] = []

    def build(key: str) -> str:
        calls.append(key)
        return key.upper()

    assert memo.get("a", lambda: build("a")) == "A"
    assert memo.get("a", lambda: build("a")) == "A"
    assert memo.get(("b", 1), lambda: build("b")) == "B"
    assert calls == ["a", "b"]
    assert len(memo) == 2 and "a" in memo and ("b", 1) in memo and "c" not in memo
    memo.clear()
    assert len(memo) == 0 and "a" not in memo
    assert memo.get("a", lambda: build("a")) == "A"
    assert calls == ["a", "b", "a"]
    assert repr(memo) == "Memo(1 values, maxsize=None)"


def test_lru_bound_drops_the_least_recently_used() -> None:
    memo = Memo(maxsize=2)
    memo.get("a", lambda: 1)
    memo.get("b", lambda: 2)
    assert memo.get("a", lambda: -1) == 1  # a is now the most recent
    memo.get("c", lambda: 3)  # evicts b
    assert "a" in memo and "c" in memo and "b" not in memo and len(memo) == 2
    assert memo.get("b", lambda: 20) == 20  # rebuilt, evicts a
    assert "a" not in memo


def test_build_errors_store_nothing() -> None:
    memo = Memo()

    def fail() -> int:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        memo.get("k", fail)
    assert "k" not in memo
    assert memo.get("k", lambda: 5) == 5


@pytest.mark.parametrize("maxsize", [0, -1])
def test_bad_maxsize(maxsize: int) -> None:
    with pytest.raises(ValueError, match="maxsize must be >= 1 or None"):
        Memo(maxsize=maxsize)


def test_threads_build_each_key_once() -> None:
    memo = Memo(maxsize=8)
    counts: dict[int, int] = {}
    counts_lock = threading.Lock()
    start = threading.Barrier(6)
    results: list[list[object]] = [[] for _ in range(6)]

    def build(key: int) -> object:
        with counts_lock:
            counts[key] = counts.get(key, 0) + 1
        time.sleep(0.01)  # a slow build: other threads arrive while it runs
        return ("value", key)

    def worker(slot: int) -> None:
        start.wait()
        for key in (0, 1, 2, 0, 1, 2):
            results[slot].append(memo.get(key, lambda key=key: build(key)))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert not any(t.is_alive() for t in threads)
    assert counts == {0: 1, 1: 1, 2: 1}
    first = results[0]
    assert all(r == first for r in results)
    assert all(a is b for r in results for a, b in zip(r, first, strict=True))  # the same objects
