"""Adds: pyqueue's BullMQ-mode scripts leave exactly the Redis state Node BullMQ leaves.

Each scenario runs twice on fresh queues of the same server, once through Node
BullMQ's ``Queue.add``/``addBulk`` and once through :class:`BullMQProtocol`,
and the two queues' whole states are compared (see ``tests/bullmq/state.py``
for what is normalised: times, stream ids, JSON key order). Then Node reads the
queue pyqueue wrote, as a check that BullMQ sees the jobs as its own.
"""

from __future__ import annotations

import uuid
from typing import Any

import redis.asyncio as aioredis
from tests.bullmq.conftest import new_job
from tests.bullmq.nodebullmq import NodeBullMQ
from tests.bullmq.state import snapshot

from pyqueue._protocol.bullmq.protocol import BullMQProtocol
from pyqueue._protocol.interface import Dedup
from pyqueue.options import KeepJobs


def _fresh() -> str:
    return f"p-{uuid.uuid4().hex[:10]}"


async def _state(raw: aioredis.Redis, queue: str) -> dict[str, Any]:
    state = await snapshot(raw, f"bull:{queue}:")
    # Node's Queue writes its library and version into meta when it opens.
    state.get("meta", {}).get("value", {}).pop("version", None)
    return state


# name, data, Node opts, pyqueue new_job keywords
ADDS: list[tuple[str, Any, dict[str, Any], dict[str, Any]]] = [
    ("plain", {"n": 1}, {}, {}),
    ("custom", [1, 2], {"jobId": "my-id", "attempts": 3}, {"job_id": "my-id", "attempts": 3}),
    ("later", "text", {"delay": 60_000}, {"delay": 60_000}),
    ("later2", None, {"delay": 60_000}, {"delay": 60_000}),
    ("urgent", {"p": 1}, {"priority": 1}, {"priority": 1}),
    ("lifo", {}, {"lifo": True}, {"lifo": True}),
    ("prio-lifo", {}, {"priority": 7, "lifo": True}, {"priority": 7, "lifo": True}),
    ("urgent2", {"p": 2}, {"priority": 1}, {"priority": 1}),
    ("custom", [1, 2], {"jobId": "my-id"}, {"job_id": "my-id"}),  # exists: duplicated
    ("keep", 0, {"removeOnComplete": {"count": 5, "age": 60}, "removeOnFail": 3},
     {"remove_on_complete": KeepJobs(count=5, age=60), "remove_on_fail": 3}),
]


async def test_single_adds_leave_bullmqs_state(
    node_bullmq: NodeBullMQ, raw_redis: aioredis.Redis
) -> None:
    node_q, py_q = _fresh(), _fresh()
    jobs = [{"name": n, "data": d, "opts": o} for n, d, o, _ in ADDS]
    node_ids = await node_bullmq.add(node_q, jobs)
    proto = BullMQProtocol(raw_redis, "bull", py_q)
    py_ids = [(await proto.add_job(new_job(d, name=n, **kw), token="")).id
              for n, d, _, kw in ADDS]
    assert py_ids == node_ids
    assert await _state(raw_redis, py_q) == await _state(raw_redis, node_q)


async def test_bulk_add_leaves_bullmqs_state(
    node_bullmq: NodeBullMQ, raw_redis: aioredis.Redis
) -> None:
    node_q, py_q = _fresh(), _fresh()
    jobs = [{"name": n, "data": d, "opts": o} for n, d, o, _ in ADDS]
    node_ids = await node_bullmq.add(node_q, jobs, bulk=True)
    proto = BullMQProtocol(raw_redis, "bull", py_q)
    added = await proto.add_jobs([new_job(d, name=n, **kw) for n, d, _, kw in ADDS], token="")
    assert [a.id for a in added] == node_ids
    assert [a.created for a in added] == [True] * 8 + [False, True]
    assert await _state(raw_redis, py_q) == await _state(raw_redis, node_q)


