"""Drain N prefilled jobs with one pyqueue worker at concurrency C; print the drain's jobs/s.

One process, one number: made to be timed whole by an outside tool, against another
checkout of pyqueue on the same Redis (the machine's own load moves every figure, so
compare runs made in turn):

    farm-bench -n 7 --vs "sh -c 'PYTHONPATH=/tmp/base/src exec .venv/bin/python \\
        benchmarks/drain_once.py redis://127.0.0.1:46379/0 20000 1 >>/tmp/b.txt'" \\
        -- sh -c "exec .venv/bin/python benchmarks/drain_once.py \\
        redis://127.0.0.1:46379/0 20000 1 >>/tmp/a.txt"

Arguments: a Redis URL (its database is FLUSHALLed: use a private server), N, C.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import redis

import pyqueue
from pyqueue import BulkJob, Queue, Worker, WorkerOptions


async def drain(url: str, n: int, concurrency: int) -> float:
    redis.Redis.from_url(url).flushall()
    async with Queue("bench", url) as queue:
        for start in range(0, n, 5000):
            await queue.add_bulk(BulkJob({"i": i}) for i in range(start, min(n, start + 5000)))
        done = asyncio.Event()
        count = 0

        def completed(job: Any, result: Any) -> None:
            nonlocal count
            count += 1
            if count == n:
                done.set()

        async def handler(job: Any) -> None:
            return None

        worker = Worker(queue, handler, options=WorkerOptions(
            drain_delay=1, stalled_interval=0, concurrency=concurrency))
        worker.on("completed", completed)
        started = time.perf_counter()
        async with worker:
            await done.wait()
        return n / (time.perf_counter() - started)


def main() -> int:
    url, n, concurrency = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rate = asyncio.run(drain(url, n, concurrency))
    print(f"{pyqueue.__file__} c={concurrency} {rate:.0f} jobs/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
