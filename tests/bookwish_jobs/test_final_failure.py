"""The service alerts on a job's last failure, however it came: pyqueue's ``final`` flag.

bookwish_jobs used to re-derive "final" from attempts and UnrecoverableError, and
missed a ``discard()``ed job and a backoff strategy that returned -1: no alert.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from bookwish_jobs import names
from bookwish_jobs.context import AppContext
from bookwish_jobs.registry import QUEUES
from bookwish_jobs.service import Service
from pyqueue import Backoff, Queue, UnrecoverableError, Worker, WorkerOptions


def _discard(job: Any) -> None:
    job.discard()
    raise ValueError("the store was deleted")


def _unrecoverable(job: Any) -> None:
    raise UnrecoverableError("bad payload")


def _plain(job: Any) -> None:
    raise ValueError("still down")


@pytest.mark.parametrize(("handler", "backoff", "runs"), [
    (_discard, None, 1),
    (_unrecoverable, None, 1),
    (_plain, Backoff(type="give-up"), 1),  # the strategy returns -1 at once
    (_plain, None, 3),
])
async def test_alert_fires_once_on_the_last_failure(
    ctx: AppContext, bw_redis_url: str, handler: Any, backoff: Backoff | None, runs: int
) -> None:
    service = Service(ctx, bw_redis_url)
    alerts: list[tuple[str, str, int]] = []
    alerted = asyncio.Event()

    async def hook(queue: str, job: Any, exc: BaseException) -> None:
        alerts.append((queue, str(exc), job.attempts_made))
        alerted.set()

    service.alert_hooks = [hook]
    spec = QUEUES[names.RESERVATION_CLEANUP]  # critical: every final failure alerts
    async with Queue(f"final-{uuid.uuid4().hex[:8]}", bw_redis_url) as queue:
        worker = Worker(queue, handler, options=WorkerOptions(drain_delay=0.2),
                        backoff_strategies={"give-up": lambda *_: -1})
        worker.on("failed", service._failed_listener(spec))
        failures: list[int] = []
        worker.on("failed", lambda job, exc: failures.append(job.attempts_made))
        async with worker:
            await queue.add({}, attempts=3, backoff=backoff)
            await asyncio.wait_for(alerted.wait(), 15)
            await asyncio.sleep(0.3)  # a wrong retry would show up here
        await queue.obliterate(force=True)
    assert failures == list(range(1, runs + 1))
    assert len(alerts) == 1
    assert alerts[0][0] == spec.name
    assert alerts[0][2] == runs
