"""``add()`` says whether it created the job (issue 28, reproductions 5 and 6).

5. A digit-only custom id collided with the automatic ids (``job_id="2"``, then two adds
   without an id: the handler saw job 2 twice); such ids are refused, as BullMQ does.
6. A duplicate add returned the caller's data and options, not the stored ones, and a
   ``waiting`` event fired for an add that created nothing.
"""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as aioredis

from pyqueue import BulkJob, Debounce, InvalidOptionsError, JobOptions, Queue, QueueEvents


@pytest.mark.parametrize("job_id", ["2", "0", "-7", 2, "12345678901234567890"])
async def test_digit_only_custom_ids_are_refused(
    redis_url: str, queue_name: str, raw_redis: aioredis.Redis, job_id: Any
) -> None:
    async with Queue(queue_name, redis_url) as queue:
        with pytest.raises(InvalidOptionsError, match=r"job_id: .*digits.*automatic ids"):
            await queue.add({}, job_id=job_id)
        with pytest.raises(InvalidOptionsError, match="job_id"):
            await queue.add_bulk([BulkJob({}, options=JobOptions(job_id=job_id))])
    assert await raw_redis.keys(f"bull:{queue_name}:*") == []


@pytest.mark.parametrize("job_id", ["007", "2a", "order-2", "+2", "2.0", " 2"])
async def test_ids_that_are_not_canonical_integers_are_kept(
    redis_url: str, queue_name: str, job_id: str
) -> None:
    async with Queue(queue_name, redis_url) as queue:
        job = await queue.add({}, job_id=job_id)
        assert job.id == job_id
        assert job.created


async def test_a_duplicate_add_returns_what_is_stored(redis_url: str, queue_name: str) -> None:
    seen: list[tuple[str, str]] = []
    async with Queue(queue_name, redis_url) as queue, QueueEvents(queue_name, redis_url) as ev:
        heard: list[tuple[str, str]] = []
        ev.on("waiting", lambda job_id: heard.append(("waiting", job_id)))
        ev.on("duplicated", lambda job_id: heard.append(("duplicated", job_id)))
        queue.on("waiting", lambda job: seen.append(("waiting", job.id)))
        queue.on("delayed", lambda job: seen.append(("delayed", job.id)))
        queue.on("duplicated", lambda job_id: seen.append(("duplicated", job_id)))
        first = await queue.add({"v": "first"}, job_id="k", delay=60_000, attempts=3)
        second = await queue.add({"v": "second"}, job_id="k")
        plain = await queue.add({"v": "plain"})
        assert first.created
        assert plain.created
        assert not second.created
        assert second.id == "k"
        assert second.data == {"v": "first"}
        assert second.delay == 60_000
        assert second.opts.attempts == 3
        assert second.timestamp == first.timestamp
        stored = await queue.get_job("k")
        assert stored is not None
        assert stored.data == {"v": "first"}
        for _ in range(100):
            if len(heard) >= 2:
                break
            await _tick()
    assert seen == [("delayed", "k"), ("duplicated", "k"), ("waiting", plain.id)]
    assert heard == [("duplicated", "k"), ("waiting", plain.id)]


async def test_a_debounced_add_returns_the_holder(redis_url: str, queue_name: str) -> None:
    async with Queue(queue_name, redis_url) as queue:
        first = await queue.add({"v": 1}, debounce=Debounce(id="d"), delay=5_000)
        second = await queue.add({"v": 2}, debounce=Debounce(id="d"))
        assert first.created
        assert not second.created
        assert second.id == first.id
        assert second.data == {"v": 1}
        assert second.delay == 5_000


async def test_bulk_adds_tell_which_entries_were_created(
    redis_url: str, queue_name: str
) -> None:
    async with Queue(queue_name, redis_url) as queue:
        await queue.add({"v": "old"}, job_id="a")
        jobs = await queue.add_bulk([
            BulkJob({"v": "new"}, options=JobOptions(job_id="a")),
            BulkJob({"v": "b"}, options=JobOptions(job_id="b")),
            BulkJob({"v": "auto"}),
        ])
        assert [job.created for job in jobs] == [False, True, True]
        assert jobs[0].data == {"v": "old"}


async def _tick() -> None:
    import asyncio

    await asyncio.sleep(0.02)
