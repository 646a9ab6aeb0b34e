"""SAQ: ``Queue.from_url``/``enqueue``; ``Worker(concurrency=C)``.

The worker dequeues with a blocking BLMOVE (``dequeue_timeout=0``, the default).
Scheduled jobs are moved by a timer whose period is also the whole-second SETEX of
its lock, so 1 s (the default) is the shortest period that works. SAQ has no bulk
enqueue. Completion end point: the ``after_process`` hook (an ``async def``, so SAQ
does not run it in a thread), which runs after ``job.finish(COMPLETE)`` stored the
result; only jobs whose status is then ``complete`` are counted.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from saq import Queue, Status, Worker

from benchmarks.peers import _common as c


async def noop(ctx: dict[str, Any], *, data: dict[str, Any]) -> None:
    c.STATS.on_start(data)


async def after_process(ctx: dict[str, Any]) -> None:
    job = ctx.get("job")
    if job is not None and job.status == Status.COMPLETE:
        c.STATS.on_complete(job.kwargs["data"]["i"])


def _queue(args: argparse.Namespace) -> Queue:
    return Queue.from_url(args.url, name=args.queue)


async def _enqueue(args: argparse.Namespace) -> None:
    q = _queue(args)
    await q.connect()
    try:
        if args.bulk:
            raise SystemExit("saq has no bulk enqueue")
        t0 = time.perf_counter()
        added = 0
        for i in range(args.n):
            if await q.enqueue("noop", data=c.plain_payload(i)) is not None:
                added += 1
        seconds = time.perf_counter() - t0
        if args.mode == "fill":
            c.emit({"event": "result", "n": added})
        else:
            c.enqueue_result(args.n, seconds, added)
    finally:
        await q.disconnect()


async def _produce(args: argparse.Namespace) -> None:
    q = _queue(args)
    await q.connect()
    delay_s = args.delay_ms / 1000.0

    async def add(data: dict[str, Any]) -> object:
        if delay_s:
            return await q.enqueue("noop", data=data, scheduled=data["t"] + delay_s)
        return await q.enqueue("noop", data=data)

    try:
        await c.produce_async(args.n, args.rate, args.delay_ms, add)
    finally:
        await q.disconnect()


async def _worker(args: argparse.Namespace) -> None:
    q: Queue | None = None
    worker: Worker | None = None
    task: asyncio.Task[None] | None = None

    async def start() -> None:
        nonlocal q, worker, task
        q = _queue(args)
        worker = Worker(
            q,
            functions=[noop],  # type: ignore[list-item]
            concurrency=args.concurrency,
            after_process=after_process,  # type: ignore[arg-type]
        )
        await q.connect()
        task = asyncio.create_task(worker.start())

    async def stop() -> None:
        assert worker is not None
        assert q is not None
        await worker.stop()
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
        await q.disconnect()

    await c.run_async_worker(start, stop)


def main(args: argparse.Namespace) -> None:
    if args.mode in ("enqueue", "fill"):
        asyncio.run(_enqueue(args))
    elif args.mode == "produce":
        asyncio.run(_produce(args))
    else:
        asyncio.run(_worker(args))
