"""Job ids that name another key of the queue are no job's: 404 everywhere, never removed.

The probes of issue 29: ``pyqueue job Q metrics:completed`` printed an empty job,
the dashboard's Remove on ``/job?queue=Q&id=metrics:completed`` deleted
``bull:Q:metrics:completed``, and ``id=wait``, ``id=id``, ``id=1:logs`` answered
503 (a WRONGTYPE) instead of 404.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from pyqueue import Queue, Worker, WorkerOptions
from pyqueue.tools.dashboard import create_app

PYQUEUE = Path(sys.executable).parent / "pyqueue"
FAST = WorkerOptions(drain_delay=1, guard_interval=200, stalled_interval=0, shutdown_grace=5,
                     metrics_max_data_points=10)
# Each a key a busy queue has: a hash, a list, a string, a job's log list, a zset,
# a limiter hash, and pyqueue's worker index.
QUEUE_KEYS = ("metrics:completed", "wait", "id", "1:logs", "completed", "limiter:index",
              "pq-workers", "meta")


@pytest.fixture
async def busy_queue(redis_url: str) -> tuple[str, str, aioredis.Redis]:
    """A queue with every kind of key: completed jobs with metrics and logs, waiting jobs."""
    prefix = f"kc{uuid.uuid4().hex[:8]}"
    client = aioredis.Redis.from_url(redis_url)
    async with Queue("q", redis_url, prefix=prefix) as queue:
        done = 0

        async def handler(job: Any) -> None:
            await job.log("a line")

        for n in range(2):
            await queue.add({"n": n})
        async with Worker(queue, handler, options=FAST) as worker:
            async for _ in worker.events("completed"):
                done += 1
                if done == 2:
                    break
        await queue.add({"n": 9})
        await client.hset(f"{prefix}:q:limiter:index", "x", "y")
        await client.zadd(f"{prefix}:q:pq-workers", {"gone": 1})
        await client.hset(f"{prefix}:q:meta", "opts.maxLenEvents", "10000")
    return prefix, "q", client


async def _snapshot(client: aioredis.Redis, prefix: str) -> dict[str, bytes]:
    out = {}
    for suffix in QUEUE_KEYS:
        key = f"{prefix}:q:{suffix}"
        out[suffix] = await client.dump(key)
    return out


def _cli(redis_url: str, prefix: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PYQUEUE), *args, "--prefix", prefix], capture_output=True, text=True, timeout=30,
        env={**os.environ, "REDIS_URL": redis_url}, check=False,
    )


async def test_cli_finds_no_job_in_a_queue_key_and_removes_nothing(
    redis_url: str, busy_queue: tuple[str, str, aioredis.Redis]
) -> None:
    prefix, name, client = busy_queue
    before = await _snapshot(client, prefix)
    assert all(v is not None for v in before.values()), before
    for suffix in QUEUE_KEYS:
        shown = _cli(redis_url, prefix, "job", name, suffix)
        assert shown.returncode == 3, (suffix, shown.stdout, shown.stderr)
        assert f"job {suffix!r} not found" in shown.stderr
        assert "Traceback" not in shown.stderr
    for op in ("remove", "retry", "promote"):
        done = _cli(redis_url, prefix, op, name, *QUEUE_KEYS)
        assert done.returncode == 3, (op, done.stdout, done.stderr)
        assert done.stdout.count("not found") == len(QUEUE_KEYS), done.stdout
    assert await _snapshot(client, prefix) == before
    # A real job still works.
    assert _cli(redis_url, prefix, "job", name, "1").returncode == 0
    await client.aclose()


async def test_dashboard_answers_404_for_queue_keys_and_removes_nothing(
    redis_url: str, busy_queue: tuple[str, str, aioredis.Redis]
) -> None:
    prefix, name, client = busy_queue
    before = await _snapshot(client, prefix)
    app = create_app(redis_url, prefix)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        page = await http.get(f"/queue?name={name}")
        csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', page.text)
        assert csrf is not None
        for suffix in QUEUE_KEYS:
            shown = await http.get("/job", params={"queue": name, "id": suffix})
            assert shown.status_code == 404, (suffix, shown.status_code)
            feed = await http.get("/api/job", params={"queue": name, "id": suffix})
            assert feed.status_code == 404, (suffix, feed.status_code)
            for op in ("remove", "retry", "promote"):
                sent = await http.post("/action", data={
                    "op": op, "queue": name, "id": suffix, "csrf": csrf.group(1), "next": "/",
                })
                assert sent.status_code in (303, 404), (op, suffix, sent.status_code)
        assert (await http.get("/job", params={"queue": name, "id": "1"})).status_code == 200
    await app.aclose()
    assert await _snapshot(client, prefix) == before
    await client.aclose()
