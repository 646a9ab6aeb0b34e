"""Fixtures for the migration from Bull 4 to BullMQ 6: Bull queues filled through
pyqueue's public API (Bull mode), and readers of both sides' Redis state.

* ``fill_bull(queue)``: a Bull queue with a job in every state Bull has
  (waiting, prioritised, delayed, custom ids, completed with progress, logs
  and a return value, failed after retries with stack traces), made by a
  pyqueue Queue and Worker; returns what was made, by role.
* ``bull_jobs`` / ``bullmq_jobs``: every job of a queue with its state and
  hash, read straight from Redis.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
import redis.asyncio as aioredis

from pyqueue import Backoff, Job, Queue, Worker, WorkerOptions
from pyqueue._protocol.bull.keys import QueueKeys
from pyqueue._protocol.bullmq.keys import BullMQKeys

FAST = WorkerOptions(drain_delay=0.2, guard_interval=100, stalled_interval=0, shutdown_grace=5)
BULL_LISTS = ("wait", "paused", "active")
BULL_SETS = ("delayed", "completed", "failed")
BULLMQ_LISTS = ("wait", "paused", "active")
BULLMQ_SETS = ("prioritized", "delayed", "completed", "failed")


@dataclass
class Filled:
    """Ids of the jobs ``fill_bull`` made, by what they are."""

    waiting: list[str] = field(default_factory=list)
    prioritized: dict[str, int] = field(default_factory=dict)
    delayed: dict[str, int] = field(default_factory=dict)  # id -> due ms
    completed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    custom: list[str] = field(default_factory=list)

    @property
    def all(self) -> list[str]:
        return [*self.waiting, *self.prioritized, *self.delayed, *self.completed, *self.failed]


async def _work(queue: Queue[Any], until: Callable[[], Awaitable[bool]],
                handler: Callable[[Job[Any]], Awaitable[Any]]) -> None:
    async with Worker(queue, handler, options=FAST):
        for _ in range(600):
            if await until():
                return
            await asyncio.sleep(0.05)
    raise AssertionError("the worker did not finish its jobs in 30 s")


async def fill(url: str, name: str, *, prefix: str = "bull") -> Filled:
    """History first (a worker runs the jobs meant to finish), then the pending jobs."""
    made = Filled()
    async with Queue(name, url, prefix=prefix) as queue:
        done = [await queue.add({"k": f"done-{i}"}, name="ok") for i in range(3)]
        bad = [await queue.add({"k": f"bad-{i}"}, name="bad", attempts=2) for i in range(2)]

        async def handler(job: Job[Any]) -> Any:
            await job.progress(50)
            await job.log(f"log of {job.id}")
            if job.name == "bad":
                raise RuntimeError(f"broke {job.id} try {job.attempts_made + 1}")
            return {"result": job.data["k"]}

        async def finished() -> bool:
            counts = await queue.get_job_counts("completed", "failed")
            return counts["completed"] == len(done) and counts["failed"] == len(bad)

        await _work(queue, finished, handler)
        made.completed = [j.id for j in done]
        made.failed = [j.id for j in bad]
        for i in range(4):
            made.waiting.append((await queue.add({"k": f"wait-{i}"}, name="w")).id)
        for i, priority in enumerate((5, 1, 3, 1)):
            job = await queue.add({"k": f"prio-{i}"}, name="p", priority=priority)
            made.prioritized[job.id] = priority
        for i in range(3):
            job = await queue.add({"k": f"later-{i}"}, name="d", delay=3_600_000 + i,
                                  backoff=Backoff(type="exponential", delay=1000), attempts=3)
            made.delayed[job.id] = job.timestamp + 3_600_000 + i
        for custom in ("order-17", "a:b"):
            job = await queue.add({"k": custom}, name="c", job_id=custom)
            made.custom.append(job.id)
            made.waiting.append(job.id)
    raw = aioredis.Redis.from_url(url)
    try:
        made.waiting.append(await add_like_node_bull(raw, prefix, name, "12345", {"k": "12345"},
                                                     name="c"))
    finally:
        await raw.aclose()
    made.custom.append("12345")
    return made


async def add_like_node_bull(raw: aioredis.Redis, prefix: str, queue: str, job_id: str,
                             data: Any, *, name: str = "__default__") -> str:
    """Add a job with a custom id as Node Bull's addJob does (bull-protocol.md §3.1):
    for the ids Node Bull takes and pyqueue's Bull mode refuses (digits only)."""
    base = f"{prefix}:{queue}:"
    now = int(time.time() * 1000)
    await raw.incr(base + "id")
    await raw.hset(base + job_id, mapping={
        "name": name, "data": json.dumps(data, separators=(",", ":")),
        "opts": json.dumps({"jobId": job_id, "attempts": 1, "delay": 0, "timestamp": now},
                           separators=(",", ":")),
        "timestamp": now, "delay": 0, "priority": 0})
    await raw.lpush(base + "wait", job_id)
    return job_id


@pytest.fixture
def fill_bull(redis_url: str) -> Callable[..., Awaitable[Filled]]:
    async def make(name: str, prefix: str = "bull") -> Filled:
        return await fill(redis_url, name, prefix=prefix)
    return make


Jobs = dict[str, tuple[str, dict[str, str]]]


async def bull_jobs(client: aioredis.Redis, prefix: str, name: str) -> Jobs:
    """Every Bull job id in a Bull structure: ``id -> (state, hash)``."""
    keys = QueueKeys(prefix, name)
    return await _jobs(client, keys.base, BULL_LISTS, BULL_SETS)


async def bullmq_jobs(client: aioredis.Redis, prefix: str, name: str) -> Jobs:
    """Every BullMQ job id in a BullMQ structure: ``id -> (state, hash)``."""
    keys = BullMQKeys(prefix, name)
    return await _jobs(client, keys.base, BULLMQ_LISTS, BULLMQ_SETS)


async def _jobs(client: aioredis.Redis, base: str, lists: tuple[str, ...],
                sets: tuple[str, ...]) -> Jobs:
    out: dict[str, tuple[str, dict[str, str]]] = {}
    for state in (*lists, *sets):
        if state in lists:
            members = cast("list[bytes]", await client.lrange(base + state, 0, -1))
        else:
            members = cast("list[bytes]", await client.zrange(base + state, 0, -1))
        for raw in members:
            job_id = raw.decode()
            assert job_id not in out, f"{job_id} is in {out[job_id][0]} and {state}"
            found = cast("dict[bytes, bytes]", await client.hgetall(base + job_id))
            out[job_id] = (state, {k.decode(): v.decode() for k, v in found.items()})
    return out


async def key_dump(client: aioredis.Redis, pattern: str = "*") -> dict[str, Any]:
    """Every key matching ``pattern`` with its type and content (for "nothing
    written"; the test server is shared, so name the test's queue in it)."""
    out: dict[str, Any] = {}
    for raw in sorted(cast("list[bytes]", await client.keys(pattern))):
        kind = (await client.type(raw)).decode()
        if kind == "hash":
            value: Any = await client.hgetall(raw)
        elif kind == "list":
            value = await client.lrange(raw, 0, -1)
        elif kind == "zset":
            value = await client.zrange(raw, 0, -1, withscores=True)
        elif kind == "set":
            value = sorted(await client.smembers(raw))
        elif kind == "string":
            value = await client.get(raw)
        else:
            value = await client.xlen(raw)
        out[raw.decode()] = (kind, value)
    return out
