"""The events stream both ways: Node's QueueEvents hears pyqueue's scripts, and
pyqueue's stream reader hears Node BullMQ, with the same arguments."""

from __future__ import annotations

import uuid

import redis.asyncio as aioredis
from tests.bullmq.conftest import new_job
from tests.bullmq.nodebullmq import NodeBullMQ
from tests.bullmq.pyworker import work

from pyqueue._protocol.bullmq.events import StreamFeed, node_args
from pyqueue._protocol.bullmq.protocol import BullMQProtocol
from pyqueue._protocol.interface import QueueEvent

BEHAVIOUR = {"ok": {"progress": [42], "return": {"r": 1}}, "bad": {"fail": "nope"}}


def _fresh() -> str:
    return f"e-{uuid.uuid4().hex[:10]}"


async def test_node_queue_events_hear_pyqueues_scripts(
    node_bullmq: NodeBullMQ, raw_redis: aioredis.Redis, bullmq_version: str
) -> None:
    queue = _fresh()
    proto = BullMQProtocol(raw_redis, "bull", queue)
    # From the stream's start, not "$": Node's first XREAD may come after our first add.
    with node_bullmq.start({"queue": queue, "action": "listen", "until": 12,
                            "lastEventId": "0-0", "timeoutMs": 20_000}) as listener:
        await listener.await_for("ready", timeout=15)
        await proto.add_job(new_job({"a": 1}, name="ok"), token="")
        await proto.add_job(new_job({}, name="bad"), token="")
        await proto.add_job(new_job({}, name="ok", delay=60_000), token="")
        await work(proto, BEHAVIOUR, until=2)
        done = await listener.await_for("done", timeout=15)
    heard = [(e["name"], e["args"]) for e in listener.named("qe")]
    assert done["reason"] == "until"
    names = [name for name, _ in heard]
    assert names == [
        "added", "waiting", "added", "waiting", "added", "delayed", "active", "progress",
        "completed", "active", "failed", "retries-exhausted",
    ]
    args = dict(zip(names, (a for _, a in heard), strict=False))
    assert args["progress"] == {"jobId": "1", "data": 42}
    assert args["completed"] == {"jobId": "1", "returnvalue": {"r": 1}, "prev": "active"}
    assert args["failed"] == {"jobId": "2", "failedReason": "nope", "prev": "active"}
    assert args["retries-exhausted"] == {"jobId": "2", "attemptsMade": "1"}
    assert isinstance(args["delayed"]["delay"], int | float)


async def test_pyqueues_stream_reader_hears_node_with_node_queue_events_arguments(
    node_bullmq: NodeBullMQ, redis_url: str
) -> None:
    queue = _fresh()
    feed = StreamFeed(aioredis.Redis.from_url(redis_url),
                      f"bull:{queue}:events")
    heard: list[QueueEvent] = []
    try:
        await feed.next_batch(0.001)  # pins "$": what follows is ours to read
        with node_bullmq.start({"queue": queue, "action": "listen", "until": 11,
                                "lastEventId": "0-0", "timeoutMs": 20_000}) as listener:
            await listener.await_for("ready", timeout=15)
            await node_bullmq.add(queue, [{"name": "ok", "data": {"a": 1}},
                                          {"name": "bad", "data": {}}])
            await node_bullmq.arun({"queue": queue, "action": "process", "until": 2,
                                    "behaviour": BEHAVIOUR})
            await listener.await_for("done", timeout=15)
            node_heard = [(e["name"], e["args"]) for e in listener.named("qe")]
        while len(heard) < 11:
            batch = await feed.next_batch(2.0)
            assert batch, heard
            heard.extend(batch)
    finally:
        await feed.aclose()
    ours = [(e.name, node_args(e)) for e in heard if e.name != "drained"]
    assert ours[: len(node_heard)] == [
        (name, args) for name, args in node_heard if name != "drained"
    ]
    assert all(e.id for e in heard)
