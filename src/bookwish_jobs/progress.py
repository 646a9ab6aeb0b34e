"""Job progress and ``job.log`` lines from processors, which run in pyqueue's thread pool.

A processor is a plain function, so pyqueue hands it a :class:`pyqueue.JobHandle`
whose ``progress``/``log`` block until Redis has them; :class:`JobReport` wraps
them so that reporting is best effort: a Redis hiccup while writing a log
line is logged, never fails the job. ``getJobLogs`` (Node) and
``Queue.get_job_logs`` (pyqueue) show the lines.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from bookwish_jobs.logs import log_event
from pyqueue import JobHandle


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
    def __init__(self, job: JobHandle[Any]) -> None:
        self.job = job

    def log(self, line: str) -> None:
        self._run(self.job.log, line, "log")

    def progress(self, value: int) -> None:
        self._run(self.job.progress, value, "progress")

    def _run(self, call: Callable[[Any], Any], value: Any, what: str) -> None:
        try:
            call(value)
        except Exception as exc:
            log_event("job.report_failed", logging.WARNING, job_id=self.job.id, what=what,
                      error=str(exc) or type(exc).__name__)
