"""BullMQ's built-in retry delays, computed in Python as Node's worker computes them.

A job's ``opts.backoff`` is ``{type, delay, jitter?}`` (a bare number means
``fixed``). For the attempt that just failed, the ``attempts_made``-th:

* ``fixed``: ``delay``;
* ``exponential``: ``round(2 ** (attempts_made - 1) * delay)`` (Bull's is
  ``(2 ** attempts_made - 1) * delay``);
* with ``jitter`` j in (0, 1]: a random whole number of ms in
  ``[d * (1 - j), d)``, d being the delay above.

Any other type is a custom strategy: :func:`builtin_delay` returns None for it,
and the worker looks it up among its own strategies.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from typing import Any

# Our own generator: a library must not move the application's global random state
# (a watcher thread shuffling through it perturbed seeded code, Hypothesis in our tests).
_RANDOM = random.Random()

BUILTIN_TYPES = ("fixed", "exponential")


def normalize(backoff: Any) -> dict[str, Any] | None:
    """``opts.backoff`` as BullMQ's ``Backoffs.normalize``: a number is a fixed delay."""
    if isinstance(backoff, bool):
        return None
    if isinstance(backoff, int | float) and math.isfinite(backoff):
        return {"type": "fixed", "delay": backoff}
    if isinstance(backoff, Mapping) and isinstance(backoff.get("type"), str):
        return dict(backoff)
    return None


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return 0.0
    return float(value)


def builtin_delay(
    backoff: Mapping[str, Any], attempts_made: int,
    rand: Callable[[], float] = _RANDOM.random,
) -> int | None:
    """ms before the next attempt for a built-in strategy, or None for a custom one.

    Args:
        backoff: The normalised ``opts.backoff`` (see :func:`normalize`).
        attempts_made: Attempts made so far, including the one that just failed.
        rand: A uniform [0, 1) source, for jitter (tests pass their own).
    """
    kind = backoff.get("type")
    if kind not in BUILTIN_TYPES:
        return None
    delay = _number(backoff.get("delay"))
    jitter = _number(backoff.get("jitter"))
    if kind == "exponential":
        delay = _js_round(2 ** (attempts_made - 1) * delay)
    if jitter > 0:
        low = delay * (1 - jitter)
        return math.floor(rand() * delay * jitter + low)
    return int(delay)


def _js_round(value: float) -> float:
    """JavaScript's Math.round: halves go up (Python's round goes to even)."""
    return float(math.floor(value + 0.5))
