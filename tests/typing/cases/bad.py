"""Code that ``mypy --strict`` must reject: a trailing comment ``E: <text>`` names the error."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel

from pyqueue import Cron, Job, JobHandle, Queue, QueueEntry, Worker, WorkerOptions, WorkerSettings
from pyqueue.testing import drain, make_job


class Email(BaseModel):
    to: str


class Invoice(BaseModel):
    number: int


async def send(job: Job[Email]) -> str:
    return job.data.to


async def async_with_handle(job: JobHandle[Email]) -> None: ...


def sync_with_job(job: Job[Email]) -> None: ...


def bill(job: JobHandle[Invoice]) -> int:
    return job.data.number


emails: Queue[Email] = Queue("emails", model=Email)

# An async def gets a Job; a JobHandle is what a plain def gets.
Worker("emails", async_with_handle)  # E: Argument 2 to "Worker" has incompatible type
Worker("emails", sync_with_job)  # E: Argument 2 to "Worker" has incompatible type
QueueEntry("emails", async_with_handle)  # E: Argument 2 to "QueueEntry" has incompatible type
# A handler for another payload than the queue's.
Worker(emails, bill)  # E: Argument 2 to "Worker" has incompatible type
Worker(emails, {"a": send, "b": bill})  # E: Dict entry 1 has incompatible type
# Settings: handlers are callables, cron schedules are strings, hooks take the context.
WorkerSettings(queues={"emails": 42})  # E: Dict entry 0 has incompatible type
Cron(send, 5)  # E: Argument 2 to "Cron" has incompatible type
WorkerSettings(queues=[], on_startup=lambda: None)  # E: Argument "on_startup"
# Durations are numbers or timedeltas.
WorkerOptions(lock_duration="30s")  # E: Argument "lock_duration" to "WorkerOptions"
WorkerOptions(shutdown_grace=timedelta(seconds=1), drain_delay="1")  # E: Argument "drain_delay"


async def produce() -> None:
    entry = QueueEntry("emails", send)
    await entry.queue().add(Invoice(number=1))  # E: No overload variant of "add"
    await emails.add({"to": "a"}, job_id=5)  # E: No overload variant of "add"
    await (await emails.add(Email(to="a"))).finished(timeout="1")  # E: Argument "timeout"


async def tests() -> None:
    invoice = Invoice(number=1)
    await send(make_job(invoice))  # E: Argument 1 to "make_job" has incompatible type "Invoice"
    await drain(emails, bill)  # E: Argument 2 to "drain" has incompatible type
