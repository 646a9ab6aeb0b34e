"""A worker's view of its Redis being gone: retried quietly, logged when lost and when back.

Every part of a worker (fetch loop, lock renewer, delayed-job promoter, abort and
stalled checks) notices a lost server on its own, several times a second at
first. Logged one line each, a five-slot worker wrote 234 lines in a 20 s outage.
Here the first connection-class error of an outage is logged (WARNING), the rest
only at DEBUG, and the first success after it logs once that Redis is back with
how long it was gone. Errors of any other kind are logged each time: they say
something new. The ``error`` event still fires for every error, as in Bull.
"""

from __future__ import annotations

import logging
import time

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

# pyqueue.errors.TransientServerError is a redis ConnectionError, so LOADING,
# MASTERDOWN and the like count as the server being away, which they are.
_CONNECTION_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError, TimeoutError)

FIRST_RETRY_MS = 50.0
"""The first retry's delay after a connection error; it doubles per failure."""


def is_connection_error(exc: BaseException) -> bool:
    """Whether ``exc`` means the server is unreachable or cannot serve for now."""
    return isinstance(exc, _CONNECTION_ERRORS)


def retry_delay(failures: int, cap_ms: float) -> float:
    """Seconds to wait after ``failures`` failures in a row: 50 ms doubling, capped."""
    if failures <= 0:
        return 0.0
    return float(min(cap_ms, FIRST_RETRY_MS * 2 ** min(failures - 1, 16))) / 1000


class OutageLog:
    """Logs a worker's errors, collapsing an outage into one line when lost and one when back.

    Not thread-safe: call it on the worker's event loop (threads hop there first).

    Args:
        log: Where the lines go.
        where: Names the worker in each line (``queue <name>``).
    """

    def __init__(self, log: logging.Logger, where: str) -> None:
        self._log = log
        self._where = where
        self._lost_at: float | None = None
        self.suppressed = 0

    @property
    def lost(self) -> bool:
        return self._lost_at is not None

    def error(self, exc: BaseException) -> None:
        """Log one error: a new outage once, an outage going on at DEBUG, others always."""
        if not is_connection_error(exc):
            self._log.warning("%s: worker error: %s", self._where, exc)
            return
        if self._lost_at is None:
            self._lost_at = time.monotonic()
            self.suppressed = 0
            self._log.warning(
                "%s: lost Redis (%s); retrying with backoff, logging once more when it is "
                "back", self._where, exc,
            )
            return
        self.suppressed += 1
        self._log.debug("%s: Redis still unreachable: %s: %s", self._where, type(exc).__name__, exc)

    def ok(self) -> None:
        """A Redis call succeeded: end the outage, if any, with one line."""
        if self._lost_at is None:
            return
        gone = time.monotonic() - self._lost_at
        self._lost_at = None
        self._log.warning(
            "%s: Redis reachable again after %.1f s (%d further errors not logged)",
            self._where, gone, self.suppressed,
        )
