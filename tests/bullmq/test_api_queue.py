"""The public Queue in BullMQ mode (``Queue(..., protocol="bullmq")``), on real Redis:
adds as BullMQ stores them, reads, management, format detection and refusal to mix."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from pyqueue import BulkJob, JobOptions, ProtocolMismatchError, Queue
from pyqueue.errors import InvalidOptionsError, JobNotFound
from pyqueue.options import Backoff


@pytest.fixture
async def mq(redis_url: str, queue_name: str):  # type: ignore[no-untyped-def]
    queue: Queue = Queue(queue_name, redis_url, protocol="bullmq")
    yield queue
    await queue.close()


async def test_add_writes_bullmq_job(mq: Queue, raw_redis: aioredis.Redis,
                                     queue_name: str) -> None:
    job = await mq.add({"a": 1}, name="email", attempts=3,
                       backoff=Backoff(type="exponential", delay=100))
    assert mq.format == "bullmq"
    assert job.created
    assert job.id == "1"
    base = f"bull:{queue_name}:"
    stored = await raw_redis.hgetall(base + "1")
    assert stored[b"name"] == b"email"
    assert stored[b"data"] == b'{"a":1}'
    assert b"atm" not in stored  # BullMQ writes attempt counters only when they move
    # BullMQ wakes workers with a marker; its wait list holds the job.
    assert await raw_redis.lrange(base + "wait", 0, -1) == [b"1"]
    assert await raw_redis.exists(base + "marker") == 1
    assert await raw_redis.xlen(base + "events") >= 1
    again = await mq.get_job("1")
    assert again is not None
    assert again.data == {"a": 1}
    assert again.raw_opts["attempts"] == 3
    assert again.raw_opts["backoff"] == {"type": "exponential", "delay": 100}


async def test_priority_delay_and_states(mq: Queue) -> None:
    low = await mq.add({}, name="p", priority=5)
    waiting = await mq.add({}, name="w")
    delayed = await mq.add({}, name="d", delay=60_000)
    assert await mq.get_job_state(low.id) == "prioritized"
    assert await mq.get_job_state(waiting.id) == "waiting"
    assert await mq.get_job_state(delayed.id) == "delayed"
    counts = await mq.get_job_counts()
    assert counts["prioritized"] == 1
    assert counts["waiting"] == 1
    assert counts["delayed"] == 1
    assert await mq.count() == 3
    assert await mq.get_job_ids("prioritized") == [low.id]
    with pytest.raises(JobNotFound):
        await mq.get_job_state("nope")


async def test_custom_ids_follow_bullmq_rules(mq: Queue) -> None:
    first = await mq.add({"v": 1}, job_id="order-7")
    again = await mq.add({"v": 2}, job_id="order-7")
    assert first.created
    assert not again.created
    assert again.data == {"v": 1}  # the stored job, not the new data
    for bad in ("12", "a:b"):
        with pytest.raises(InvalidOptionsError):
            await mq.add({}, job_id=bad)
    with pytest.raises(InvalidOptionsError, match="timeout"):
        await mq.add({}, timeout=100)


async def test_add_bulk_lifo_and_dedup(mq: Queue, raw_redis: aioredis.Redis,
                                       queue_name: str) -> None:
    jobs = await mq.add_bulk([
        BulkJob({"i": 0}), BulkJob({"i": 1}, options=JobOptions(lifo=True)),
        BulkJob({"i": 2}, name="named"),
    ])
    assert [j.id for j in jobs] == ["1", "2", "3"]
    assert all(j.created for j in jobs)
    # LPUSH for FIFO, RPUSH for LIFO: a worker pops from the right.
    assert await raw_redis.lrange(f"bull:{queue_name}:wait", 0, -1) == [b"3", b"1", b"2"]
    from pyqueue.options import Debounce

    held = await mq.add({"x": 1}, debounce=Debounce(id="k"))
    dup = await mq.add({"x": 2}, debounce=Debounce(id="k"))
    assert held.created
    assert not dup.created
    assert dup.id == held.id
    assert await mq.remove_debounce_key("k")


async def test_pause_resume_clean_obliterate(mq: Queue, raw_redis: aioredis.Redis,
                                             queue_name: str) -> None:
    await mq.add({})
    await mq.pause()
    assert await mq.is_paused()
    assert await raw_redis.hget(f"bull:{queue_name}:meta", "paused") == b"1"
    await mq.resume()
    assert not await mq.is_paused()
    await mq.obliterate()
    assert await raw_redis.keys(f"bull:{queue_name}:*") == []


async def test_progress_and_logs_through_job(mq: Queue) -> None:
    job = await mq.add({})
    await job.progress(40)
    assert await job.log("one") == 1
    await job.log("two")
    lines, total = await mq.get_job_logs(job.id)
    assert (lines, total) == (["one", "two"], 2)
    fresh = await mq.get_job(job.id)
    assert fresh is not None
    assert fresh.progress_value == 40
    await job.remove()
    assert await mq.get_job(job.id) is None


async def test_auto_detects_a_bullmq_queue(mq: Queue, redis_url: str, queue_name: str) -> None:
    await mq.add({"from": "mq"})
    auto: Queue = Queue(queue_name, redis_url)
    try:
        assert auto.format == "bull"  # nothing asked yet
        job = await auto.get_job("1")
        assert auto.format == "bullmq"
        assert job is not None
        assert job.data == {"from": "mq"}
        added = await auto.add({"from": "auto"})
        assert added.id == "2"
        assert await auto.get_job_state("2") == "waiting"
    finally:
        await auto.close()


async def test_a_new_queue_defaults_to_bull(redis_url: str, queue_name: str,
                                            raw_redis: aioredis.Redis) -> None:
    async with Queue(queue_name, redis_url) as queue:
        await queue.add({})
        assert queue.format == "bull"
    assert await raw_redis.exists(f"bull:{queue_name}:marker") == 0


async def test_refuses_bull_queue_as_bullmq(redis_url: str, queue_name: str) -> None:
    async with Queue(queue_name, redis_url, protocol="bull") as bull:
        await bull.add({}, priority=3)  # Bull's priority index marks the queue as Bull's
    mq: Queue = Queue(queue_name, redis_url, protocol="bullmq")
    try:
        with pytest.raises(ProtocolMismatchError, match="is a Bull queue") as caught:
            await mq.add({})
        assert caught.value.found == "bull"
    finally:
        await mq.close()


async def test_refuses_bullmq_queue_as_bull(mq: Queue, redis_url: str, queue_name: str) -> None:
    await mq.add({})
    bull: Queue = Queue(queue_name, redis_url, protocol="bull")
    try:
        with pytest.raises(ProtocolMismatchError, match="is a BullMQ queue") as caught:
            await bull.add({})
        assert caught.value.found == "bullmq"
        assert await mq.get_job_counts("waiting") == {"waiting": 1}  # nothing written
    finally:
        await bull.close()


def test_unknown_protocol_is_refused() -> None:
    with pytest.raises(InvalidOptionsError, match="protocol"):
        Queue("q", protocol="celery")

