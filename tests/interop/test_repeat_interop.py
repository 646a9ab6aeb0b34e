"""Repeatable jobs across pyqueue and real Node Bull (bull-protocol.md §5, §9.9).

A schedule declared on one side is listed, chained and removed by the other,
and both sides compute the same repeat keys, instance ids and fire times.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from tests.interop.bull import Event, NodeBull, single

from pyqueue import Job, Queue, Repeat, Worker, WorkerOptions

NODE_FAST = {"stalledInterval": 5000, "lockDuration": 5000, "guardInterval": 100, "drainDelay": 1}
PY_FAST = WorkerOptions(drain_delay=1, guard_interval=100, stalled_interval=0, shutdown_grace=5)


@pytest.fixture
async def pq(redis_url: str, queue_name: str) -> AsyncIterator[Queue[Any]]:
    async with Queue[Any](queue_name, redis_url) as q:
        yield q


async def nadmin(nb: NodeBull, queue: str, op: str, **args: Any) -> Event:
    result = single(await nb.arun({"queue": queue, "action": "admin", "op": op, **args}), "result")
    assert result["ok"], result
    return result


async def test_python_schedule_listed_and_removed_by_node(
    node_bull: NodeBull, bull_version: str, pq: Queue[Any], raw_redis: aioredis.Redis
) -> None:
    job = await pq.add({"n": 1}, name="rep", repeat=Repeat(every=60_000))
    assert job is not None
    listed = (await nadmin(node_bull, pq.name, "getRepeatableJobs"))["value"]
    assert len(listed) == 1
    entry = listed[0]
    assert entry["key"] == "rep:::60000"
    assert entry["name"] == "rep"
    assert entry["every"] in (60000, "60000")
    assert int(entry["next"]) == int(job.id.rsplit(":", 1)[1])

    await nadmin(node_bull, pq.name, "removeRepeatableByKey", key="rep:::60000")
    assert await pq.get_repeatable_count() == 0
    assert await pq.get_job(job.id) is None
    assert await raw_redis.zcard(pq.keys.delayed) == 0


async def test_node_schedule_listed_and_removed_by_python(
    node_bull: NodeBull, bull_version: str, pq: Queue[Any], raw_redis: aioredis.Redis
) -> None:
    repeat_opts = {
        "cron": "*/5 * * * *", "tz": "Europe/Berlin",
        "endDate": "2099-01-01T00:00:00Z", "limit": 10,
    }
    events = await node_bull.arun({
        "queue": pq.name, "action": "add",
        "jobs": [{"data": {"x": 1}, "opts": {"repeat": repeat_opts, "jobId": "myid"}}],
    })
    [node_id] = single(events, "added")["ids"]
    repeat = Repeat(
        cron="*/5 * * * *", tz="Europe/Berlin", end_date="2099-01-01T00:00:00Z",
        limit=10, job_id="myid",
    )
    # Same key and same instance id as pyqueue computes.
    [entry] = await pq.get_repeatable_jobs()
    assert entry["key"] == "__default__:myid:4070908800000:Europe/Berlin:*/5 * * * *"
    assert entry["cron"] == "*/5 * * * *"
    assert entry["tz"] == "Europe/Berlin"
    assert node_id == repeat.instance_id("__default__", entry["next"])
    # Declaring the same schedule from Python is a no-op.
    again = await pq.add({"x": 1}, repeat=repeat, job_id="myid")
    assert again is not None
    assert again.id == node_id
    assert await raw_redis.zcard(pq.keys.delayed) == 1

    await pq.remove_repeatable_by_key(entry["key"])
    assert await pq.get_repeatable_count() == 0
    assert await raw_redis.zcard(pq.keys.delayed) == 0
    listed = (await nadmin(node_bull, pq.name, "getRepeatableJobs"))["value"]
    assert listed == []


async def test_node_worker_chains_python_schedule(
    node_bull: NodeBull, bull_version: str, pq: Queue[Any]
) -> None:
    first = await pq.add({"k": "v"}, name="tick", repeat=Repeat(every=500))
    assert first is not None
    config = {
        "queue": pq.name, "action": "process", "until": 2, "timeoutMs": 15000,
        "settings": NODE_FAST, "behaviour": {"*": {"return": "ok"}},
    }
    with node_bull.start(config) as proc:
        await proc.await_for("ready")
        one = await proc.await_for("processing", timeout=10, id=first.id)
        second = await _next_processing(proc, exclude=first.id)
    assert one["opts"]["repeat"]["count"] == 1
    assert second["opts"]["repeat"]["count"] == 2
    prefix = Repeat(every=500).id_prefix("tick")
    assert second["id"].startswith(prefix)
    assert int(second["id"].rsplit(":", 1)[1]) % 500 == 0
    assert second["data"] == {"k": "v"}


async def _next_processing(proc: Any, *, exclude: str) -> Event:
    def other(event: Event) -> bool:
        return event.get("event") == "processing" and event.get("id") != exclude

    result: Event = await proc.await_for(other, timeout=10)
    return result


async def test_python_worker_chains_node_schedule(
    node_bull: NodeBull, bull_version: str, pq: Queue[Any], redis_url: str
) -> None:
    events = await node_bull.arun({
        "queue": pq.name, "action": "add",
        "jobs": [{"name": "tick", "data": {"from": "node"},
                  "opts": {"repeat": {"every": 500}, "removeOnComplete": True}}],
    })
    [node_id] = single(events, "added")["ids"]
    seen: list[Job[Any]] = []
    enough = asyncio.Event()

    async def handler(job: Job[Any]) -> str:
        seen.append(job)
        if len(seen) >= 2:
            enough.set()
        return "done"

    async with Worker(pq, {"tick": handler}, options=PY_FAST):
        await asyncio.wait_for(enough.wait(), 15)
    assert seen[0].id == node_id
    assert [j.raw_opts["repeat"]["count"] for j in seen[:2]] == [1, 2]
    # The instance pyqueue chained is exactly what Node would have made.
    assert seen[1].id == Repeat(every=500).instance_id("tick", seen[1].raw_opts["prevMillis"])
    assert seen[1].raw_opts["removeOnComplete"] is True
    assert seen[1].data == {"from": "node"}
    listed = (await nadmin(node_bull, pq.name, "getRepeatableJobs"))["value"]
    assert [e["key"] for e in listed] == ["tick:::500"]
