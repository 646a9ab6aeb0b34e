"""A settings object whose queues speak different formats: a BullMQ queue run by
``pyqueue worker`` (``WorkerGroup``), and a Bull queue beside its BullMQ twin under
another prefix, as during a migration's cut-over (``docs/migration.md``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from pyqueue import InvalidOptionsError, Job, Queue, QueueEntry, WorkerSettings
from pyqueue.group import WorkerGroup

runs: list[tuple[str, Any]] = []


async def record(job: Job[Any]) -> str:
    runs.append((job.queue.prefix, job.data))
    return "ok"


async def test_a_bullmq_entry_is_run_in_bullmq_mode_on_a_new_queue(
    redis_url: str, queue_name: str
) -> None:
    settings = WorkerSettings(queues=[QueueEntry(queue_name, record, protocol="bullmq")],
                              redis_url=redis_url)
    # The group starts on an empty queue: only the entry says which format it is.
    async with WorkerGroup(settings) as group:
        assert [w.queue.format for w in group.workers] == ["bullmq"]
        async with settings.queue(queue_name) as producer:
            job = await producer.add({"n": 1})
            assert await job.finished(timeout=timedelta(seconds=10)) == "ok"


async def test_a_bull_queue_and_its_bullmq_twin_in_one_settings_object(
    redis_url: str, queue_name: str
) -> None:
    runs.clear()
    settings = WorkerSettings(queues=[
        QueueEntry(queue_name, record, protocol="bull"),
        QueueEntry(queue_name, record, prefix="bmq", protocol="bullmq"),
    ], redis_url=redis_url)
    async with Queue(queue_name, redis_url, protocol="bull") as old, \
            Queue(queue_name, redis_url, prefix="bmq", protocol="bullmq") as new, \
            WorkerGroup(settings):
        first = await old.add({"side": "bull"})
        second = await new.add({"side": "bullmq"})
        assert await first.finished(timeout=timedelta(seconds=10)) == "ok"
        assert await second.finished(timeout=timedelta(seconds=10)) == "ok"
    assert sorted(runs, key=str) == [("bmq", {"side": "bullmq"}), ("bull", {"side": "bull"})]


def test_the_same_queue_twice_under_one_prefix_is_refused() -> None:
    with pytest.raises(InvalidOptionsError, match="twice"):
        WorkerSettings(queues=[QueueEntry("q", record), QueueEntry("q", record, prefix="bull")])


def test_a_bad_entry_prefix_is_one_clear_error() -> None:
    with pytest.raises(InvalidOptionsError, match=r"queues\['q'\]\.prefix"):
        QueueEntry("q", record, prefix="")
