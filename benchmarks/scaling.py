"""Throughput on Redis Cluster with 1, 2 and 3 masters: one queue per shard.

    .venv/bin/python benchmarks/scaling.py [--jobs 5000] [--concurrency 50]

A cluster of 3 masters (no replicas) on loopback. For k = 1, 2, 3: k queues
whose hash tags put them on k different masters are filled with ``--jobs``
no-op jobs each (``add_bulk``), then k worker processes (one per queue) drain
them. Reports jobs/s over all queues, its ratio to k = 1, and each master's
CPU time per job (``INFO cpu`` before and after). On a 2-core machine the
worker processes compete for the same cores, so the ratio shows where the
client side caps it, not what more hosts would give.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from pyqueue import BulkJob, Queue  # noqa: E402

_WORKER = """
import asyncio, sys
from pyqueue import Worker, WorkerOptions
url, prefix, name, jobs, concurrency = sys.argv[1:6]
async def run():
    done = asyncio.Event()
    count = [0]
    def completed(job, result):
        count[0] += 1
        if count[0] == int(jobs):
            done.set()
    worker = Worker(name, lambda job: None, redis_url=url, prefix=prefix,
                    options=WorkerOptions(concurrency=int(concurrency), drain_delay=0.5))
    worker.on("completed", completed)
    await worker.start()
    print("ready", flush=True)
    await done.wait()
    await worker.close()
asyncio.run(run())
"""


def _cpu(port: int) -> float:
    with redis.Redis(port=port) as client:
        info: dict[str, Any] = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def _drain(url: str, tags: list[str], name: str, jobs: int, concurrency: int) -> float:
    """Seconds k worker processes (one per queue) take to drain their queues."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, url, tag, name, str(jobs), str(concurrency)],
            stdout=subprocess.PIPE, cwd=ROOT,
        )
        for tag in tags
    ]
    for proc in procs:
        assert proc.stdout is not None
        proc.stdout.readline()  # "ready": the clock starts once all workers run
    started = time.perf_counter()
    for proc in procs:
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
    return time.perf_counter() - started


async def _round(
    cluster: Any, tags: list[str], jobs: int, concurrency: int
) -> tuple[float, list[float]]:
    name = f"scale-{uuid.uuid4().hex[:6]}"
    for tag in tags:
        queue: Queue[Any] = Queue(name, cluster.url, prefix=tag)
        for start in range(0, jobs, 1000):
            await queue.add_bulk([BulkJob({"n": n}) for n in range(start, min(jobs, start + 1000))])
        await queue.close()
    masters = [cluster.master_of(f"{tag}:{name}:id").port for tag in tags]
    before = [_cpu(port) for port in masters]
    elapsed = await asyncio.to_thread(_drain, cluster.url, tags, name, jobs, concurrency)
    cpu_per_job = [(_cpu(port) - b) / jobs * 1e6 for port, b in zip(masters, before, strict=True)]
    return len(tags) * jobs / elapsed, cpu_per_job


async def main(jobs: int, concurrency: int) -> None:
    from tests.scale.servers import Cluster

    with Cluster(masters=3, replicas=0) as cluster:
        tags: dict[int, str] = {}
        while len(tags) < 3:
            tag = f"{{b{uuid.uuid4().hex[:6]}}}"
            tags.setdefault(cluster.master_of(f"{tag}:x").port, tag)
        ordered = list(tags.values())
        await _round(cluster, ordered[:1], 500, concurrency)  # warm-up
        print(f"jobs per queue={jobs}, worker concurrency={concurrency}, one process per queue")
        print(f"{'masters':>8}{'jobs/s':>10}{'ratio':>8}   Redis CPU per job per shard (us)")
        base = 0.0
        for k in (1, 2, 3):
            rate, cpu = await _round(cluster, ordered[:k], jobs, concurrency)
            base = base or rate
            shards = ", ".join(f"{c:.1f}" for c in cpu)
            print(f"{k:>8}{rate:>10.0f}{rate / base:>8.2f}   {shards}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    asyncio.run(main(args.jobs, args.concurrency))
