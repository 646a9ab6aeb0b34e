"""Retry delays after a failed attempt (bull-protocol.md §6.1)."""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping

from pyqueue.errors import UnknownBackoffStrategy
from pyqueue.options import Backoff, BackoffResult, BackoffStrategy

__all__ = ["BackoffResult", "BackoffStrategy", "UnknownBackoffStrategy", "compute_delay"]


async def compute_delay(
    backoff: Backoff | None,
    attempts_made: int,
    error: BaseException,
    strategies: Mapping[str, BackoffStrategy],
) -> float | None:
    """ms to wait before the next attempt.

    Returns:
        None or 0 for an immediate retry, -1 to fail for good, else a delay in ms.

    Raises:
        UnknownBackoffStrategy: the type is neither built in nor registered.
        TypeError: a custom strategy returned something other than a number or None
            (whatever a custom strategy raises passes through too).
    """
    if backoff is None:
        return None
    custom = strategies.get(backoff.type)
    if custom is not None:
        result = custom(attempts_made, error, backoff.options)
        if inspect.isawaitable(result):
            result = await result
        if result is None or isinstance(result, bool):
            return None
        if not isinstance(result, int | float) or math.isnan(result):
            raise TypeError(f"returned {result!r}; expected ms as a number, None or -1")
        return float(result)
    if backoff.type == "fixed":
        return backoff.delay
    if backoff.type == "exponential":
        if backoff.delay is None:
            return None
        return float(round((2**attempts_made - 1) * backoff.delay))
    raise UnknownBackoffStrategy(
        f"Unknown backoff strategy {backoff.type}. If a custom backoff strategy is used, "
        "specify it when the worker is created."
    )
