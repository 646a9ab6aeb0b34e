"""What operating a big queue costs: batched cleaning, and the tools over many queues.

    .venv/bin/python benchmarks/operating.py            # 20,000 jobs, 3,000 queues
    .venv/bin/python benchmarks/operating.py --jobs 5000 --queues 500

1. **Clean**: the longest single command Redis ran (SLOWLOG, every command logged)
   while removing ``--jobs`` completed jobs, in one ``Queue.clean`` call (one
   script) and with ``pyqueue.tools.bulk.clean`` (calls of 200 jobs). The longest
   command is how long every other client (workers, producers) waited at worst.
2. **Tools over many queues**: wall time of ``pyqueue queues --json`` and
   ``pyqueue doctor --json`` on ``--queues`` queues of one waiting job each (one in
   ten also with an active job whose worker is gone).

Runs on a private redis-server (no persistence). Figures move with the machine's
load; compare runs made one after the other.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import redis

from pyqueue import BulkJob, Queue, Worker, WorkerOptions
from pyqueue.embedded import RedisServer
from pyqueue.tools import bulk

PYQUEUE = Path(sys.executable).parent / "pyqueue"


async def _completed(url: str, name: str, n: int) -> Queue[object]:
    queue: Queue[object] = Queue(name, url)
    for start in range(0, n, 5000):
        await queue.add_bulk(BulkJob({"i": i}) for i in range(start, min(n, start + 5000)))
    done = asyncio.Event()
    count = 0

    def finished(job: object, result: object) -> None:
        nonlocal count
        count += 1
        if count == n:
            done.set()

    worker = Worker(queue, lambda job: None, options=WorkerOptions(
        concurrency=50, drain_delay=1, stalled_interval=0))
    worker.on("completed", finished)
    async with worker:
        await done.wait()
    return queue


def _longest_us(client: redis.Redis) -> tuple[int, str]:
    entries = client.slowlog_get(100_000)
    worst = max(entries, key=lambda e: e["duration"])
    command = worst["command"]
    text = command.decode() if isinstance(command, bytes) else str(command)
    return int(worst["duration"]), text.split()[0]


async def clean_figures(url: str, n: int) -> None:
    client = redis.Redis.from_url(url)
    client.config_set("slowlog-log-slower-than", 0)
    client.config_set("slowlog-max-len", 1_000_000)
    for label, batched in (("one Queue.clean call", False), ("bulk.clean, 200 a call", True)):
        queue = await _completed(url, f"clean-{int(batched)}", n)
        client.slowlog_reset()
        started = time.perf_counter()
        if batched:
            result = await bulk.clean(queue, 0, "completed", batch=200)
            removed = result.done
        else:
            removed = len(await queue.clean(0, "completed"))
        took = time.perf_counter() - started
        longest, command = _longest_us(client)
        print(f"| clean {removed:,} completed jobs: {label} | {took * 1000:,.0f} ms in all | "
              f"longest command {longest / 1000:,.1f} ms ({command}) |", flush=True)
        await queue.close()
    client.config_set("slowlog-log-slower-than", 10_000)
    client.close()


def tools_figures(url: str, queues: int) -> None:
    client = redis.Redis.from_url(url)
    client.flushall()
    now = int(time.time() * 1000)
    pipe = client.pipeline(transaction=False)
    for i in range(queues):
        base = f"bull:ops{i}"
        pipe.set(f"{base}:id", 2)
        pipe.hset(f"{base}:1", mapping={"name": "x", "data": "{}", "opts": "{}",
                                         "timestamp": now - 5000, "delay": 0})
        pipe.lpush(f"{base}:wait", "1")
        if i % 10 == 0:
            pipe.hset(f"{base}:2", mapping={"name": "x", "data": "{}", "opts": "{}",
                                             "timestamp": now - 9000, "delay": 0,
                                             "processedOn": now - 8000})
            pipe.lpush(f"{base}:active", "2")
    pipe.execute()
    client.close()
    env = {**os.environ, "REDIS_URL": url}
    for argv in (["queues", "--json"], ["doctor", "--json"]):
        started = time.perf_counter()
        done = subprocess.run([str(PYQUEUE), *argv], env=env, capture_output=True, timeout=600,
                              check=False)
        took = time.perf_counter() - started
        print(f"| pyqueue {' '.join(argv)} over {queues:,} queues | {took:.2f} s | "
              f"exit {done.returncode} |", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/operating.py",
                                     description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--queues", type=int, default=3_000)
    args = parser.parse_args()
    with RedisServer() as server:
        asyncio.run(clean_figures(server.url, args.jobs))
        tools_figures(server.url, args.queues)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
