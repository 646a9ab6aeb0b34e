"""Code that must type-check under ``mypy --strict``, with the types it must infer."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, assert_type

from pydantic import BaseModel

from pyqueue import (
    Context,
    Cron,
    Job,
    JobHandle,
    JobOptions,
    Queue,
    QueueEntry,
    Worker,
    WorkerOptions,
    WorkerSettings,
    shutdown_signals,
)
from pyqueue.testing import (
    OfflineHandle,
    OfflineJob,
    drain,
    make_due,
    make_job,
    make_job_handle,
)


class Email(BaseModel):
    to: str


class Report(BaseModel):
    day: str


async def send(job: Job[Email]) -> str:
    return job.data.to


def render(job: JobHandle[Report]) -> dict[str, str]:
    return {"day": job.data.day}


def render_any(job: JobHandle[Any]) -> None:
    job.progress(50)


async def open_pool(ctx: Context) -> None:
    ctx["pool"] = object()


# A worker is typed from its handler, whether it is async (Job) or sync (JobHandle).
assert_type(Worker("emails", send), Worker[Email])
assert_type(Worker("reports", render), Worker[Report])
assert_type(Worker(Queue("emails", model=Email), send), Worker[Email])
assert_type(Worker("mixed", {"a": render_any, "b": render_any}), Worker[Any])

emails = QueueEntry(
    "emails", send,
    default_job_options=JobOptions(attempts=4, timeout=timedelta(seconds=10)),
    concurrency=20,
)
reports = QueueEntry("reports", render, sandbox=True, options=WorkerOptions(concurrency=2))
assert_type(emails, QueueEntry[Email])
assert_type(reports, QueueEntry[Report])

settings = WorkerSettings(
    queues=[emails, reports],
    on_startup=open_pool,
    cron=[Cron(render, "0 6 * * *", tz="Europe/Paris", data=Report(day="today")),
          Cron("emails", "*/5 * * * *", data={"to": "ops@example.com"})],
)
legacy = WorkerSettings(queues={"emails": send, "reports": {"daily": render}})


async def produce(url: str) -> None:
    queue = emails.queue(url)
    assert_type(queue, Queue[Email])
    job = await queue.add(Email(to="a@b.c"), delay=timedelta(minutes=1))
    assert_type(job, Job[Email])
    assert_type(job.created, bool)
    assert_type(job.data, Email)
    assert_type(await job.finished(timeout=timedelta(seconds=5)), Any)
    assert_type(await queue.wait_until_finished(job.id, timeout=2.5), Any)
    worker = emails.worker(url)
    assert_type(worker, Worker[Email])


async def test_without_redis() -> None:
    assert await send(make_job(Email(to="x@y.z"))) == "x@y.z"
    assert_type(make_job(Email(to="x"), context={"pool": 1}), OfflineJob[Email])
    assert_type(make_job({"to": "x"}, model=Email), OfflineJob[Email])
    assert render(make_job_handle(Report(day="mon"))) == {"day": "mon"}
    assert_type(make_job_handle(Report(day="mon")), OfflineHandle[Report])


async def test_with_redis(queue: Queue[Email]) -> None:
    result = await drain(queue, send, context={"pool": 1}, on_startup=open_pool)
    assert_type(result.completed, list[str])
    assert_type(await make_due(queue), list[str])


async def run_forever(worker: Worker[Email]) -> None:
    async with shutdown_signals() as stop:
        await worker.start()
        await stop.wait()
        await worker.close(timeout=timedelta(seconds=30))
