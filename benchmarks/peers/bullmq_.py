"""BullMQ's Python port: ``Queue.add``/``addBulk``; ``Worker(concurrency=C)``.

Defaults otherwise (completed jobs kept, as in Bull). Completion end point: the
worker's ``completed(job, result)`` event, emitted after ``moveToCompleted``.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from bullmq import Job, Queue, Worker

from benchmarks.peers import _common as c


async def noop(job: Job, token: str) -> None:
    c.STATS.on_start(job.data)


def completed(job: Job, result: Any) -> None:
    c.STATS.on_complete(job.data["i"])


async def _enqueue(args: argparse.Namespace) -> None:
    q = Queue(args.queue, {"connection": args.url})
    try:
        t0 = time.perf_counter()
        added = 0
        if args.bulk or args.mode == "fill":
            for ids in c.chunks(args.n):
                jobs = await q.addBulk([{"name": "noop", "data": c.plain_payload(i)} for i in ids])
                added += len(jobs)
        else:
            for i in range(args.n):
                await q.add("noop", c.plain_payload(i))
                added += 1
        seconds = time.perf_counter() - t0
        if args.mode == "fill":
            c.emit({"event": "result", "n": added})
        else:
            c.enqueue_result(args.n, seconds, added)
    finally:
        await q.close()


async def _produce(args: argparse.Namespace) -> None:
    q = Queue(args.queue, {"connection": args.url})
    opts: dict[str, Any] = {"delay": args.delay_ms} if args.delay_ms else {}

    async def add(data: dict[str, Any]) -> object:
        return await q.add("noop", data, opts)  # type: ignore[arg-type]

    try:
        await c.produce_async(args.n, args.rate, args.delay_ms, add)
    finally:
        await q.close()


async def _worker(args: argparse.Namespace) -> None:
    worker: Worker | None = None
    task: asyncio.Future[Any] | None = None

    async def start() -> None:
        nonlocal worker, task
        worker = Worker(
            args.queue,
            noop,  # type: ignore[arg-type]
            {"connection": args.url, "concurrency": args.concurrency, "autorun": False},
        )
        worker.on("completed", completed)
        task = asyncio.ensure_future(worker.run())

    async def stop() -> None:
        assert worker is not None
        await worker.close()
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)

    await c.run_async_worker(start, stop)


def main(args: argparse.Namespace) -> None:
    if args.mode in ("enqueue", "fill"):
        asyncio.run(_enqueue(args))
    elif args.mode == "produce":
        asyncio.run(_produce(args))
    else:
        asyncio.run(_worker(args))
