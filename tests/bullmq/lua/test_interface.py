"""The one interface, both formats: the same calls run a job through Bull 4 and
through BullMQ 6 on a real Redis, each in its own wire format; what a format
lacks is refused with one clear error; an existing queue's format is detected."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.asyncio as aioredis
from tests.bullmq.conftest import now_ms

from pyqueue._protocol.bull.adapter import BullProtocol
from pyqueue._protocol.bullmq.protocol import BullMQProtocol
from pyqueue._protocol.connection import ConnectionSpec
from pyqueue._protocol.formats import FORMATS, detect_format, open_protocol
from pyqueue._protocol.interface import (
    Attempt,
    Dedup,
    Idle,
    Keep,
    NewJob,
    ParentRef,
    QueueProtocol,
    SchedulerRepeat,
    WorkerSpec,
)
from pyqueue.errors import InvalidOptionsError, JobNotFound, LockMismatch
from pyqueue.options import JobOptions

W = WorkerSpec(lock_duration=30_000)


@pytest.fixture(params=FORMATS)
def any_proto(request: pytest.FixtureRequest, raw_redis: aioredis.Redis,
              queue_name: str) -> QueueProtocol:
    return open_protocol(request.param, raw_redis, "bull", queue_name)


def _job(proto: QueueProtocol, data: str = "{}", **options: object) -> NewJob:
    opts = JobOptions(**options)  # type: ignore[arg-type]
    now = now_ms()
    stored = proto.encode_options(opts, timestamp=now)
    from pyqueue._protocol.bull.wire import dumps
    return NewJob(job_id="", name="n", data=data, opts=dumps(stored), timestamp=now,
                  delay=int(opts.delay or 0), priority=opts.priority or 0)


async def test_one_job_through_either_format(any_proto: QueueProtocol) -> None:
    proto = any_proto
    first = await proto.add_job(_job(proto, '{"a":1}'), token="p")
    second = await proto.add_job(_job(proto, '{"a":2}', attempts=2), token="p")
    assert (first.id, second.id) == ("1", "2")
    reply = await proto.move_to_active(token="w", worker=W, now=now_ms())
    assert not isinstance(reply, Idle)
    raw, job_id = reply
    assert proto.decode_job(job_id, raw).data == {"a": 1}
    with pytest.raises(LockMismatch):
        await proto.complete(job_id, token="other", result_json="1", finished_on=now_ms(),
                             keep=Keep(-1), worker=W, fetch_next=False)
    nxt = await proto.complete(job_id, token="w", result_json='"done"', finished_on=now_ms(),
                               keep=Keep(-1), worker=W, fetch_next=True)
    assert nxt is not None
    assert not isinstance(nxt, Idle)
    assert nxt[1] == "2"
    assert await proto.finished_outcome("1") == (1, '"done"')
    await proto.retry("2", Attempt(1, "oops", '["Error: oops"]'), token="w", delay=0,
                      lifo=False, now=now_ms())
    assert await proto.get_state("2") == "waiting"
    again = await proto.move_to_active(token="w", worker=W, now=now_ms())
    assert not isinstance(again, Idle)
    await proto.fail("2", Attempt(2, "oops", "[]"), token="w", finished_on=now_ms(),
                     keep=Keep(-1), worker=W, max_attempts=2)
    assert await proto.finished_outcome("2") == (2, "oops")
    assert await proto.get_counts(["completed", "failed", "waiting"]) == {
        "completed": 1, "failed": 1, "waiting": 0,
    }
    await proto.update_progress("1", "50")
    assert await proto.add_log("1", "line") == 1
    with pytest.raises(JobNotFound):
        await proto.update_data("nope", "{}")
    assert await proto.finished_outcome("nope") == (-1, None)
    assert proto.builtin_backoff({"type": "fixed", "delay": 10}, 3) == 10
    assert proto.builtin_backoff({"type": "mine"}, 1) is None


async def test_events_in_one_vocabulary(any_proto: QueueProtocol, redis_url: str) -> None:
    proto = any_proto
    feed = proto.event_feed(aioredis.Redis.from_url(redis_url))
    try:
        await feed.next_batch(0.05)  # subscribed (Bull) / pinned at the end (BullMQ)
        await proto.add_job(_job(proto), token="p")
        reply = await proto.move_to_active(token="w", worker=W, now=now_ms())
        assert not isinstance(reply, Idle)
        await proto.complete("1", token="w", result_json='{"r":1}', finished_on=now_ms(),
                             keep=Keep(-1), worker=W, fetch_next=False)
        heard = []
        while not any(e.name == "completed" for e in heard):
            batch = await feed.next_batch(2.0)
            assert batch, heard
            heard += batch
    finally:
        await feed.aclose()
    completed = next(e for e in heard if e.name == "completed")
    assert (completed.job_id, completed.fields["returnvalue"]) == ("1", '{"r":1}')
    assert [e.name for e in heard if e.name in ("waiting", "active")] == ["waiting", "active"]


async def test_the_renewer_threads_side(any_proto: QueueProtocol, redis_url: str) -> None:
    proto = any_proto
    await proto.add_job(_job(proto), token="p")
    assert not isinstance(await proto.move_to_active(token="w", worker=W, now=now_ms()), Idle)
    assert await proto.extend_locks(["1"], ["w"], 60_000) == []
    locks = proto.sync_locks(ConnectionSpec.from_url(redis_url), 60_000)
    try:
        assert await asyncio.to_thread(locks.renew, ["1"], ["x"]) == [False]
        assert await asyncio.to_thread(locks.renew, ["1"], ["w"]) == [True]
        assert await asyncio.to_thread(locks.list_active) == ["1"]
        await asyncio.to_thread(locks.release, "1", "w")
    finally:
        locks.close()
    assert await proto.get_state("1") == "waiting"


async def test_what_bull_lacks_is_refused_by_name(raw_redis: aioredis.Redis,
                                                 queue_name: str) -> None:
    bull = BullProtocol(raw_redis, "bull", queue_name)
    with pytest.raises(InvalidOptionsError, match="parent"):
        bull.encode_options(JobOptions(), parent=ParentRef(id="1", queue="bull:p"))
    with pytest.raises(InvalidOptionsError, match="extend"):
        bull.encode_options(JobOptions(), dedup=Dedup(id="x", extend=True))
    with pytest.raises(InvalidOptionsError, match="change_priority"):
        await bull.change_priority("1", 2)
    with pytest.raises(InvalidOptionsError, match="job schedulers"):
        await bull.upsert_job_scheduler("s", SchedulerRepeat(every=5), now=1)
    assert await bull.schedule_next("1", {}, None, now=1) is None
    with pytest.raises(InvalidOptionsError, match="protocol"):
        open_protocol("bullmq5", raw_redis, "bull", queue_name)


async def test_an_existing_queues_format_is_detected(raw_redis: aioredis.Redis) -> None:
    names = [f"d-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    bull = BullProtocol(raw_redis, "bull", names[0])
    await bull.add_job(NewJob(job_id="", name="n", data="{}", opts="{}", timestamp=1,
                              priority=3), token="p")
    bullmq = BullMQProtocol(raw_redis, "bull", names[1])
    await bullmq.add_job(NewJob(job_id="", name="n", data="{}", opts="{}", timestamp=1),
                         token="")
    assert await detect_format(raw_redis, "bull", names[0]) == "bull"
    assert await detect_format(raw_redis, "bull", names[1]) == "bullmq"
    assert await detect_format(raw_redis, "bull", names[2]) is None
