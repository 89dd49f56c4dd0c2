"""Derived state kept on the object it derives from (no module-level caches).

A :class:`Memo` is a small thread-safe table of values built once per key. Loaded datasets,
label sets and method indexes carry one as a field, so a derived structure (an LGR index, a
CORE index, a split's tensor) lives and dies with the object it was computed from; Streamlit
serves sessions from several threads, hence the lock.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

__all__ = ["Memo"]

T = TypeVar("T")


class Memo:
    """Values built once per key, the oldest dropped past ``maxsize`` (``None``: unbounded).

    Builds run under the table's lock, so two threads asking for the same key build it once.
    """

    def __init__(self, maxsize: int | None = None) -> None:
        if maxsize is not None and maxsize < 1:
            raise ValueError(f"maxsize must be >= 1 or None; got {maxsize}")
        self.maxsize = maxsize
        self._values: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.RLock()

    def get(self, key: Hashable, build: Callable[[], T]) -> T:
        """The value of ``key``, built with ``build()`` on first use."""
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                return self._values[key]
            value = build()
            self._values[key] = value
            while self.maxsize is not None and len(self._values) > self.maxsize:
                self._values.popitem(last=False)
            return value

    def clear(self) -> None:
        """Forget every value."""
        with self._lock:
            self._values.clear()

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def __repr__(self) -> str:
        return f"Memo({len(self)} values, maxsize={self.maxsize})"
