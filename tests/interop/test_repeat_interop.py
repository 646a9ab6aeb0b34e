"""Repeatable jobs across pyqueue and real Node Bull (bull-protocol.md §5, §9.9).

A schedule declared on one side is listed, chained and removed by the other,
and both sides compute the same repeat keys, instance ids and fire times.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from tests.interop.bull import Event, NodeBull, single

from pyqueue import Job, Queue, Repeat, Worker, WorkerOptions
from pyqueue.errors import InvalidOptionsError

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


# --- schedules whose name or jobId contains ':' (legal in Node) ----------------------------


def _node_instance_prefix(name: str, job_id: str, key: str) -> str:
    """Bull's instance id prefix, spelled out: md5(name + jobId + ':' + md5(key))."""
    inner = hashlib.md5(key.encode(), usedforsecurity=False).hexdigest()
    outer = hashlib.md5(f"{name}{job_id}:{inner}".encode(), usedforsecurity=False).hexdigest()
    return f"repeat:{outer}:"


async def test_python_worker_chains_node_schedule_with_colon_job_id(
    node_bull: NodeBull, bull_version: str, pq: Queue[Any], raw_redis: aioredis.Redis
) -> None:
    # The reproduction: Bull accepts ':' in both the name and the jobId.
    events = await node_bull.arun({
        "queue": pq.name, "action": "add",
        "jobs": [{"name": "sync:store", "data": {"store": 42},
                  "opts": {"jobId": "store:42", "repeat": {"every": 300}}}],
    })
    [first_id] = single(events, "added")["ids"]
    key = "sync:store:store:42::300"
    prefix = _node_instance_prefix("sync:store", "store:42", key)
    assert first_id.startswith(prefix)
    seen: list[Job[Any]] = []
    errors: list[BaseException] = []
    enough = asyncio.Event()

    async def handler(job: Job[Any]) -> str:
        seen.append(job)
        if len(seen) >= 3:
            enough.set()
        return "ok"

    def on_error(exc: BaseException) -> None:
        errors.append(exc)
        enough.set()

    worker = Worker(pq, {"sync:store": handler}, options=PY_FAST)
    worker.on("error", on_error)
    async with worker:
        await asyncio.wait_for(enough.wait(), 15)
    assert errors == []
    assert seen[0].id == first_id
    for job in seen[1:3]:
        assert job.id == f"{prefix}{job.raw_opts['prevMillis']}"
        assert job.raw_opts["repeat"]["key"] == key
        assert job.raw_opts["repeat"]["jobId"] == "store:42"
        assert job.data == {"store": 42}
    assert [j.raw_opts["repeat"]["count"] for j in seen[:3]] == [1, 2, 3]

    # Listed exactly as Bull lists it (Bull splits the key at every ':').
    node_listed = (await nadmin(node_bull, pq.name, "getRepeatableJobs"))["value"]
    py_listed = await pq.get_repeatable_jobs()
    assert [e["key"] for e in py_listed] == [key]
    assert [
        {"key": e["key"], "name": e["name"], "id": e["id"], "endDate": e["end_date"],
         "tz": e["tz"], "cron": e["cron"], "every": e["every"], "next": e["next"]}
        for e in py_listed
    ] == node_listed

    # Removed by key: the schedule and its pending instance both go.
    await pq.remove_repeatable_by_key(key)
    assert await pq.get_repeatable_count() == 0
    assert await raw_redis.zcard(pq.keys.delayed) == 0
    left = {k.decode().removeprefix(pq.keys.base)
            for k in await raw_redis.keys(f"{pq.keys.base}{prefix}*")}
    completed = {m.decode() for m in await raw_redis.zrange(pq.keys.completed, 0, -1)}
    assert left == completed  # only the instances that ran are left


async def test_node_removes_python_chained_colon_schedule(
    node_bull: NodeBull, bull_version: str, pq: Queue[Any], raw_redis: aioredis.Redis
) -> None:
    repeat = {"every": 300, "jobId": "store:7"}
    await node_bull.arun({
        "queue": pq.name, "action": "add",
        "jobs": [{"name": "sync:store", "data": None, "opts": {"repeat": repeat}}],
    })
    seen: list[str] = []
    enough = asyncio.Event()

    async def handler(job: Job[Any]) -> None:
        seen.append(job.id)
        if len(seen) >= 2:
            enough.set()

    async with Worker(pq, handler, options=PY_FAST):
        await asyncio.wait_for(enough.wait(), 15)
    # The instance pending now was made by pyqueue (normally still delayed: it is
    # due 300 ms after the one that just ran); Bull's own removal finds it.
    assert await raw_redis.zcard(pq.keys.delayed) + await raw_redis.llen(pq.keys.wait) == 1
    await nadmin(node_bull, pq.name, "removeRepeatable", name="sync:store", repeat=repeat)
    assert await pq.get_repeatable_count() == 0
    assert await raw_redis.zcard(pq.keys.delayed) == 0


async def test_python_refuses_colon_in_declared_repeat_job_id(pq: Queue[Any]) -> None:
    with pytest.raises(InvalidOptionsError, match="':'"):
        await pq.add({}, name="n", repeat=Repeat(every=1000, job_id="a:b"))
    with pytest.raises(InvalidOptionsError, match="':'"):
        await pq.add({}, name="n", repeat=Repeat(every=1000), job_id="a:b")
