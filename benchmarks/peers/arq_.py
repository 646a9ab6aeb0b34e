"""arq: ``create_pool``/``enqueue_job``; ``Worker(max_jobs=C, poll_delay=0.01)``.

arq has no bulk enqueue; its worker polls a sorted set, so ``poll_delay`` (default
0.5 s) is lowered to 10 ms, the fastest setting that does not spin.

Completion end point: the ``after_job_end`` hook, which arq 0.28 runs after
``finish_job`` has stored the result and removed the job (``on_job_end`` runs
before that). The hook gets the job's ctx, the same dict the handler got, so the
handler leaves the job's ``i`` there.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import timedelta
from typing import Any

from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from arq.worker import Worker

from benchmarks.peers import _common as c

POLL_DELAY_S = 0.01


async def noop(ctx: dict[str, Any], data: dict[str, Any]) -> None:
    c.STATS.on_start(data)
    ctx["bench_i"] = data["i"]


async def after_job_end(ctx: dict[str, Any]) -> None:
    if "bench_i" in ctx:
        c.STATS.on_complete(ctx["bench_i"])


async def _enqueue(args: argparse.Namespace, settings: RedisSettings) -> None:
    pool: ArqRedis = await create_pool(settings, default_queue_name=args.queue)
    try:
        if args.bulk:
            raise SystemExit("arq has no bulk enqueue")
        t0 = time.perf_counter()
        added = 0
        for i in range(args.n):
            if await pool.enqueue_job("noop", c.plain_payload(i)) is not None:
                added += 1
        seconds = time.perf_counter() - t0
        if args.mode == "fill":
            c.emit({"event": "result", "n": added})
        else:
            c.enqueue_result(args.n, seconds, added)
    finally:
        await pool.aclose()


async def _produce(args: argparse.Namespace, settings: RedisSettings) -> None:
    pool: ArqRedis = await create_pool(settings, default_queue_name=args.queue)
    defer = timedelta(milliseconds=args.delay_ms) if args.delay_ms else None

    async def add(data: dict[str, Any]) -> object:
        return await pool.enqueue_job("noop", data, _defer_by=defer)

    try:
        await c.produce_async(args.n, args.rate, args.delay_ms, add)
    finally:
        await pool.aclose()


async def _worker(args: argparse.Namespace, settings: RedisSettings) -> None:
    worker: Worker | None = None
    task: asyncio.Task[None] | None = None

    async def start() -> None:
        nonlocal worker, task
        worker = Worker(
            functions=[noop],  # type: ignore[list-item]
            queue_name=args.queue,
            redis_settings=settings,
            burst=args.burst,
            max_jobs=args.concurrency,
            poll_delay=POLL_DELAY_S,
            handle_signals=False,
            after_job_end=after_job_end,
        )
        task = asyncio.create_task(worker.main())

    async def stop() -> None:
        if task is not None:
            if not task.done():
                task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if worker is not None:
            await worker.close()

    await c.run_async_worker(start, stop)


def main(args: argparse.Namespace) -> None:
    settings = RedisSettings.from_dsn(args.url)
    if args.mode in ("enqueue", "fill"):
        asyncio.run(_enqueue(args, settings))
    elif args.mode == "produce":
        asyncio.run(_produce(args, settings))
    else:
        asyncio.run(_worker(args, settings))
