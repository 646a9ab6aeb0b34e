"""The workers of one :class:`~pyqueue.WorkerSettings`, run together: what ``pyqueue worker`` runs.

::

    async with WorkerGroup(settings, redis_url=os.environ["REDIS_URL"]) as group:
        await group.run_until_idle()      # burst: until nothing waits or runs

Starting runs ``on_startup`` once, declares the settings' cron schedules (and removes
the ones they declared before and no longer list), then starts one worker per queue;
closing closes the workers, then runs ``on_shutdown`` once.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from types import TracebackType
from typing import Any, Self

from pyqueue import _cron
from pyqueue.hooks import Context, call_hook
from pyqueue.settings import WorkerSettings
from pyqueue.worker import Worker

# Seconds between two looks at the queues while running until idle.
_IDLE_POLL = 0.1


class WorkerGroup:
    """One worker per queue of ``settings``, sharing one context.

    Args:
        settings: What to run.
        redis_url: Overrides ``settings.redis_url`` (None: the settings', else
            ``redis://127.0.0.1:6379/0``).
        prefix: Overrides ``settings.prefix`` (default ``bull``).
        concurrency: Overrides every queue's concurrency.

    Raises:
        InvalidOptionsError: a queue's worker cannot be made (a bad URL, say).
    """

    def __init__(
        self, settings: WorkerSettings, *, redis_url: str | None = None,
        prefix: str | None = None, concurrency: int | None = None,
    ) -> None:
        self.settings = settings
        url = redis_url or settings.redis_url
        self.context: Context = {} if settings.context is None else settings.context
        self.workers: list[Worker[Any]] = []
        for entry in settings.entries:
            options = entry.worker_options(settings.options)
            if concurrency is not None:
                options = dataclasses.replace(options, concurrency=concurrency)
            self.workers.append(Worker(
                entry.name, entry.handler, redis_url=url,
                prefix=entry.prefix or prefix or settings.prefix or "bull", options=options,
                context=self.context, before_process=settings.before_process,
                after_process=settings.after_process, model=entry.jobs_model,
                default_job_options=entry.default_job_options,
                backoff_strategies=entry.backoff_strategies, protocol=entry.protocol,
            ))
        self._started = False
        self._closed = False

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Run ``on_startup``, declare the cron schedules, start every worker.

        If any step fails, what was started is closed again and the error raised.
        """
        if self._started:
            return
        self._started = True
        if self.settings.on_startup is not None:
            await call_hook(self.settings.on_startup, self.context)
        try:
            for worker in self.workers:
                planned = [c for c in self.settings.crons if c.entry.name == worker.queue.name]
                await _cron.declare(worker.queue, planned, self.settings.name)
            for worker in self.workers:
                await worker.start()
        except BaseException:
            await self.close()
            raise

    async def close(self, timeout: float | timedelta | None = None) -> None:
        """Close every worker, then run ``on_shutdown``. Idempotent.

        Args:
            timeout: Seconds (or a timedelta) each worker waits for its active jobs
                (default: its ``shutdown_grace``).
        """
        if self._closed:
            return
        self._closed = True
        await asyncio.gather(*(worker.close(timeout) for worker in self.workers))
        if self._started and self.settings.on_shutdown is not None:
            await call_hook(self.settings.on_shutdown, self.context)

    async def idle(self) -> bool:
        """True when no queue of the group has a job waiting, running, or due.

        Delayed jobs due later (a retry's backoff, the next run of a schedule) do
        not count, nor does a paused queue's backlog.
        """
        for worker in self.workers:
            if await worker.queue.get_runnable_count():
                return False
        return True

    async def run_until_idle(self, stop: asyncio.Event | None = None) -> None:
        """Wait until :meth:`idle` holds twice in a row (or ``stop`` is set).

        Twice, 0.1 s apart: cheap insurance against one look racing a state change.
        What ``pyqueue worker --burst`` does before it closes.
        """
        streak = 0
        while streak < 2 and not (stop is not None and stop.is_set()):
            streak = streak + 1 if await self.idle() else 0
            await asyncio.sleep(_IDLE_POLL)
