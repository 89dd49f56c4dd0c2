"""The evaluation harness shared by LGR and CORE: method names, argument checks, the method loop.

Both evaluations resolve method names against a :class:`~perturb_core.spec.MethodSpec`
registry, check their integer options the same way, run the methods one after another under
one progress bar (weighted by each method's steps) with a timer, and write their numbers
as plain JSON (NaN and inf -> ``None``). :mod:`perturb_core.evaluate.lgr` and
:mod:`perturb_core.evaluate.core` sit on top.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import pandas as pd

from perturb_core.errors import ValidationError, check_choice
from perturb_core.spec import MethodSpec

__all__ = ["Progress", "check_methods", "check_positive_int", "interval_table", "json_number", "run_methods"]

T = TypeVar("T")

Progress = Callable[[int, int], None]
"""``progress(done, total)``; called in the calling thread."""


def check_methods(
    methods: Sequence[str] | str, specs: Mapping[str, MethodSpec[Any]], kind: str
) -> tuple[str, ...]:
    """Canonical method names, in order, without repeats.

    Args:
        methods: names (any case or punctuation) as a sequence or one comma-separated string.
        specs: the registry the names come from.
        kind: what a method is called in messages, e.g. ``"LGR method"``.

    Returns:
        The registry's spelling of each name.

    Raises:
        ValidationError: no name given.
        UnknownNameError: an unknown name (the message lists the valid ones).
    """
    raw = methods.split(",") if isinstance(methods, str) else [str(m) for m in methods]
    names = [m.strip() for m in raw if m.strip()]
    if not names:
        raise ValidationError(f"no method given; valid: {', '.join(specs)}")
    return tuple(dict.fromkeys(check_choice(kind, m, specs) for m in names))


def check_positive_int(
    name: str, value: object, *, example: int | None = None, optional: bool = False
) -> None:
    """Refuse anything but an integer >= 1 (``None`` too when ``optional``); bools are not integers.

    Raises:
        ValidationError: naming the argument, the value and, if given, an example.
    """
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        hint = f" (e.g. {example})" if example is not None else ""
        allowed = "a positive integer or None" if optional else "a positive integer"
        raise ValidationError(f"{name} must be {allowed}{hint}; got {value!r}")


def run_methods(
    names: Sequence[str],
    steps: Sequence[int],
    run: Callable[[str, Progress], T],
    progress: Progress | None = None,
) -> tuple[dict[str, T], dict[str, float]]:
    """Run each method in turn under one progress bar; time each.

    Args:
        names: the methods, in order.
        steps: progress steps of each method (e.g. its queries, or 1 for a vectorised method).
        run: ``run(name, step)`` runs one method; it may call ``step(done, of)`` with its own
            count (``done`` of its ``steps``), which is mapped onto the whole bar.
        progress: ``progress(done, total)`` over all methods (``total = sum(steps)``).

    Returns:
        Each method's output and its wall time in seconds, keyed by name.
    """
    if len(steps) != len(names):
        raise ValueError(f"{len(steps)} step counts for {len(names)} methods")
    total = int(sum(steps))
    outputs: dict[str, T] = {}
    elapsed: dict[str, float] = {}
    before = 0

    def report(done: int) -> None:
        if progress is not None:
            progress(done, total)

    report(0)
    for name, n in zip(names, steps, strict=True):

        def step(done: int, _of: int, base: int = before) -> None:
            report(base + done)

        start = time.perf_counter()
        outputs[name] = run(name, step)
        elapsed[name] = time.perf_counter() - start
        before += int(n)
        report(before)
    return outputs, elapsed


def json_number(x: object) -> float | None:
    """A finite float, or ``None`` for NaN, inf and anything that is not a number."""
    try:
        v = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def interval_table(summary: pd.DataFrame, methods: Sequence[str], metrics: Sequence[str]) -> dict[str, Any]:
    """``method -> metric -> [low, high]`` of a summary with ``method, metric, ci_low, ci_high`` rows."""
    s = summary.set_index(["method", "metric"])
    return {
        m: {
            k: [json_number(s.at[(m, k), "ci_low"]), json_number(s.at[(m, k), "ci_high"])]
            if (m, k) in s.index
            else [None, None]
            for k in metrics
        }
        for m in methods
    }
