"""Policy and cron beside the handler (issue 28, reproduction 10).

Every enqueue site repeated ``attempts=4, backoff=..., timeout=10_000``; a cron job
needed a ``Queue`` opened in ``on_startup``, and changing its cron string left the old
schedule running; one ``WorkerOptions`` covered every queue of a ``WorkerSettings``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as aioredis
from pydantic import BaseModel
from tests.integration.conftest import FAST

from pyqueue import (
    Backoff,
    Cron,
    InvalidOptionsError,
    Job,
    JobFailedError,
    JobHandle,
    JobOptions,
    Queue,
    QueueEntry,
    Repeat,
    Worker,
    WorkerOptions,
    WorkerSettings,
)
from pyqueue.group import WorkerGroup


class Email(BaseModel):
    to: str


async def send(job: Job[Email]) -> str:
    return job.data.to


async def slow(job: Job[Any]) -> str:
    await asyncio.sleep(5)
    return "late"


def report(job: JobHandle[Any]) -> str:
    return "report"


POLICY = JobOptions(attempts=4, backoff=Backoff(type="fixed", delay=100), timeout=10_000,
                    remove_on_complete=10)


async def test_a_producer_that_knows_the_entry_writes_its_policy(
    redis_url: str, queue_name: str, raw_redis: aioredis.Redis
) -> None:
    entry = QueueEntry(queue_name, send, default_job_options=POLICY)
    async with entry.queue(redis_url) as queue:
        assert queue.model is Email
        plain = await queue.add({"to": "a@b"})
        own = await queue.add({"to": "a@b"}, attempts=1, timeout=500)
    import json

    stored = json.loads(await raw_redis.hget(f"bull:{queue_name}:{plain.id}", "opts"))
    assert stored["attempts"] == 4
    assert stored["backoff"] == {"type": "fixed", "delay": 100}
    assert stored["timeout"] == 10_000
    assert stored["removeOnComplete"] == 10
    mine = json.loads(await raw_redis.hget(f"bull:{queue_name}:{own.id}", "opts"))
    assert (mine["attempts"], mine["timeout"], mine["removeOnComplete"]) == (1, 500, 10)


async def test_a_worker_applies_the_policy_to_jobs_that_lack_it(
    redis_url: str, queue_name: str
) -> None:
    entry = QueueEntry(queue_name, slow,
                       default_job_options=JobOptions(timeout=200, remove_on_fail=True,
                                                      backoff=Backoff(type="fixed", delay=50)))
    async with Queue(queue_name, redis_url) as producer:  # knows nothing of the entry
        lacking = await producer.add({}, attempts=2)
        own = await producer.add({}, attempts=1, timeout=100, remove_on_fail=False)
        async with entry.worker(redis_url, options=FAST):
            with pytest.raises(JobFailedError, match="Promise timed out after 200"):
                await lacking.finished(timeout=20)
            with pytest.raises(JobFailedError, match="Promise timed out after 100"):
                await own.finished(timeout=20)
        assert await producer.get_job(lacking.id) is None  # removed on fail, by the policy
        kept = await producer.get_job(own.id)
        assert kept is not None
        assert kept.attempts_made == 1


async def test_worker_takes_default_job_options_directly(redis_url: str, queue_name: str) -> None:
    async with Queue(queue_name, redis_url) as queue:
        job = await queue.add({})
        async with Worker(queue, slow, options=FAST,
                          default_job_options=JobOptions(timeout=100)):
            with pytest.raises(JobFailedError, match="timed out"):
                await job.finished(timeout=20)


async def test_settings_give_each_queue_its_own_concurrency_and_options(
    redis_url: str, queue_name: str
) -> None:
    settings = WorkerSettings(
        queues=[QueueEntry(queue_name + "-a", send, concurrency=3),
                QueueEntry(queue_name + "-b", report, options=WorkerOptions(concurrency=2))],
        options=FAST,
    )
    group = WorkerGroup(settings, redis_url=redis_url)
    by_name = {w.queue.name: w for w in group.workers}
    assert by_name[queue_name + "-a"].options.concurrency == 3
    assert by_name[queue_name + "-a"].options.lock_duration == FAST.lock_duration
    assert by_name[queue_name + "-b"].options.concurrency == 2
    assert by_name[queue_name + "-a"].queue.model is Email
    await group.close()


def test_bad_settings_are_one_clear_error() -> None:
    with pytest.raises(InvalidOptionsError, match=r"queues\['emails'\]: handler must be "
                                                  r"callable, got 42"):
        WorkerSettings(queues={"emails": 42})
    with pytest.raises(InvalidOptionsError, match=r"queues: 'emails' twice"):
        WorkerSettings(queues=[QueueEntry("emails", send), QueueEntry("emails", send)])
    with pytest.raises(InvalidOptionsError, match=r"cron\[0\]: .*not a handler of any queue"):
        WorkerSettings(queues=[QueueEntry("emails", send)], cron=[Cron(report, "* * * * *")])
    with pytest.raises(InvalidOptionsError, match=r"cron\[0\]: .*no queue 'nope'"):
        WorkerSettings(queues=[QueueEntry("emails", send)], cron=[Cron("nope", "* * * * *")])
    with pytest.raises(InvalidOptionsError, match=r"cron\[0\]\.data: invalid Email"):
        WorkerSettings(queues=[QueueEntry("emails", send)],
                       cron=[Cron(send, "* * * * *", data={"nope": 1})])
    with pytest.raises(InvalidOptionsError, match=r"cron: not a valid cron"):
        Cron(send, "every minute")
    with pytest.raises(InvalidOptionsError, match=r"cron: options\.job_id cannot be set"):
        Cron(send, "* * * * *", options=JobOptions(job_id="x"))
    with pytest.raises(InvalidOptionsError, match=r"default_job_options\.job_id"):
        QueueEntry("emails", send, default_job_options=JobOptions(job_id="x"))
    with pytest.raises(InvalidOptionsError, match=r"backoff\.type: unknown strategy 'jiter'"):
        QueueEntry("emails", send,
                   default_job_options=JobOptions(backoff=Backoff(type="jiter")))


async def test_cron_is_declared_once_however_many_workers_start(
    redis_url: str, queue_name: str
) -> None:
    def settings() -> WorkerSettings:
        return WorkerSettings(
            queues=[QueueEntry(queue_name, send)], options=FAST,
            cron=[Cron(send, "0 * * * *", tz="UTC", data=Email(to="ops@x"))],
        )

    groups = [WorkerGroup(settings(), redis_url=redis_url) for _ in range(3)]
    await asyncio.gather(*(g.start() for g in groups))
    try:
        async with Queue(queue_name, redis_url) as queue:
            schedules = await queue.get_repeatable_jobs()
            assert [(s["cron"], s["tz"]) for s in schedules] == [("0 * * * *", "UTC")]
            delayed = await queue.get_jobs("delayed")
            assert len(delayed) == 1
            assert delayed[0].data == {"to": "ops@x"}
    finally:
        await asyncio.gather(*(g.close() for g in groups))


async def test_a_cron_no_longer_listed_is_removed_and_others_are_left(
    redis_url: str, queue_name: str
) -> None:
    def settings(schedule: str) -> WorkerSettings:
        return WorkerSettings(queues=[QueueEntry(queue_name, send)], options=FAST,
                              cron=[Cron(queue_name, schedule, tz="UTC", data={"to": "a"})])

    async with Queue(queue_name, redis_url) as queue:
        # Declared by someone else (a producer, a Node app): not this settings' to remove.
        await queue.add({"to": "other"}, name="other", repeat=Repeat(cron="0 0 * * *", tz="UTC"))
        for schedule in ("0 * * * *", "30 * * * *"):
            group = WorkerGroup(settings(schedule), redis_url=redis_url)
            await group.start()
            await group.close()
        crons = sorted(s["cron"] for s in await queue.get_repeatable_jobs())
        assert crons == ["0 0 * * *", "30 * * * *"]
        # And none at all once the settings list none.
        empty = WorkerSettings(queues=[QueueEntry(queue_name, send)], options=FAST)
        group = WorkerGroup(empty, redis_url=redis_url)
        await group.start()
        await group.close()
        assert [s["cron"] for s in await queue.get_repeatable_jobs()] == ["0 0 * * *"]
        assert len(await queue.get_jobs("delayed")) == 1