DEDUPS: list[tuple[dict[str, Any], Dedup, dict[str, Any]]] = [
    ({"id": "simple"}, Dedup(id="simple"), {}),
    ({"id": "simple"}, Dedup(id="simple"), {}),
    ({"id": "ttl", "ttl": 60_000}, Dedup(id="ttl", ttl=60_000), {}),
    ({"id": "ttl", "ttl": 60_000}, Dedup(id="ttl", ttl=60_000), {}),
    ({"id": "ext", "ttl": 60_000, "extend": True}, Dedup(id="ext", ttl=60_000, extend=True), {}),
    ({"id": "ext", "ttl": 60_000, "extend": True}, Dedup(id="ext", ttl=60_000, extend=True), {}),
    ({"id": "rep", "ttl": 60_000, "replace": True}, Dedup(id="rep", ttl=60_000, replace=True),
     {"delay": 30_000}),
    ({"id": "rep", "ttl": 60_000, "replace": True}, Dedup(id="rep", ttl=60_000, replace=True),
     {"delay": 30_000}),
    ({"id": "rep2", "replace": True}, Dedup(id="rep2", replace=True), {}),
    ({"id": "rep2", "replace": True}, Dedup(id="rep2", replace=True), {}),
    ({"id": "res", "reschedule": True}, Dedup(id="res", reschedule=True), {"delay": 30_000}),
    ({"id": "res", "reschedule": True}, Dedup(id="res", reschedule=True), {"delay": 50_000}),
]


async def test_deduplicated_adds_leave_bullmqs_state(
    node_bullmq: NodeBullMQ, raw_redis: aioredis.Redis
) -> None:
    node_q, py_q = _fresh(), _fresh()
    jobs = [{"name": "d", "data": {"i": i}, "opts": {"deduplication": de, **opts}}
            for i, (de, _, opts) in enumerate(DEDUPS)]
    node_ids = await node_bullmq.add(node_q, jobs)
    proto = BullMQProtocol(raw_redis, "bull", py_q)
    results = [await proto.add_job(new_job({"i": i}, name="d", dedup=dedup, **opts), token="")
               for i, (_, dedup, opts) in enumerate(DEDUPS)]
    assert [r.id for r in results] == node_ids
    assert [r.deduplicated for r in results] == [
        False, True, False, True, False, True, False, False, False, True, False, True,
    ]
    assert await _state(raw_redis, py_q) == await _state(raw_redis, node_q)


async def test_node_reads_pyqueue_adds_as_its_own(
    node_bullmq: NodeBullMQ, raw_redis: aioredis.Redis, bullmq_version: str
) -> None:
    queue = _fresh()
    proto = BullMQProtocol(raw_redis, "bull", queue)
    ids = [(await proto.add_job(new_job(d, name=n, **kw), token="")).id for n, d, _, kw in ADDS]
    state = await node_bullmq.state(queue, ids[:8])
    assert state["counts"] == {
        "active": 0, "completed": 0, "delayed": 2, "failed": 0, "prioritized": 3,
        "waiting": 4, "waiting-children": 0, "paused": 0,
    }
    by_id = {j["id"]: j for j in state["jobs"]}
    assert by_id["my-id"]["json"]["opts"] == {"attempts": 3, "jobId": "my-id"}
    assert by_id["my-id"]["json"]["data"] == [1, 2]
    assert [by_id[i]["state"] for i in ids[:8]] == [
        "waiting", "waiting", "delayed", "delayed", "prioritized", "waiting", "prioritized",
        "prioritized",
    ]
    assert by_id[ids[4]]["json"]["priority"] == 1
    assert by_id[ids[2]]["json"]["delay"] == 60_000


async def test_the_events_stream_is_trimmed_as_bullmq_trims_it(
    node_bullmq: NodeBullMQ, raw_redis: aioredis.Redis
) -> None:
    node_q, py_q = _fresh(), _fresh()
    for queue in (node_q, py_q):  # a Queue made with streams.events.maxLen 10 wrote this
        await raw_redis.hset(f"bull:{queue}:meta", "opts.maxLenEvents", 10)
    jobs = [{"name": "n", "data": {"i": i}} for i in range(300)]
    await node_bullmq.arun({"queue": node_q, "action": "addBulk", "jobs": jobs,
                            "queueOpts": {"skipMetasUpdate": True}})
    proto = BullMQProtocol(raw_redis, "bull", py_q)
    await proto.add_jobs([new_job({"i": i}, name="n") for i in range(300)], token="")
    node_len = await raw_redis.xlen(f"bull:{node_q}:events")
    assert await raw_redis.xlen(f"bull:{py_q}:events") == node_len
    assert node_len < 600  # trimmed (about: whole stream nodes go)
