"""A BookWish-style worker process: declares a repeatable job at start-up, then works.

Run as ``python scheduler_proc.py <redis_url> <queue> <every_ms>``. Each confirmed
completion is appended to the Redis list ``<queue>:completions`` (not a Bull key).
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import redis.asyncio as aioredis

from pyqueue import Job, Queue, Repeat, Worker, WorkerOptions


async def main(url: str, name: str, every: int) -> None:
    log = aioredis.Redis.from_url(url)
    async with Queue(name, url) as queue:
        await queue.add({}, name="tick", repeat=Repeat(every=every), remove_on_complete=True)

        async def handler(job: Job[Any]) -> None:
            return None

        async def completed(job: Job[Any], _result: Any) -> None:
            await log.rpush(f"{name}:completions", job.id)

        worker = Worker(
            queue, handler,
            options=WorkerOptions(
                lock_duration=1000, stalled_interval=500, guard_interval=100, drain_delay=0.5,
            ),
        )
        worker.on("completed", completed)
        await worker.run()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
