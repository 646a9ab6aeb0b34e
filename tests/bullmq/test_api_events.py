"""QueueEvents and SyncQueue in BullMQ mode, on real Redis: the ``events`` stream
heard with Bull mode's argument shapes, resumed without loss, and the blocking API."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pyqueue import Job, Queue, QueueEvents, SyncQueue, Worker
from pyqueue._events_bullmq import BullMQQueueEvents


async def test_queue_events_hear_a_pyqueue_worker(redis_url: str, queue_name: str) -> None:
    heard: list[tuple[Any, ...]] = []
    finished = asyncio.Event()

    def on(name: str) -> Any:
        def listener(*args: Any) -> None:
            heard.append((name, *args))
            if name == "failed":
                finished.set()
        return listener

    async def handler(job: Job[Any]) -> Any:
        if job.name == "bad":
            raise ValueError("nope")
        await job.progress({"p": 1})
        return [job.data["n"]]

    events = QueueEvents(queue_name, redis_url, protocol="bullmq")
    assert isinstance(events, BullMQQueueEvents)
    for name in ("waiting", "active", "progress", "completed", "failed", "added"):
        events.on(name, on(name))  # type: ignore[call-overload]
    async with events, Queue(queue_name, redis_url, protocol="bullmq") as queue:
        await queue.add({"n": 1}, name="ok")
        await queue.add({}, name="bad")
        async with Worker(queue, handler):
            await asyncio.wait_for(finished.wait(), 20)
    assert [h for h in heard if h[0] != "added"] == [
        ("waiting", "1"), ("waiting", "2"),
        ("active", "1", "waiting"), ("progress", "1", {"p": 1}),
        ("completed", "1", [1], "active"),
        ("active", "2", "waiting"), ("failed", "2", "nope", "active"),
    ]
    added = [h for h in heard if h[0] == "added"]
    assert added[0][1]["jobId"] == "1"  # Node's argument object for other events
    assert added[0][1]["name"] == "ok"


async def test_events_from_an_entry_id_replay_the_stream(redis_url: str,
                                                         queue_name: str) -> None:
    async with Queue(queue_name, redis_url, protocol="bullmq") as queue:
        await queue.add({}, name="a")
        await queue.add({}, name="b")
    waiting: list[str] = []
    events = QueueEvents(queue_name, redis_url, protocol="bullmq", last_event_id="0")
    events.on("waiting", waiting.append)
    async with events:
        async with asyncio.timeout(20):
            while len(waiting) < 2:  # noqa: ASYNC110 - the reader task fills it
                await asyncio.sleep(0.01)
    assert waiting == ["1", "2"]


def test_sync_queue_in_bullmq_mode(redis_url: str, queue_name: str) -> None:
    queue: SyncQueue[Any] = SyncQueue(queue_name, redis_url, protocol="bullmq")
    try:
        job = queue.add({"s": 1}, name="sync", priority=2)
        assert job.id == "1"
        assert queue.get_job_state("1") == "prioritized"
        assert queue.get_job_counts("prioritized") == {"prioritized": 1}
    finally:
        queue.close()


async def test_queue_entry_in_bullmq_mode(redis_url: str, queue_name: str) -> None:
    from pyqueue import QueueEntry
    from pyqueue.errors import InvalidOptionsError

    async def double(job: Job[Any]) -> int:
        return int(job.data["n"]) * 2

    entry: QueueEntry[Any] = QueueEntry(queue_name, double, protocol="bullmq")
    async with entry.queue(redis_url) as queue:
        assert queue.format == "bullmq"
        job = await queue.add({"n": 21})
        worker = entry.worker(redis_url)
        async with worker:
            assert await job.finished(timeout=20) == 42
        assert worker.queue.format == "bullmq"
    with pytest.raises(InvalidOptionsError, match="protocol"):
        QueueEntry(queue_name, double, protocol="kafka")
