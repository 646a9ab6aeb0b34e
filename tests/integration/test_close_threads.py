"""Worker.close() and sync handlers: a job is requeued only once its handler stopped.

A thread cannot be interrupted, so a sync handler still running when the grace
period ends keeps its job: the job stays in active and its lock is renewed
until the thread returns; only then does the job go back to wait, so it never
runs twice at once.
"""

from __future__ import annotations

import asyncio
import threading
import time

from pyqueue import Worker


async def test_close_waits_for_a_sync_handler_within_the_grace(make_queue, make_worker):
    queue = make_queue()
    started = threading.Event()

    def handler(job):
        started.set()
        time.sleep(0.5)
        return "done"

    job = await queue.add({})
    worker = await make_worker(handler)
    await asyncio.to_thread(started.wait, 10)
    await worker.close(timeout=5)
    assert await job.get_state() == "completed"
    assert (await queue.get_job(job.id)).return_value == "done"


async def test_sync_handler_past_the_grace_keeps_its_job_until_it_returns(
    make_queue, make_worker, raw_redis, queue_name, fast
):
    queue = make_queue()
    runs: list[tuple[str, float, float]] = []
    started = threading.Event()

    def slow(job):
        begun = time.monotonic()
        started.set()
        time.sleep(2.5)  # past the grace and past two lock durations
        runs.append(("first", begun, time.monotonic()))
        return "first"

    def quick(job):
        runs.append(("second", time.monotonic(), time.monotonic()))
        return "second"

    job = await queue.add({})
    first: Worker = await make_worker(slow)
    await asyncio.to_thread(started.wait, 10)
    await first.close(timeout=0.3)
    # The thread still runs: its job is neither back on wait nor unlocked.
    assert runs == []
    assert await job.get_state() == "active"
    assert await raw_redis.exists(f"bull:{queue_name}:{job.id}:lock") == 1

    await make_worker(quick)
    assert await job.finished(timeout=15) == "second"
    by_name = {name: (begun, ended) for name, begun, ended in runs}
    # The second run began only after the first thread had returned.
    assert by_name["second"][0] >= by_name["first"][1], runs
    # Released by the returning thread (no attempt counted), not recovered as stalled.
    stored = await raw_redis.hgetall(f"bull:{queue_name}:{job.id}")
    assert b"stalledCounter" not in stored
    assert stored.get(b"attemptsMade", b"0") == b"0"
