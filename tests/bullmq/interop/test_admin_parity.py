"""Managing a queue: each operation leaves the state Node BullMQ's own call leaves.

Two fresh queues get the same jobs (added by Node, some processed by pyqueue's
script-driven worker); then one operation runs through Node BullMQ on the first
queue and through :class:`BullMQProtocol` on the second, and the two queues'
states are compared, events stream included. Reads (counts, states, counts per
priority, logs) must answer what Node answers.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
from tests.bullmq.nodebullmq import NodeBullMQ
from tests.bullmq.pyworker import now_ms, work
from tests.bullmq.state import snapshot

from pyqueue._protocol.bullmq.protocol import BullMQProtocol

PyOp = Callable[[BullMQProtocol], Awaitable[Any]]


def _fresh() -> str:
    return f"a-{uuid.uuid4().hex[:10]}"


async def _state(raw: aioredis.Redis, queue: str) -> dict[str, Any]:
    state = await snapshot(raw, f"bull:{queue}:")
    state.get("meta", {}).get("value", {}).pop("version", None)
    return state


JOBS: list[dict[str, Any]] = [
    {"name": "ok", "data": {"i": 1}},
    {"name": "ok", "data": {"i": 2}, "opts": {"priority": 4}},
    {"name": "ok", "data": {"i": 3}, "opts": {"delay": 60_000}},
    {"name": "ok", "data": {"i": 4}, "opts": {"priority": 2}},
    {"name": "ok", "data": {"i": 5}, "opts": {"jobId": "named"}},
]
FINISHED: list[dict[str, Any]] = [
    {"name": "ok", "data": {"i": 1}},
    {"name": "broken", "data": {"i": 2}},
    {"name": "ok", "data": {"i": 3}},
    {"name": "broken", "data": {"i": 4}, "opts": {"priority": 5}},
]
BEHAVIOUR = {"ok": {"return": 1}, "broken": {"fail": "boom"}}


async def _compare(
    node: NodeBullMQ, raw: aioredis.Redis, jobs: list[dict[str, Any]], op: str,
    node_args: dict[str, Any], py_op: PyOp, *, process: int = 0,
) -> tuple[dict[str, Any], dict[str, Any]]:
    node_q, py_q = _fresh(), _fresh()
    for queue in (node_q, py_q):
        await node.add(queue, jobs)
        if process:
            await work(BullMQProtocol(raw, "bull", queue), BEHAVIOUR, until=process)
    result = await node.admin(node_q, op, **node_args)
    assert result["ok"], result
    await py_op(BullMQProtocol(raw, "bull", py_q))
    return await _state(raw, py_q), await _state(raw, node_q)


CASES: list[tuple[str, dict[str, Any], PyOp, int]] = [
    ("pause", {}, lambda p: p.pause(True), 0),
    ("promote", {"id": "3"}, lambda p: p.promote("3"), 0),
    ("changePriority", {"id": "2", "opts": {"priority": 1}},
     lambda p: p.change_priority("2", 1), 0),
    ("changePriority", {"id": "1", "opts": {"priority": 3}},
     lambda p: p.change_priority("1", 3), 0),
    ("changePriority", {"id": "4", "opts": {"priority": 0}},
     lambda p: p.change_priority("4", 0), 0),
    ("changePriority", {"id": "2", "opts": {"priority": 2, "lifo": True}},
     lambda p: p.change_priority("2", 2, lifo=True), 0),
    ("changeDelay", {"id": "3", "delay": 5_000},
     lambda p: p.change_delay("3", delay=5_000, now=now_ms()), 0),
    ("updateProgress", {"id": "named", "progress": {"done": 0.5}},
     lambda p: p.update_progress("named", '{"done":0.5}'), 0),
    ("log", {"id": "1", "text": "hello"}, lambda p: p.add_log("1", "hello"), 0),
    ("updateData", {"id": "1", "data": {"new": True}},
     lambda p: p.update_data("1", '{"new":true}'), 0),
    ("remove", {"id": "named"}, lambda p: p.remove("named"), 0),
    ("remove", {"id": "3"}, lambda p: p.remove("3"), 0),
    ("drain", {"delayed": False}, lambda p: p.drain(delayed=False), 0),
    ("drain", {"delayed": True}, lambda p: p.drain(delayed=True), 0),
    ("promoteJobs", {}, lambda p: p.promote_all(), 0),
]


@pytest.mark.parametrize(("op", "node_args", "py_op", "process"), CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
async def test_management_of_waiting_jobs_leaves_bullmqs_state(
    node_bullmq: NodeBullMQ, raw_redis: aioredis.Redis, op: str, node_args: dict[str, Any],
    py_op: PyOp, process: int,
) -> None:
    py_state, node_state = await _compare(node_bullmq, raw_redis, JOBS, op, node_args, py_op,
                                          process=process)
    assert py_state == node_state


FINISHED_CASES: list[tuple[str, dict[str, Any], PyOp]] = [
    ("retryJobs", {}, lambda p: p.retry_all(state="failed", now=now_ms())),
    ("retryJobs", {"opts": {"state": "completed"}},
     lambda p: p.retry_all(state="completed", now=now_ms())),
    ("retry", {"id": "2"}, lambda p: p.reprocess("2", state="failed", lifo=False)),
    ("retry", {"id": "3", "state": "completed", "opts": {"resetAttemptsMade": True}},
     lambda p: p.reprocess("3", state="completed", lifo=False, reset_attempts_made=True)),
    ("clean", {"grace": 0, "state": "completed"},
     lambda p: p.clean("completed", max_timestamp=now_ms(), limit=0)),
    ("clean", {"grace": 0, "state": "failed", "limit": 1},
     lambda p: p.clean("failed", max_timestamp=now_ms(), limit=1)),
    ("remove", {"id": "1"}, lambda p: p.remove("1")),
]


@pytest.mark.parametrize(("op", "node_args", "py_op"), FINISHED_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(FINISHED_CASES)])
async def test_management_of_finished_jobs_leaves_bullmqs_state(
    node_bullmq: NodeBullMQ, raw_redis: aioredis.Redis, op: str, node_args: dict[str, Any],
    py_op: PyOp,
) -> None:
    py_state, node_state = await _compare(node_bullmq, raw_redis, FINISHED, op, node_args,
                                          py_op, process=len(FINISHED))
    assert py_state == node_state


async def test_resume_and_obliterate_leave_bullmqs_state(
    node_bullmq: NodeBullMQ, raw_redis: aioredis.Redis
) -> None:
    node_q, py_q = _fresh(), _fresh()
    for queue in (node_q, py_q):
        await node_bullmq.add(queue, JOBS)
        await node_bullmq.admin(queue, "pause")
    assert (await node_bullmq.admin(node_q, "resume"))["ok"]
    await BullMQProtocol(raw_redis, "bull", py_q).pause(False)
    assert await _state(raw_redis, py_q) == await _state(raw_redis, node_q)

    for queue in (node_q, py_q):
        await work(BullMQProtocol(raw_redis, "bull", queue), BEHAVIOUR, until=4)
    assert (await node_bullmq.admin(node_q, "obliterate", force=True))["ok"]
    proto = BullMQProtocol(raw_redis, "bull", py_q)
    await proto.pause(True)
    await proto.obliterate(force=True, count=2)  # several steps
    assert await _state(raw_redis, py_q) == await _state(raw_redis, node_q) == {}


async def test_reads_answer_what_node_answers(
    node_bullmq: NodeBullMQ, raw_redis: aioredis.Redis
) -> None:
    queue = _fresh()
    await node_bullmq.add(queue, JOBS + FINISHED)
    proto = BullMQProtocol(raw_redis, "bull", queue)
    await work(proto, BEHAVIOUR, until=3)
    await proto.add_log("named", "a")
    await proto.add_log("named", "b")
    state = await node_bullmq.state(queue, ["1", "2", "3", "4", "named", "6", "7", "nope"])
    assert await proto.get_counts(list(state["counts"])) == state["counts"]
    for job in state["jobs"]:
        assert await proto.get_state(job["id"]) == (job["state"] or "unknown")
    node_prio = await node_bullmq.admin(queue, "getCountsPerPriority", priorities=[0, 2, 4, 5])
    counts = await proto.get_counts_per_priority([0, 2, 4, 5])
    assert dict(zip(("0", "2", "4", "5"), counts, strict=True)) == node_prio["value"]
    node_logs = await node_bullmq.admin(queue, "getJobLogs", id="named", start=0, end=-1,
                                        asc=False)
    lines, total = await proto.get_logs("named", 0, -1, asc=False)
    assert {"logs": lines, "count": total} == node_logs["value"]
    for types in (["waiting"], ["prioritized"], ["completed", "failed"], ["delayed"]):
        for asc in (False, True):
            node_ids = await node_bullmq.arun({"queue": queue, "action": "getJobs",
                                               "types": types, "asc": asc})
            ids: list[str] = []
            for t in types:
                ids += await proto.get_job_ids(t, 0, -1, asc=asc)
            assert ids == node_ids[0]["ids"], (types, asc)
