"""Job progress and ``job.log`` lines from processors, which run in pyqueue's thread pool.

pyqueue's ``Job.progress``/``Job.log`` are coroutines of the worker's event loop; a
processor (a plain function in a worker thread) reaches them through
:class:`JobReport`. Reporting is best effort: a Redis hiccup while writing a log
line is logged, never fails the job. ``getJobLogs`` (Node) and
``Queue.get_job_logs`` (pyqueue) show the lines.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from bookwish_jobs.logs import log_event
from pyqueue import Job

_WAIT = 5.0


class Report(Protocol):
    def log(self, line: str) -> None: ...

    def progress(self, value: int) -> None: ...


class _NoReport:
    """For processors called directly (tests, scripts): reports go nowhere."""

    def log(self, line: str) -> None:
        pass

    def progress(self, value: int) -> None:
        pass


NO_REPORT: Report = _NoReport()


class JobReport:
    def __init__(self, job: Job[Any], loop: asyncio.AbstractEventLoop) -> None:
        self.job = job
        self.loop = loop

    def log(self, line: str) -> None:
        self._run(self.job.log(line), "log")

    def progress(self, value: int) -> None:
        self._run(self.job.progress(value), "progress")

    def _run(self, call: Any, what: str) -> None:
        try:
            asyncio.run_coroutine_threadsafe(call, self.loop).result(_WAIT)
        except Exception as exc:
            log_event("job.report_failed", logging.WARNING, job_id=self.job.id, what=what,
                      error=str(exc) or type(exc).__name__)
