"""The whole service on one screen: four queues, their payloads, options and processors.

=====================  ===================  =====================  ============  =======
queue                  payload              schedule (cron)        attempts      timeout
=====================  ===================  =====================  ============  =======
notifications          NotificationPayload  on demand              3, exp. 2 s   30 s
square-sync            SquareSyncPayload    ``0 * * * *``/store    3, exp. 60 s  5 min
reservation-cleanup    ``{}``               ``*/15 * * * *``       3, exp. 30 s  2 min
order-digest           ``{type: 'daily'}``  ``0 6 * * *``          3, exp. 60 s  10 min
=====================  ===================  =====================  ============  =======

Every job is added under Bull's default name ``__default__``, as the Node app's
``queue.add(data, opts)`` does, so a Node worker's ``queue.process(fn)`` takes the jobs
Python producers make; the Python workers take jobs of any name (also the named jobs
older bookwish_jobs versions queued). All remove on complete and keep failed jobs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from bookwish_jobs import names, payloads
from bookwish_jobs.context import AppContext
from bookwish_jobs.jobs import notifications, order_digest, reservation_cleanup, square_sync
from bookwish_jobs.progress import JobReport, Report
from pyqueue import Job, JobHandle, JobOptions, Queue, SyncQueue, Worker, WorkerOptions


@dataclass(frozen=True, slots=True)
class QueueSpec:
    name: str
    model: type[BaseModel]
    options: JobOptions
    process: Callable[[JobHandle[Any], AppContext, Report], Any]
    # Whether a final failure of this job (with this error) should alert someone.
    critical: Callable[[Job[Any], BaseException], bool]


def _always(_job: Job[Any], _exc: BaseException) -> bool:
    return True


def _critical_notification(job: Job[Any], _exc: BaseException) -> bool:
    data = job.data
    kind = data.get("type") if isinstance(data, dict) else getattr(data, "type", None)
    return kind in notifications.CRITICAL_TYPES


QUEUES: dict[str, QueueSpec] = {
    spec.name: spec for spec in (
        QueueSpec(names.NOTIFICATIONS, payloads.NotificationPayload, notifications.OPTIONS,
                  notifications.process, _critical_notification),
        QueueSpec(names.SQUARE_SYNC, payloads.SquareSyncPayload, square_sync.OPTIONS,
                  square_sync.process,
                  lambda _job, exc: isinstance(exc, square_sync.SquareTokenRevokedError)),
        QueueSpec(names.RESERVATION_CLEANUP, payloads.ReservationCleanupPayload,
                  reservation_cleanup.OPTIONS, reservation_cleanup.process, _always),
        QueueSpec(names.ORDER_DIGEST, payloads.OrderDigestPayload, order_digest.OPTIONS,
                  order_digest.process, _always),
    )
}


def open_queue(name: str, redis_url: str | None) -> Queue[Any]:
    """The producer side of a queue: payloads validated, the queue's job options by default."""
    spec = QUEUES[name]
    return Queue(spec.name, redis_url, model=spec.model, default_job_options=spec.options)


def open_sync_queue(name: str, redis_url: str | None) -> SyncQueue[Any]:
    spec = QUEUES[name]
    return SyncQueue(spec.name, redis_url, model=spec.model, default_job_options=spec.options)


@dataclass(slots=True)
class QueueWorker:
    """A worker and the queue it was built from (the worker borrows its connection)."""

    queue: Queue[Any]
    worker: Worker

    async def close(self, timeout: float | None = None) -> None:
        await self.worker.close(timeout)
        await self.queue.close()


def _run_spec(spec: QueueSpec, job: JobHandle[Any]) -> Any:
    app: AppContext = job.context["app"]
    return spec.process(job, app, JobReport(job))


def make_worker(
    name: str, ctx: AppContext, redis_url: str | None, *, concurrency: int,
    shutdown_grace: float,
) -> QueueWorker:
    """A worker for one queue, validating payloads with the queue's model.

    Processors are plain functions: pyqueue runs them in its thread pool, so blocking
    SQL, SMTP and HTTP never stall the event loop. The services they share reach them
    through the worker's context (``job.context["app"]``).
    """
    spec = QUEUES[name]
    queue = open_queue(name, redis_url)
    worker = Worker(
        queue, {"*": functools.partial(_run_spec, spec)},
        options=WorkerOptions(concurrency=concurrency, shutdown_grace=shutdown_grace),
        context={"app": ctx},
    )
    return QueueWorker(queue, worker)
