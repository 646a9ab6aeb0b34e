"""A Worker built from a Queue emits on that Queue: Bull's ``queue.on('completed')``."""

from __future__ import annotations

import asyncio
from typing import Any

from pyqueue import Queue, Worker


async def test_listeners_on_the_queue_handed_to_a_worker_fire(redis_url, queue_name, fast):
    queue: Queue[Any] = Queue(queue_name, redis_url)
    seen: list[tuple[str, str]] = []
    queue.on("active", lambda job: seen.append(("active", job.id)))
    queue.on("progress", lambda job, value: seen.append(("progress", job.id)))
    queue.on("completed", lambda job, result: seen.append(("completed", job.id)))
    queue.on("failed", lambda job, exc: seen.append(("failed", job.id)))
    failed = asyncio.Event()
    queue.on("failed", lambda job, exc: failed.set())
    via_worker: list[str] = []

    async def handler(job):
        await job.progress(50)
        if job.name == "bad":
            raise ValueError("no")
        return "ok"

    good = await queue.add({}, name="good")
    bad = await queue.add({}, name="bad")
    worker = Worker(queue, handler, options=fast)
    worker.on("completed", lambda job, result: via_worker.append(job.id))
    try:
        await worker.start()
        assert await good.finished(timeout=10) == "ok"
        await asyncio.wait_for(failed.wait(), 10)
    finally:
        await worker.close(timeout=1)
    assert sorted(seen) == sorted([
        ("active", good.id), ("progress", good.id), ("completed", good.id),
        ("active", bad.id), ("progress", bad.id), ("failed", bad.id),
    ])
    assert via_worker == [good.id]
    # The worker did not close the queue it was given: its owner still uses it.
    later = await queue.add({})
    assert await later.get_state() == "waiting"
    await queue.close()


async def test_jobs_a_worker_runs_belong_to_the_queue_it_was_given(redis_url, queue_name, fast):
    queue: Queue[Any] = Queue(queue_name, redis_url)
    owners: list[Any] = []
    await queue.add({})
    worker = Worker(queue, lambda job: owners.append(job.queue), options=fast)
    async with worker:
        while not owners:  # noqa: ASYNC110 - waits for the handler to run
            await asyncio.sleep(0.02)
    assert owners == [queue]
    assert owners[0] is queue
    await queue.close()
