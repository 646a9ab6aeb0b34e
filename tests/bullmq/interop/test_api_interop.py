"""The public API in BullMQ mode against real Node BullMQ, both directions:
Node adds, pyqueue's Worker runs; pyqueue's Queue adds, Node's Worker runs; Node and
pyqueue Workers share a queue; Node's QueueEvents hears a pyqueue Worker; a Node-made
queue is refused in Bull mode."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from tests.bullmq.nodebullmq import NodeBullMQ, single

from pyqueue import BulkJob, Job, JobOptions, ProtocolMismatchError, Queue, Worker
from pyqueue.options import Backoff


def _fresh() -> str:
    return f"api-{uuid.uuid4().hex[:10]}"


async def _until_completed(queue: Queue, n: int, seconds: float = 60.0) -> None:
    async with asyncio.timeout(seconds):
        while (await queue.get_job_counts("completed"))["completed"] < n:  # noqa: ASYNC110
            await asyncio.sleep(0.05)


async def test_node_producer_pyqueue_worker(node_bullmq: NodeBullMQ, redis_url: str,
                                            bullmq_version: str) -> None:
    name = _fresh()
    ids = await node_bullmq.add(name, [
        {"name": "plain", "data": {"i": 1}},
        {"name": "prio", "data": {"i": 2}, "opts": {"priority": 2}},
        {"name": "flaky", "data": {"i": 3},
         "opts": {"attempts": 3, "backoff": {"type": "exponential", "delay": 20}}},
        {"name": "late", "data": {"i": 4}, "opts": {"delay": 200}},
        {"name": "custom", "data": {"i": 5}, "opts": {"jobId": "my-id"}},
    ])
    tries: dict[str, int] = {}

    async def handler(job: Job[Any]) -> Any:
        tries[job.name] = tries.get(job.name, 0) + 1
        await job.progress(50)
        await job.log(f"{job.name} ran")
        if job.name == "flaky" and job.attempts_made < 2:
            raise RuntimeError(f"flaky {job.attempts_made}")
        return {"double": job.data["i"] * 2}

    async with Queue(name, redis_url, protocol="bullmq") as queue, Worker(queue, handler):
        await _until_completed(queue, 5)
    assert tries == {"plain": 1, "prio": 1, "flaky": 3, "late": 1, "custom": 1}
    seen = await node_bullmq.state(name, ids)
    by_id = {j["id"]: j for j in seen["jobs"]}
    assert all(j["state"] == "completed" for j in seen["jobs"])
    assert by_id["my-id"]["json"]["returnvalue"] == {"double": 10}
    flaky = by_id[ids[2]]["json"]
    assert flaky["attemptsMade"] == 3
    assert flaky["progress"] == 50
    assert len(flaky["stacktrace"]) == 2
    assert seen["counts"]["completed"] == 5
    assert seen["counts"]["active"] == 0


async def test_pyqueue_producer_node_worker(node_bullmq: NodeBullMQ, redis_url: str,
                                            bullmq_version: str) -> None:
    name = _fresh()
    async with Queue(name, redis_url, protocol="bullmq") as queue:
        first = await queue.add({"a": 1}, name="ok", job_id="order-1", priority=3)
        more = await queue.add_bulk([
            BulkJob({"b": 2}, name="ok"),
            BulkJob({"c": 3}, name="retry", options=JobOptions(
                attempts=2, backoff=Backoff(type="fixed", delay=10))),
            BulkJob({"d": 4}, name="ok", options=JobOptions(delay=100, lifo=True)),
        ])
        events = await node_bullmq.arun({
            "queue": name, "action": "process", "until": 4,
            "behaviour": {"ok": {"return": "node"}, "retry": {"failTimes": 1, "return": "2nd"}},
        }, timeout=60)
        done = single(events, "done")
        assert done["reason"] == "until"
        processing = {e["id"]: e for e in events if e["event"] == "processing"}
        assert processing["order-1"]["priority"] == 3
        assert processing["order-1"]["data"] == {"a": 1}
        assert processing[more[1].id]["opts"]["backoff"] == {"type": "fixed", "delay": 10}
        assert processing[more[2].id]["opts"]["delay"] == 100  # the field is 0 once promoted
        for job in (first, *more):
            fresh = await queue.get_job(job.id)
            assert fresh is not None
            assert await queue.get_job_state(job.id) == "completed"
        retried = await queue.get_job(more[1].id)
        assert retried is not None
        assert retried.return_value == "2nd"
        assert retried.attempts_made == 2


async def test_node_and_pyqueue_workers_share_a_queue(node_bullmq: NodeBullMQ,
                                                      redis_url: str) -> None:
    name = _fresh()
    total = 400
    ours: list[str] = []

    async def handler(job: Job[Any]) -> str:
        ours.append(job.id)
        await asyncio.sleep(0)
        return "py"

    async with Queue(name, redis_url, protocol="bullmq") as queue:
        await queue.add_bulk([BulkJob({"i": i}, name="j") for i in range(total // 2)])
        await node_bullmq.add(name, [{"name": "j", "data": {"i": i}}
                                     for i in range(total // 2, total)], bulk=True)
        with node_bullmq.start({"queue": name, "action": "process", "concurrency": 4,
                                "timeoutMs": 90_000}) as node_worker:
            await node_worker.await_for("ready", timeout=15)
            async with Worker(queue, handler, concurrency=4):
                await _until_completed(queue, total, seconds=90)
            events = await asyncio.to_thread(node_worker.terminate)
        node_ids = [e["id"] for e in events if e["event"] == "completed"]
        everyone = node_ids + ours
        assert len(everyone) == len(set(everyone))  # none twice
        assert set(everyone) == {str(i) for i in range(1, total + 1)}  # none lost
        assert node_ids  # both took part
        assert ours
        counts = await queue.get_job_counts("completed", "waiting", "active", "failed")
        assert counts == {"completed": total, "waiting": 0, "active": 0, "failed": 0}


async def test_node_queue_events_hear_a_pyqueue_worker(node_bullmq: NodeBullMQ,
                                                       redis_url: str) -> None:
    name = _fresh()

    async def handler(job: Job[Any]) -> Any:
        if job.name == "bad":
            raise ValueError("nope")
        await job.progress(7)
        return {"r": job.data["n"]}

    with node_bullmq.start({"queue": name, "action": "listen", "lastEventId": "0-0",
                            "events": ["completed", "failed", "progress"], "until": 5,
                            "timeoutMs": 30_000}) as listener:
        await listener.await_for("ready", timeout=15)
        async with Queue(name, redis_url, protocol="bullmq") as queue:
            await queue.add({"n": 1}, name="ok")
            await queue.add({"n": 2}, name="ok")
            await queue.add({}, name="bad")
            async with Worker(queue, handler):
                done = await listener.await_for("done", timeout=30)
    assert done["reason"] == "until"
    heard = [(e["name"], e["args"]) for e in listener.named("qe")]
    # One slot: the jobs run in order, each event in the order the worker made it.
    assert heard == [
        ("progress", {"jobId": "1", "data": 7}),
        ("completed", {"jobId": "1", "returnvalue": {"r": 1}, "prev": "active"}),
        ("progress", {"jobId": "2", "data": 7}),
        ("completed", {"jobId": "2", "returnvalue": {"r": 2}, "prev": "active"}),
        ("failed", {"jobId": "3", "failedReason": "nope", "prev": "active"}),
    ]


async def test_a_node_made_queue_is_refused_in_bull_mode(node_bullmq: NodeBullMQ,
                                                         redis_url: str) -> None:
    name = _fresh()
    await node_bullmq.add(name, [{"name": "x", "data": {}}])
    bull: Queue = Queue(name, redis_url, protocol="bull")
    try:
        with pytest.raises(ProtocolMismatchError, match="BullMQ queue"):
            await bull.add({})
    finally:
        await bull.close()
    async with Queue(name, redis_url) as auto:  # None: detected
        assert auto.format == "bullmq"
        job = await auto.get_job("1")
        assert job is not None
        assert job.name == "x"
