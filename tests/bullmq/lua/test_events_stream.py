"""The events stream reader: in order, resuming after the last entry returned."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis
from tests.bullmq.conftest import new_job

from pyqueue._protocol.bullmq.events import decode_entry, node_args
from pyqueue._protocol.bullmq.protocol import BullMQProtocol


async def test_the_reader_resumes_after_the_last_entry(
    proto: BullMQProtocol, redis_url: str
) -> None:
    await proto.add_job(new_job({}, name="old"), token="")
    feed = proto.event_feed(aioredis.Redis.from_url(redis_url),
                            last_id="0")
    try:
        first = await feed.next_batch(0.1)
        assert [(e.name, e.job_id) for e in first] == [("added", "1"), ("waiting", "1")]
        assert await feed.next_batch(0.05) == []
        waiting = asyncio.create_task(feed.next_batch(5.0))
        await asyncio.sleep(0.05)
        await proto.add_job(new_job({}, name="new"), token="")
        assert [(e.name, e.fields.get("name")) for e in await waiting] == [
            ("added", "new"), ("waiting", None),
        ]
    finally:
        await feed.aclose()


async def test_a_feed_from_now_skips_what_came_before(
    proto: BullMQProtocol, redis_url: str
) -> None:
    await proto.add_job(new_job({}, name="before"), token="")
    feed = proto.event_feed(aioredis.Redis.from_url(redis_url))
    try:
        assert await feed.next_batch(0.01) == []
        await proto.add_job(new_job({}, name="after"), token="")
        names = [(e.name, e.fields.get("name")) for e in await feed.next_batch(1.0)]
        assert names == [("added", "after"), ("waiting", None)]
    finally:
        await feed.aclose()


def test_node_args_decode_as_queue_events_does() -> None:
    completed = decode_entry(b"1-0", {b"event": b"completed", b"jobId": b"7",
                                      b"returnvalue": b'{"a":[1]}', b"prev": b"active"})
    assert completed.name == "completed"
    assert completed.id == "1-0"
    assert node_args(completed) == {"jobId": "7", "returnvalue": {"a": [1]}, "prev": "active"}
    progress = decode_entry("2-0", {b"event": b"progress", b"jobId": b"7", b"data": b"50"})
    assert node_args(progress) == {"jobId": "7", "data": 50}
    delayed = decode_entry("3-0", {b"event": b"delayed", b"jobId": b"7", b"delay": b"1700"})
    assert node_args(delayed) == {"jobId": "7", "delay": 1700.0}
    odd = decode_entry("4-0", {b"event": b"completed", b"jobId": b"7", b"returnvalue": b"{x"})
    assert node_args(odd)["returnvalue"] == "{x"
    drained = decode_entry("5-0", {b"event": b"drained"})
    assert (drained.name, drained.job_id, node_args(drained)) == ("drained", "", {})
