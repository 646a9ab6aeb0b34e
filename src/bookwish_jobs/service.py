"""The running service: one pyqueue Worker per configured queue, the failed-job hook,
the periodic ``queue.metrics`` log and, when ``FAILED_RETENTION_HOURS`` is set, the
hourly clean of old failed jobs (off by default: the design's ``removeOnFail: false``
keeps failed jobs, and the clean would remove the Node app's too).

Every failure is logged as ``job.failed`` with its stack trace; a job found stalled
(its worker died or blocked past the lock) as ``job.stalled``, and one that stalled
too often as ``job.stalled_failed``. Redis and database outages are logged once per
outage (``outages.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

from bookwish_jobs.context import AppContext
from bookwish_jobs.logs import log_event
from bookwish_jobs.outages import Outage, is_database_outage
from bookwish_jobs.registry import QUEUES, QueueSpec, QueueWorker, make_worker
from bookwish_jobs.services.email import build_message
from pyqueue import Job
from pyqueue.loops import running_loop_name

# Called with (queue name, job, exception) when a critical job fails for the last time.
AlertHook = Callable[[str, Job[Any], BaseException], Awaitable[None]]


def _job_id_logger(event: str, level: int, **fields: Any) -> Callable[[str], None]:
    def log_job(job_id: str) -> None:
        log_event(event, level, job_id=job_id, **fields)

    return log_job


class Service:
    def __init__(self, ctx: AppContext, redis_url: str | None,
                 alert_hooks: list[AlertHook] | None = None) -> None:
        self.ctx = ctx
        self.redis_url = redis_url
        self.alert_hooks: list[AlertHook] = [self.email_alert, *(alert_hooks or [])]
        self.workers: dict[str, QueueWorker] = {}
        self.redis_outage = Outage("redis")
        self.database_outage = Outage("database")
        self._tasks: list[asyncio.Task[None]] = []
        self._probes = contextlib.AsyncExitStack()

    async def start(self) -> None:
        settings = self.ctx.settings
        for name, concurrency in settings.queues.items():
            qw = make_worker(name, self.ctx, self.redis_url, concurrency=concurrency,
                             shutdown_grace=settings.shutdown_grace)
            qw.worker.on("failed", self._failed_listener(QUEUES[name]))
            qw.worker.on("completed", self._completed)
            qw.worker.on("error", self.redis_outage.failed)
            qw.worker.on("stalled", _job_id_logger(
                "job.stalled", logging.WARNING, queue=name,
                note="its worker stopped renewing the lock; the job is retried"))
            qw.worker.on("stalled-failed", _job_id_logger(
                "job.stalled_failed", logging.ERROR, queue=name))
            self.workers[name] = qw
        for qw in self.workers.values():
            await qw.worker.start()
        self._tasks = [asyncio.create_task(self._metrics_loop(settings.metrics_interval))]
        if settings.failed_retention_hours is not None:
            log_event("worker.failed_retention", logging.WARNING,
                      hours=settings.failed_retention_hours, queues=list(self.workers),
                      note="failed jobs older than this are removed hourly from these "
                           "queues, the Node app's failed jobs included; unset "
                           "FAILED_RETENTION_HOURS to keep them (removeOnFail: false)")
            self._tasks.append(asyncio.create_task(self._clean_loop(settings.clean_interval)))
        if settings.metrics_port is not None:
            # Optional extra (pyqueue[metrics]), imported only when a port is configured.
            from pyqueue.tools.metrics import serve_worker  # noqa: PLC0415

            server = await self._probes.enter_async_context(serve_worker(
                [qw.worker for qw in self.workers.values()], host=settings.metrics_host,
                port=settings.metrics_port))
            log_event("worker.metrics", host=settings.metrics_host, port=server.port)
        log_event("worker.started", queues=settings.queues, loop=running_loop_name())

    async def close(self) -> None:
        """Stop taking jobs, let active ones finish within the grace period, requeue the rest."""
        log_event("worker.stopping", grace=self.ctx.settings.shutdown_grace)
        await self._probes.aclose()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await asyncio.gather(*(qw.close() for qw in self.workers.values()))
        log_event("worker.stopped")

    def _failed_listener(
        self, spec: QueueSpec,
    ) -> Callable[[Job[Any], BaseException, bool], Any]:
        # pyqueue emits every failed attempt; ``final`` says whether a retry follows
        # (it knows about discard(), UnrecoverableError and a backoff of -1).
        async def on_failed(job: Job[Any], exc: BaseException, final: bool) -> None:
            if is_database_outage(exc):
                self.database_outage.failed(exc)
            log_event("job.failed", logging.ERROR if final else logging.WARNING,
                      queue=spec.name, job_id=job.id, name=job.name,
                      attempts_made=job.attempts_made, attempts=job.opts.attempts or 1,
                      final=final, reason=str(exc) or type(exc).__name__,
                      stack="".join(traceback.format_exception(exc)))
            if final and spec.critical(job, exc):
                for hook in self.alert_hooks:
                    try:
                        await hook(spec.name, job, exc)
                    except Exception as hook_exc:
                        log_event("job.alert_failed", logging.ERROR, queue=spec.name,
                                  job_id=job.id, error=str(hook_exc))
        return on_failed

    def _completed(self, _job: Job[Any], _result: Any) -> None:
        # A job finished: Redis answered, and the database did if the job used it.
        self.redis_outage.ok()
        self.database_outage.ok()

    async def clean_failed(self) -> dict[str, int]:
        """Remove failed jobs older than ``failed_retention_hours`` (``queue.clean``);
        nothing when it is unset."""
        hours = self.ctx.settings.failed_retention_hours
        if hours is None:
            return dict.fromkeys(self.workers, 0)
        grace = int(hours * 3_600_000)
        removed = {}
        for name, qw in self.workers.items():
            removed[name] = len(await qw.queue.clean(grace, "failed"))
            if removed[name]:
                log_event("queue.cleaned", queue=name, state="failed", removed=removed[name])
        return removed

    async def _clean_loop(self, interval: float) -> None:
        while True:
            try:
                await self.clean_failed()
            except Exception as exc:
                log_event("queue.clean_failed", logging.WARNING, error=str(exc))
            await asyncio.sleep(interval)

    async def email_alert(self, queue: str, job: Job[Any], exc: BaseException) -> None:
        """The default alert: a log event, and an email when ALERT_EMAIL/OPS_DIGEST_EMAIL is set."""
        log_event("job.alert", logging.ERROR, queue=queue, job_id=job.id, reason=str(exc))
        to = self.ctx.settings.alert_recipient
        if to is None:
            return
        subject = f"[BookWish] {queue} job {job.id} failed for good"
        text = f"Queue: {queue}\nJob: {job.id} ({job.name})\nAttempts: {job.attempts_made}\n" \
               f"Reason: {exc}\n"
        message = build_message(sender=self.ctx.settings.mail_from, to=to, subject=subject,
                                text=text, html_body=f"<pre>{html.escape(text)}</pre>")
        await asyncio.to_thread(self.ctx.mailer.send, message)

    async def metrics(self) -> dict[str, dict[str, int]]:
        out = {}
        for name, qw in self.workers.items():
            out[name] = await qw.queue.get_job_counts(
                "waiting", "paused", "active", "delayed", "failed")
        return out

    async def _metrics_loop(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                for name, counts in (await self.metrics()).items():
                    log_event("queue.metrics", queue=name, **counts)
            except Exception as exc:
                self.redis_outage.failed(exc)
            else:
                self.redis_outage.ok()

