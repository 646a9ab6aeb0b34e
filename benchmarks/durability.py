"""What ``Durability`` costs: adds and processing with and without WAIT.

    .venv/bin/python benchmarks/durability.py [--jobs 4000]

A master with one replica (the Sentinel test deployment, loopback ports), 50
concurrent producers, then one worker of concurrency 20 draining the queue.
Reports jobs per second for each mode and the ratio; on loopback the replica
answers WAIT within a fraction of a millisecond, so this is the floor of the
cost: a replica across a network adds its round trip to every add and finish.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from pathlib import Path
from typing import Any

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyqueue import Durability, Queue, Worker, WorkerOptions


async def _measure(url: str, jobs: int, durability: Durability | None) -> tuple[float, float]:
    name = f"bench-{uuid.uuid4().hex[:8]}"
    queue: Queue[Any] = Queue(name, url, durability=durability)
    per = jobs // 50

    async def produce(p: int) -> None:
        for n in range(per):
            await queue.add({"p": p, "n": n})

    started = time.perf_counter()
    await asyncio.gather(*(produce(p) for p in range(50)))
    add_rate = per * 50 / (time.perf_counter() - started)
    done = asyncio.Event()
    count = 0

    def completed(job: Any, result: Any) -> None:
        nonlocal count
        count += 1
        if count == per * 50:
            done.set()

    worker = Worker(queue, lambda job: None, options=WorkerOptions(concurrency=20))
    worker.on("completed", completed)
    started = time.perf_counter()
    await worker.start()
    await done.wait()
    process_rate = per * 50 / (time.perf_counter() - started)
    await worker.close()
    await queue.close()
    return add_rate, process_rate


async def main(jobs: int) -> None:
    from tests.scale.servers import SentinelDeployment

    with SentinelDeployment() as deployment:
        url = deployment.url()
        await _measure(url, 500, None)  # warm-up: scripts loaded, connections open
        plain = await _measure(url, jobs, None)
        durable = await _measure(url, jobs, Durability(replicas=1, timeout_ms=1000))
    print(f"jobs={jobs}  (jobs/s; master + 1 replica on loopback)")
    print(f"{'mode':<26}{'add':>10}{'process':>10}")
    print(f"{'no durability':<26}{plain[0]:>10.0f}{plain[1]:>10.0f}")
    print(f"{'Durability(replicas=1)':<26}{durable[0]:>10.0f}{durable[1]:>10.0f}")
    print(f"{'ratio':<26}{durable[0] / plain[0]:>10.2f}{durable[1] / plain[1]:>10.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=4000)
    asyncio.run(main(parser.parse_args().jobs))
