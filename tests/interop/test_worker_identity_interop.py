"""The attempt's worker (pqWorker, pqWorkerAt) is invisible to Node Bull, and a Node attempt
after a pyqueue one is told apart."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.interop.bull import NodeBull

from pyqueue import Backoff, Queue, Worker, WorkerOptions, monitoring

FAST = WorkerOptions(drain_delay=1, guard_interval=200, stalled_interval=0, shutdown_grace=2)
NODE = {"stalledInterval": 5000, "guardInterval": 200, "drainDelay": 1}


async def test_node_ignores_the_fields_and_a_later_node_attempt_shows(
    node_bull: NodeBull, redis_url: str, queue_name: str
) -> None:
    async with Queue(queue_name, redis_url) as queue:
        done = await queue.add({"n": 1}, name="ok")
        retried = await queue.add({"n": 2}, name="flaky", attempts=2,
                                  backoff=Backoff(type="fixed", delay=1000))
        failed_once = asyncio.Event()

        def handler(job: Any) -> str:
            if job.name == "flaky":
                raise RuntimeError("first attempt, on pyqueue")
            return "ok"

        worker = Worker(queue, handler, options=FAST)
        worker.on("failed", lambda job, exc: failed_once.set())
        async with worker:
            await asyncio.wait_for(failed_once.wait(), 20)
            while await queue.get_job_state(done.id) != "completed":  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        ran = await monitoring.get_attempt_worker(queue, done.id)
        assert ran is not None
        assert ran.latest
        raw = await queue.client.hgetall(queue.keys.job(done.id))
        assert b"pqWorker" in raw
        # Node reads the job as if the fields were not there (Job.fromJSON names its fields).
        seen = node_bull.get_jobs(queue_name, [done.id])[0]
        assert seen["state"] == "completed"
        assert seen["json"]["returnvalue"] == "ok"
        assert not any(k.startswith("pq") for k in seen["json"])
        # Node runs the second attempt: the field still names pyqueue's, marked as earlier.
        await node_bull.arun({"queue": queue_name, "action": "process", "until": 1,
                              "settings": NODE, "behaviour": {"*": {"return": "node"}}},
                             timeout=30)
        assert await queue.get_job_state(retried.id) == "completed"
        earlier = await monitoring.get_attempt_worker(queue, retried.id)
        assert earlier is not None
        assert earlier.id == worker.token
        assert not earlier.latest
