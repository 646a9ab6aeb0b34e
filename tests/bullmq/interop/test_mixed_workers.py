"""Node BullMQ Workers and pyqueue's BullMQ-mode scripts on one queue at once:
every job runs, none is lost, none runs twice (nothing stalls here)."""

from __future__ import annotations

import asyncio
import uuid

import redis.asyncio as aioredis
from tests.bullmq.conftest import new_job
from tests.bullmq.nodebullmq import NodeBullMQ, single
from tests.bullmq.pyworker import work

from pyqueue._protocol.bullmq.protocol import BullMQProtocol

JOBS = 300


async def test_node_and_pyqueue_share_a_queue(
    node_bullmq: NodeBullMQ, raw_redis: aioredis.Redis
) -> None:
    queue = f"m-{uuid.uuid4().hex[:10]}"
    proto = BullMQProtocol(raw_redis, "bull", queue)
    half = JOBS // 2
    jobs = [new_job({"i": i}, name="j", priority=(i % 3) or None) for i in range(half)]
    await proto.add_jobs(jobs, token="")
    await node_bullmq.add(queue, [{"name": "j", "data": {"i": i}} for i in range(half, JOBS)],
                          bulk=True)
    with node_bullmq.start({"queue": queue, "action": "process", "concurrency": 4,
                            "timeoutMs": 60_000}) as node_worker:
        await node_worker.await_for("ready", timeout=15)
        ours = await work(proto, {"j": {"return": "py"}}, until=JOBS, until_idle=True,
                          timeout=60)
        # Node may still be finishing the jobs it holds: wait for them, then stop it.
        deadline = asyncio.get_running_loop().time() + 30
        while (await proto.get_counts(["completed"]))["completed"] < JOBS:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.05)
        events = await asyncio.to_thread(node_worker.terminate)
        node_ids = [e["id"] for e in events if e["event"] == "completed"]
    everyone = node_ids + ours.completed
    assert len(everyone) == len(set(everyone))  # none twice
    assert set(everyone) == {str(i) for i in range(1, JOBS + 1)}  # none lost
    counts = await proto.get_counts(["completed", "waiting", "prioritized", "active"])
    assert counts == {"completed": JOBS, "waiting": 0, "prioritized": 0, "active": 0}
    assert single(events, "done")["completed"] == len(node_ids)
    assert node_ids  # both sides took part
    assert ours.completed
