"""One log line when Redis or the database goes away, one when it is back.

pyqueue's workers reconnect to Redis on their own (with backoff) and report each
failed try as an ``error`` event; a job whose database call fails is retried on its
own backoff and the SQLAlchemy pool reconnects (``pool_pre_ping``). What is left is
the logging: an outage of a minute would otherwise log hundreds of identical lines.
:class:`Outage` logs ``<name>.unavailable`` at the first failure of an outage (with
the reason), counts the rest, and logs ``<name>.recovered`` with the count and the
duration at the first success after it.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy.exc import DBAPIError, OperationalError

from bookwish_jobs.logs import log_event


class Outage:
    def __init__(self, name: str) -> None:
        self.name = name
        self.since: float | None = None
        self.failures = 0

    @property
    def down(self) -> bool:
        return self.since is not None

    def failed(self, exc: BaseException) -> None:
        self.failures += 1
        if self.since is None:
            self.since = time.monotonic()
            log_event(f"{self.name}.unavailable", logging.ERROR,
                      error=str(exc) or type(exc).__name__,
                      note="logged once per outage; retrying with backoff")

    def ok(self) -> None:
        if self.since is None:
            return
        log_event(f"{self.name}.recovered", seconds=round(time.monotonic() - self.since, 1),
                  failures=self.failures)
        self.since = None
        self.failures = 0


def is_database_outage(exc: BaseException) -> bool:
    """An error that means the database could not be reached (not a bad statement)."""
    if isinstance(exc, OperationalError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)
