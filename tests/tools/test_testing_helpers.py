"""``pyqueue.testing`` without ceremony (issue 28, reproduction 11).

``drain()`` took no context or hooks and was typed ``Any``; the ``pyqueue_queue`` fixture
was ``Queue[Any]``; a handler could not be called without Redis; and ``drain`` waited out
real backoff delays.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from pyqueue import Backoff, Context, Job, JobHandle, Queue
from pyqueue.testing import (
    drain,
    make_due,
    make_job,
    make_job_handle,
    pyqueue_make_queue,
    pyqueue_redis_url,
)

__all__ = ["pyqueue_make_queue", "pyqueue_redis_url"]


class Email(BaseModel):
    to: str


async def send(job: Job[Email]) -> str:
    await job.progress(50)
    await job.log(f"sending to {job.data.to}")
    return f"{job.context['greeting']} {job.data.to}"


def send_sync(job: JobHandle[Email]) -> str:
    job.progress({"step": 1})
    job.log("sync")
    if job.aborted:
        return "aborted"
    return f"{job.context.get('greeting', 'hi')} {job.data.to}"


async def test_make_job_calls_a_handler_without_redis() -> None:
    job = make_job(Email(to="a@b"), context={"greeting": "hello"})
    assert await send(job) == "hello a@b"
    assert job.progress_value == 50
    assert job.logs == ["sending to a@b"]
    assert job.id == "1"
    assert job.attempts_made == 0


def test_make_job_handle_calls_a_sync_handler_without_redis() -> None:
    handle = make_job_handle(Email(to="c@d"), attempts_made=2, name="welcome")
    assert send_sync(handle) == "hi c@d"
    assert handle.progress_value == {"step": 1}
    assert handle.logs == ["sync"]
    assert (handle.name, handle.attempts_made) == ("welcome", 2)
    aborted = make_job_handle(Email(to="e@f"), aborted="aborted: stop")
    assert send_sync(aborted) == "aborted"


async def test_make_job_validates_a_dict_against_the_model() -> None:
    job = make_job({"to": "g@h"}, model=Email)
    assert isinstance(job.data, Email)
    with pytest.raises(Exception, match="to"):
        make_job({"too": 1}, model=Email)


async def test_drain_takes_context_and_hooks(
    pyqueue_make_queue: Any,
) -> None:
    queue: Queue[Email] = pyqueue_make_queue(model=Email)
    calls: list[str] = []

    async def startup(ctx: Context) -> None:
        calls.append("startup")
        ctx["greeting"] = "dear"

    def shutdown(ctx: Context) -> None:
        calls.append(f"shutdown {ctx['greeting']}")

    job = await queue.add(Email(to="i@j"))
    result = await drain(queue, send, context={}, on_startup=startup, on_shutdown=shutdown)
    assert result.results == {job.id: "dear i@j"}
    assert calls == ["startup", "shutdown dear"]


async def test_drain_can_skip_backoff_and_delays(pyqueue_make_queue: Any) -> None:
    queue: Queue[Any] = pyqueue_make_queue()
    tries: dict[str, int] = {}

    async def flaky(job: Job[Any]) -> str:
        tries[job.id] = tries.get(job.id, 0) + 1
        if job.attempts_made < 2:
            raise RuntimeError("not yet")
        return "ok"

    retried = await queue.add({}, attempts=3, backoff=Backoff(type="fixed", delay=3_600_000))
    later = await queue.add({}, delay=3_600_000, attempts=3)
    result = await drain(queue, flaky, skip_delays=True, timeout=20)
    assert sorted(result.completed) == sorted([retried.id, later.id])
    assert tries == {retried.id: 3, later.id: 3}


async def test_make_due_promotes_delayed_jobs(pyqueue_make_queue: Any) -> None:
    queue: Queue[Any] = pyqueue_make_queue()
    first = await queue.add({}, delay=3_600_000)
    second = await queue.add({}, delay=7_200_000)
    await queue.add({})
    assert sorted(await make_due(queue)) == sorted([first.id, second.id])
    assert await queue.get_delayed_count() == 0
    assert await queue.get_waiting_count() == 3


async def test_the_queue_factory_closes_and_cleans_what_it_made(
    pyqueue_make_queue: Any,
) -> None:
    a: Queue[Email] = pyqueue_make_queue(model=Email)
    b: Queue[Any] = pyqueue_make_queue()
    assert a.name != b.name
    assert a.model is Email
    await a.add(Email(to="k@l"))
