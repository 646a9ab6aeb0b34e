"""pyqueue: ``Queue.add``/``add_bulk``; ``Worker(concurrency=C)``. Defaults otherwise.

``--protocol bullmq`` (the library ``pyqueue-bullmq``) runs the same calls in BullMQ
mode (``Queue(..., protocol="bullmq")``).

Completion end point: the worker's local ``completed(job, result)`` event, which
fires once the finishing script has confirmed the job moved to completed.

``worker --floor`` drains without a Worker: moveToActive once, then the
completing moveToFinished (which fetches the next job) in a bare loop, with the
arguments a worker sends for default options. No Job objects, events, lock
renewal or handler call: the most a worker on pyqueue's connection could reach.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from typing import Any

from benchmarks.peers import _common as c
from pyqueue import BulkJob, Queue, Worker
from pyqueue._protocol.bull import wire
from pyqueue.job import now_ms

FLOOR_LOCK_MS = 30_000


def _format(args: argparse.Namespace) -> dict[str, Any]:
    """``protocol=`` for BullMQ mode only: pyqueue-base may run a checkout without it."""
    return {"protocol": "bullmq"} if args.protocol == "bullmq" else {}


async def noop(job: Any) -> None:
    c.STATS.on_start(job.data)


def completed(job: Any, result: Any) -> None:
    c.STATS.on_complete(job.data["i"])


async def _enqueue(args: argparse.Namespace) -> None:
    async with Queue(args.queue, redis_url=args.url, **_format(args)) as q:
        t0 = time.perf_counter()
        added = 0
        if args.bulk or args.mode == "fill":
            for ids in c.chunks(args.n):
                jobs = await q.add_bulk([BulkJob(c.plain_payload(i)) for i in ids])
                added += len(jobs)
        else:
            for i in range(args.n):
                await q.add(c.plain_payload(i))
                added += 1
        seconds = time.perf_counter() - t0
    if args.mode == "fill":
        c.emit({"event": "result", "n": added})
    else:
        c.enqueue_result(args.n, seconds, added)


async def _produce(args: argparse.Namespace) -> None:
    async with Queue(args.queue, redis_url=args.url, **_format(args)) as q:

        async def add(data: dict[str, Any]) -> object:
            if args.delay_ms:
                return await q.add(data, delay=args.delay_ms)
            return await q.add(data)

        await c.produce_async(args.n, args.rate, args.delay_ms, add)


async def _floor_drain(q: Queue[Any]) -> None:
    scripts, token = q.scripts, uuid.uuid4().hex
    keep_count, keep_age = wire.keep_on_complete({})
    reply = await scripts.move_to_active(token=token, lock_duration=FLOOR_LOCK_MS, now=now_ms())
    while reply is not None:
        raw, job_id = reply
        i = json.loads(raw[b"data"])["i"]
        c.STATS.on_start({"i": i})
        reply = await scripts.move_to_completed(
            job_id, token=token, finished_on=now_ms(), return_value="null",
            keep_count=keep_count, keep_age=keep_age,
            event_payload=wire.completed_payload(job_id, "null"), fetch_next=True,
            lock_duration=FLOOR_LOCK_MS, check_debounce=False,
        )
        c.STATS.on_complete(i)


async def _floor(args: argparse.Namespace) -> None:
    queue: Queue[Any] | None = None
    drain: asyncio.Task[None] | None = None

    async def start() -> None:
        nonlocal queue, drain
        queue = Queue(args.queue, redis_url=args.url)
        drain = asyncio.create_task(_floor_drain(queue))

    async def stop() -> None:
        assert queue is not None
        assert drain is not None
        await drain
        await queue.close()

    await c.run_async_worker(start, stop)


async def _worker(args: argparse.Namespace) -> None:
    worker: Worker[Any] | None = None

    async def start() -> None:
        nonlocal worker
        worker = Worker(args.queue, noop, redis_url=args.url, concurrency=args.concurrency,
                        **_format(args))
        worker.on("completed", completed)
        await worker.start()

    async def stop() -> None:
        assert worker is not None
        await worker.close()

    await c.run_async_worker(start, stop)


def main(args: argparse.Namespace) -> None:
    if args.mode in ("enqueue", "fill"):
        main_ = _enqueue(args)
    elif args.mode == "produce":
        main_ = _produce(args)
    elif args.floor:
        main_ = _floor(args)
    else:
        main_ = _worker(args)
    if args.loop == "asyncio":
        asyncio.run(main_)
    else:
        from pyqueue import loops  # not in the older checkouts that pyqueue-base may run

        loops.run(main_, loop=args.loop)
