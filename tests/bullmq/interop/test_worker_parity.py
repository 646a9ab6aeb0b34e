"""A job's way through a worker: pyqueue's scripts leave what a Node BullMQ Worker leaves.

The same jobs are added (by Node) to two fresh queues; a Node ``Worker``
processes one, pyqueue's script calls run the other the way Node's Worker does
(``tests/bullmq/pyworker.py``); then the two queues' states are compared. What
only a live Node worker writes is left out of the comparison: the marker (its
BZPOPMIN pops it) and the stalled checker's bookkeeping (``stalled``,
``stalled-check``), which pyqueue's engine runs on its own schedule.
"""

from __future__ import annotations

import uuid
from typing import Any

import redis.asyncio as aioredis
from tests.bullmq.nodebullmq import NodeBullMQ, single
from tests.bullmq.pyworker import work
from tests.bullmq.state import snapshot

from pyqueue._protocol.bullmq.protocol import BullMQProtocol

_WORKER_ONLY = ("marker", "stalled", "stalled-check")


def _fresh() -> str:
    return f"w-{uuid.uuid4().hex[:10]}"


async def _state(raw: aioredis.Redis, queue: str) -> dict[str, Any]:
    state = await snapshot(raw, f"bull:{queue}:", skip=_WORKER_ONLY)
    state.get("meta", {}).get("value", {}).pop("version", None)
    return state


BEHAVIOUR: dict[str, dict[str, Any]] = {
    "ok": {"return": {"r": 1}},
    "none": {},
    "flaky": {"failTimes": 2},
    "broken": {"fail": "boom"},
    "noisy": {"progress": [50, {"step": 2}], "log": ["one", "two"], "return": "done"},
}

JOBS: list[dict[str, Any]] = [
    {"name": "ok", "data": {"i": 1}},
    {"name": "none", "data": {"i": 2}, "opts": {"removeOnComplete": True}},
    {"name": "flaky", "data": {"i": 3}, "opts": {"attempts": 3}},
    {"name": "broken", "data": {"i": 4}, "opts": {"attempts": 2}},
    {"name": "broken", "data": {"i": 5}, "opts": {"removeOnFail": True}},
    {"name": "noisy", "data": {"i": 6}, "opts": {"priority": 3}},
    {"name": "ok", "data": {"i": 7}, "opts": {"removeOnComplete": 1}},
    {"name": "ok", "data": {"i": 8}, "opts": {"lifo": True}},
]


async def _both(node: NodeBullMQ, raw: aioredis.Redis, jobs: list[dict[str, Any]],
                until: int, *, compare_events: bool = True) -> tuple[Any, Any]:
    node_q, py_q = _fresh(), _fresh()
    await node.add(node_q, jobs)
    await node.add(py_q, jobs)
    done = single(await node.arun({"queue": node_q, "action": "process", "until": until,
                                   "behaviour": BEHAVIOUR}), "done")
    assert done["reason"] == "until"
    await work(BullMQProtocol(raw, "bull", py_q), BEHAVIOUR, until=until)
    skip = () if compare_events else ("events",)
    py_state, node_state = await _state(raw, py_q), await _state(raw, node_q)
    for state in (py_state, node_state):
        for name in skip:
            state.pop(name, None)
    return py_state, node_state


async def test_completing_failing_and_retrying_leave_node_workers_state(
    node_bullmq: NodeBullMQ, raw_redis: aioredis.Redis
) -> None:
    py_state, node_state = await _both(node_bullmq, raw_redis, JOBS, until=len(JOBS))
    assert py_state == node_state
    assert py_state["failed"]["value"] == ["4"]  # 5 was removed on failure
    assert "2" not in py_state
    assert "5" not in py_state


async def test_backoff_retries_leave_node_workers_state(
    node_bullmq: NodeBullMQ, raw_redis: aioredis.Redis
) -> None:
    jobs = [
        {"name": "flaky", "data": {}, "opts": {"attempts": 3,
                                               "backoff": {"type": "fixed", "delay": 150}}},
        {"name": "flaky", "data": {}, "opts": {"attempts": 4,
                                               "backoff": {"type": "exponential", "delay": 100}}},
        {"name": "broken", "data": {}, "opts": {"attempts": 2, "backoff": 100}},
    ]
    # A delayed retry's timing decides where other events fall: compare the rest.
    py_state, node_state = await _both(node_bullmq, raw_redis, jobs, until=3,
                                       compare_events=False)
    assert py_state == node_state
