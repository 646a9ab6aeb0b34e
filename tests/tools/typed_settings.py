"""A typed settings module for ``pyqueue worker`` (imported by the command, by name)."""

from __future__ import annotations

from pydantic import BaseModel

from pyqueue import Job, JobHandle, QueueEntry, WorkerOptions, WorkerSettings

FAST = WorkerOptions(drain_delay=1, guard_interval=200, stalled_interval=0, shutdown_grace=5)


class Email(BaseModel):
    to: str


async def send(job: Job[Email]) -> str:
    return job.data.to


def send_sync(job: JobHandle[Email]) -> str:
    return job.data.to.upper()


def explode(job: JobHandle[Email]) -> None:
    raise KeyError(f"no mailbox for {job.data.to}")


# The form: a mapping of queue names to typed handlers.
settings = WorkerSettings(queues={"emails": send, "shouts": send_sync}, options=FAST)

entries = WorkerSettings(
    queues=[QueueEntry("emails", send, concurrency=2), QueueEntry("fails", explode)],
    options=FAST,
)

not_callable = {"queues": {"emails": "send"}, "options": FAST}
