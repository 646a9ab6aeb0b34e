"""Jobs added by pyqueue's BullMQ-mode scripts, processed by a real Node BullMQ Worker.

Every supported BullMQ 6 release runs them: priorities and LIFO in BullMQ's
order, delays honoured, retries with BullMQ's backoff, deduplication holding
until the owner finishes, and a deferred failure pyqueue's stalled check set.
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import redis.asyncio as aioredis
from tests.bullmq.conftest import new_job
from tests.bullmq.nodebullmq import NodeBullMQ, single
from tests.bullmq.pyworker import now_ms

from pyqueue._protocol.bullmq.protocol import BullMQProtocol
from pyqueue._protocol.interface import Dedup, Idle, WorkerSpec
from pyqueue.options import Backoff


def _fresh() -> str:
    return f"n-{uuid.uuid4().hex[:10]}"


def _named(events: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in events if e.get("event") == name]


async def test_priorities_lifo_and_delays_in_bullmqs_order(
    node_bullmq: NodeBullMQ, raw_redis: aioredis.Redis, bullmq_version: str
) -> None:
    queue = _fresh()
    proto = BullMQProtocol(raw_redis, "bull", queue)
    added_at = now_ms()
    jobs = [
        new_job({"n": "fifo-1"}, name="j"),
        new_job({"n": "fifo-2"}, name="j"),
        new_job({"n": "prio-5"}, name="j", priority=5),
        new_job({"n": "prio-1"}, name="j", priority=1),
        new_job({"n": "lifo"}, name="j", lifo=True),
        new_job({"n": "prio-1b"}, name="j", priority=1),
        new_job({"n": "late"}, name="j", delay=2_000),
    ]
    await proto.add_jobs(jobs, token="")
    events = await node_bullmq.arun({"queue": queue, "action": "process", "until": len(jobs)})
    order = [e["data"]["n"] for e in _named(events, "processing")]
    # wait first (LIFO at its head, then FIFO), then prioritized by priority, then arrival;
    # the delayed one once due (a slow start may let it join wait before the prioritized).
    assert [n for n in order if n != "late"] == [
        "lifo", "fifo-1", "fifo-2", "prio-1", "prio-1b", "prio-5",
    ]
    late = next(e for e in _named(events, "processing") if e["data"]["n"] == "late")
    assert late["processedOn"] >= added_at + 2_000
    assert single(events, "done")["completed"] == len(jobs)


async def test_retries_follow_bullmqs_backoff(
    node_bullmq: NodeBullMQ, raw_redis: aioredis.Redis, bullmq_version: str
) -> None:
    queue = _fresh()
    proto = BullMQProtocol(raw_redis, "bull", queue)
    await proto.add_job(new_job({}, name="flaky", attempts=3,
                                backoff=Backoff(type="exponential", delay=200)), token="")
    await proto.add_job(new_job({}, name="broken", attempts=2, backoff=100), token="")
    events = await node_bullmq.arun({
        "queue": queue, "action": "process", "until": 2,
        "behaviour": {"flaky": {"failTimes": 2, "return": "ok"}, "broken": {"fail": "no"}},
    })
    flaky = [e for e in _named(events, "processing") if e["name"] == "flaky"]
    assert [e["attemptsMade"] for e in flaky] == [0, 1, 2]
    # exponential: 200 ms after the first failure, 400 after the second
    gaps = [b["processedOn"] - a["t"] for a, b in itertools.pairwise(flaky)]
    assert gaps[0] >= 200 - 5
    assert gaps[1] >= 400 - 5
    broken = [e for e in _named(events, "failed") if e["name"] == "broken"]
    assert [e["final"] for e in broken] == [False, True]
    state = await node_bullmq.state(queue, ["1", "2"])
    jobs = {j["id"]: j for j in state["jobs"]}
    assert jobs["1"]["state"] == "completed"
    assert jobs["1"]["json"]["attemptsMade"] == 3
    assert jobs["2"]["state"] == "failed"
    assert jobs["2"]["json"]["failedReason"] == "no"


async def test_deduplication_holds_until_the_owner_finishes(
    node_bullmq: NodeBullMQ, raw_redis: aioredis.Redis, bullmq_version: str
) -> None:
    queue = _fresh()
    proto = BullMQProtocol(raw_redis, "bull", queue)
    first = await proto.add_job(new_job({"v": 1}, dedup=Dedup(id="x")), token="")
    second = await proto.add_job(new_job({"v": 2}, dedup=Dedup(id="x")), token="")
    assert second.deduplicated
    assert second.id == first.id
    owner = await node_bullmq.admin(queue, "getDeduplicationJobId", dedupId="x")
    assert owner["value"] == first.id
    await node_bullmq.arun({"queue": queue, "action": "process", "until": 1})
    assert (await node_bullmq.admin(queue, "getDeduplicationJobId", dedupId="x"))["value"] \
        is None
    third = await proto.add_job(new_job({"v": 3}, dedup=Dedup(id="x")), token="")
    assert not third.deduplicated
    assert third.id != first.id


async def test_a_deferred_failure_from_pyqueues_stalled_check_fails_in_node(
    node_bullmq: NodeBullMQ, raw_redis: aioredis.Redis, bullmq_version: str
) -> None:
    queue = _fresh()
    proto = BullMQProtocol(raw_redis, "bull", queue)
    await proto.add_job(new_job({}, name="crashy", attempts=5), token="")
    started = await proto.move_to_active(token="gone:0", worker=WorkerSpec(lock_duration=50),
                                         now=now_ms())
    assert not isinstance(started, Idle)
    # First check: the active job becomes a suspect; the lock then lapses (a dead worker).
    assert await proto.check_stalled(max_stalled_count=0, now=now_ms(), interval=1) == ([], [])
    await raw_redis.delete(f"bull:{queue}:1:lock", f"bull:{queue}:stalled-check")
    marked, recovered = await proto.check_stalled(max_stalled_count=0, now=now_ms(), interval=1)
    assert (marked, recovered) == (["1"], [])
    events = await node_bullmq.arun({"queue": queue, "action": "process", "until": 1,
                                     "behaviour": {"crashy": {"return": "ran"}}})
    assert not _named(events, "processing")  # failed without running
    failed = single(events, "failed")
    assert failed["reason"] == "job stalled more than allowable limit"
    assert failed["final"] is True
