"""Scenario 7: the kill -9 scenario with Node Bull and pyqueue workers sharing a queue.

Two pyqueue worker processes and two Node Bull 4.x workers (tests/interop/bull.py)
drain one queue while a random one of the four is SIGKILLed every ~300 ms and
restarted. Node executions are counted from the driver's ``processing`` events.
Needs ``node`` and ``npm ci --prefix tests/interop/node``; without them the test
fails, unless PYQUEUE_SKIP_INTEROP=1 (then it is skipped).

Size: 1,500 jobs by default; PYQUEUE_CHAOS_SCALE=10 runs 15,000.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
from typing import Any

import pytest
import redis.asyncio as aioredis
from tests.chaos.harness import (
    SCALE,
    check_invariants,
    produce,
    spawn_worker,
    stop_all,
    wait_finished,
)
from tests.interop.bull import NodeBull, NodeProcess, NodeUnavailableError

from pyqueue.embedded import RedisServer

JOBS = 1500 * SCALE
CONCURRENCY = 5
LOCK = 1000


def _node(server_url: str) -> NodeBull:
    if os.environ.get("PYQUEUE_SKIP_INTEROP") == "1":
        pytest.skip("PYQUEUE_SKIP_INTEROP=1: mixed-fleet scenario needs Node Bull")
    try:
        return NodeBull("bull", server_url)
    except NodeUnavailableError as exc:
        pytest.fail(f"mixed-fleet scenario needs Node Bull: {exc}", pytrace=False)


@pytest.mark.interop
@pytest.mark.timeout(120 * SCALE)
async def test_mixed_fleet_kill9_loses_nothing(queue_name: str) -> None:
    rng = random.Random(7)
    with RedisServer() as server:
        bull = _node(server.url)
        node_cfg = {
            "queue": queue_name, "action": "process", "concurrency": CONCURRENCY,
            "timeoutMs": 3_600_000,
            "settings": {"lockDuration": LOCK, "stalledInterval": 500, "maxStalledCount": 10},
            "behaviour": {"*": {"sleepMs": 10}},
        }
        py_cfg = {"url": server.url, "queue": queue_name, "concurrency": CONCURRENCY,
                  "lock_duration": LOCK, "stalled_interval": 500, "ms": 10}
        client = aioredis.Redis.from_url(server.url)
        fleet: list[Any] = [spawn_worker(py_cfg), spawn_worker(py_cfg),
                            bull.start(node_cfg), bull.start(node_cfg)]
        dead_nodes: list[NodeProcess] = []
        acked: list[str] = []
        kills = {"node": 0, "python": 0}
        try:
            producer = asyncio.create_task(
                produce(server.url, queue_name, [f"m{i}" for i in range(JOBS)], acked)
            )
            waiter = asyncio.create_task(wait_finished(client, queue_name, JOBS, 100 * SCALE))
            while not waiter.done():
                await asyncio.sleep(rng.uniform(0.2, 0.4))
                if waiter.done():
                    break
                victim = rng.randrange(len(fleet))
                proc = fleet[victim]
                if isinstance(proc, NodeProcess):
                    proc.kill()
                    dead_nodes.append(proc)
                    fleet[victim] = bull.start(node_cfg)
                    kills["node"] += 1
                else:
                    proc.kill()
                    proc.wait()
                    fleet[victim] = spawn_worker(py_cfg)
                    kills["python"] += 1
            await producer
            await waiter
        finally:
            for proc in fleet:
                if isinstance(proc, NodeProcess):
                    proc.kill()
                    dead_nodes.append(proc)
            stop_all(p for p in fleet if isinstance(p, subprocess.Popen))
        node_runs = 0
        for proc in dead_nodes:
            proc.__exit__(None, None, None)
            ids = [str(e["id"]) for e in proc.named("processing")]
            node_runs += len(ids)
            if ids:
                await client.rpush(f"{queue_name}:runs", *ids)
        out = await check_invariants(client, queue_name, acked, lock_ttl_ms=LOCK)
        await client.aclose()
    total_kills = kills["node"] + kills["python"]
    print(
        f"\nmixed_fleet: jobs={JOBS} workers=2 pyqueue + 2 Node Bull (x{CONCURRENCY}) "
        f"kills={total_kills} (node={kills['node']}, python={kills['python']}) lost=0 "
        f"completed={out.completed} failed={out.failed} executions={out.executions} "
        f"(node={node_runs}) extra={out.extra} "
        f"extra_per_kill={out.extra / max(total_kills, 1):.2f} max_runs_per_job={out.max_runs}"
    )
    assert node_runs > 0, "Node workers processed nothing"
    assert out.extra <= total_kills * CONCURRENCY
