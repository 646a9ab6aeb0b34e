"""Aborting leaves Node Bull alone: its workers ignore the flag and the channel (item 8).

A Node worker running a job that pyqueue aborts runs it to its end and completes
it, as documented; a job carrying the flag is processed by Node as any other.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from tests.interop.bull import NodeBull

from pyqueue import Queue

FAST = {"stalledInterval": 500, "lockDuration": 1000, "guardInterval": 200, "drainDelay": 1}


@pytest.fixture
async def pq(redis_url: str, queue_name: str) -> AsyncIterator[Queue[Any]]:
    async with Queue[Any](queue_name, redis_url) as q:
        yield q


async def test_node_worker_is_unaffected_by_an_abort(
    node_bull: NodeBull, bull_version: str, pq: Queue[Any]
) -> None:
    del bull_version
    slow = await pq.add({"k": 1}, name="slow")
    flagged = await pq.add({"k": 2}, name="flagged")
    # As abortJob leaves an active job's hash; Node must read the job as usual.
    await pq.client.hset(pq.keys.job(flagged.id), "pqAbort", "aborted: by pyqueue")
    node = asyncio.create_task(node_bull.arun({
        "queue": pq.name, "action": "process", "until": 2, "timeoutMs": 20000,
        "settings": FAST, "concurrency": 1,
        "behaviour": {"slow": {"sleepMs": 1500, "return": "slow done"},
                      "*": {"return": "flagged done"}},
    }))
    deadline = time.monotonic() + 15
    while await slow.get_state() != "active":
        assert time.monotonic() < deadline, "Node never took the job"
        await asyncio.sleep(0.02)
    assert await pq.abort(slow.id, "from python") == "signalled"
    events = await node
    finished = {e["id"]: e for e in events if e["event"] in ("completed", "failed")}
    assert finished[slow.id]["event"] == "completed"
    assert finished[flagged.id]["event"] == "completed"
    for job, result in ((slow, "slow done"), (flagged, "flagged done")):
        await job.reload()
        assert await job.get_state() == "completed"
        assert job.return_value == result
