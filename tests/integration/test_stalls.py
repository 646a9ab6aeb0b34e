"""Locks and stalled jobs: killed workers, stall limits, blocked loops, lost locks."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from pyqueue import JobFailedError, LockMismatch
from pyqueue._protocol.bull.keys import QueueKeys
from pyqueue._protocol.bull.scripts import Scripts
from pyqueue.job import now_ms

_CHILD = textwrap.dedent(
    """
    import asyncio, sys, time
    import redis
    from pyqueue import Worker, WorkerOptions

    url, queue, mode, runs_key = sys.argv[1:5]
    marker = redis.Redis.from_url(url)

    async def handler(job):
        marker.rpush(runs_key, "child")
        if mode == "forever":
            await asyncio.sleep(3600)
        time.sleep(float(mode))  # blocks the event loop on purpose
        return "child result"

    async def main():
        opts = WorkerOptions(lock_duration=1000, stalled_interval=500, guard_interval=200,
                             drain_delay=0.2)
        async with Worker(queue, handler, redis_url=url, options=opts):
            await asyncio.sleep(3600)

    asyncio.run(main())
    """
)


@pytest.fixture
def spawn_worker(redis_url: str, queue_name: str) -> Iterator[Any]:
    """Start a Worker in a child process; ``mode`` is ``"forever"`` or seconds to block."""
    children: list[subprocess.Popen[bytes]] = []

    def spawn(mode: str) -> subprocess.Popen[bytes]:
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD, redis_url, queue_name, mode, _runs_key(queue_name)],
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
        children.append(child)
        return child

    yield spawn
    for child in children:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=10)


def _runs_key(queue_name: str) -> str:
    return f"test-runs:{queue_name}"


async def test_killed_workers_job_is_recovered_by_another_worker(
    make_queue, make_worker, spawn_worker, raw_redis, queue_name, eventually, messages
):
    queue = make_queue()
    job = await queue.add({"x": 1})
    child = spawn_worker("forever")
    await eventually(lambda: raw_redis.llen(_runs_key(queue_name)), timeout=20)
    lock = await raw_redis.get(f"bull:{queue_name}:{job.id}:lock")
    assert lock is not None
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)

    pubsub = raw_redis.pubsub()
    await pubsub.psubscribe(f"bull:{queue_name}:stalled@*")
    stalled_events: list[str] = []

    async def rescue(j):
        await raw_redis.rpush(_runs_key(queue_name), "rescuer")
        return "recovered"

    worker = await make_worker(rescue, start=False)
    worker.on("stalled", stalled_events.append)
    await worker.start()
    assert await job.finished(timeout=20) == "recovered"
    (channel, data), = await messages(pubsub, 1)
    await pubsub.aclose()
    assert channel == f"bull:{queue_name}:stalled@"
    assert data == job.id
    assert stalled_events == [job.id]
    stored = await raw_redis.hgetall(f"bull:{queue_name}:{job.id}")
    assert stored[b"stalledCounter"] == b"1"
    assert b"attemptsMade" not in stored  # a stall is not an attempt
    assert await raw_redis.lrange(_runs_key(queue_name), 0, -1) == [b"child", b"rescuer"]
    await raw_redis.delete(_runs_key(queue_name))


async def _abandon_active_job(queue, job_id: str, lock_ms: int = 300) -> None:
    """Move the next job to active under a foreign token whose lock soon expires."""
    reply = await queue.scripts.move_to_active(
        token="dead-worker-token", lock_duration=lock_ms, now=now_ms()
    )
    assert reply is not None
    assert reply[1] == job_id


async def test_stall_limit_zero_fails_the_job(
    make_queue, make_worker, fast, raw_redis, queue_name, messages
):
    queue = make_queue()
    job = await queue.add({}, attempts=5)
    await _abandon_active_job(queue, job.id)
    pubsub = raw_redis.pubsub()
    await pubsub.subscribe(f"bull:{queue_name}:failed")
    runs: list[str] = []
    failed_ids: list[str] = []
    worker = await make_worker(
        lambda j: runs.append(j.id), options=replace(fast, max_stalled_count=0), start=False
    )
    worker.on("stalled-failed", failed_ids.append)
    await worker.start()
    with pytest.raises(JobFailedError, match="job stalled more than"):
        await job.finished(timeout=20)
    (_, payload), = await messages(pubsub, 1)
    await pubsub.aclose()
    assert payload == f'{{"jobId":"{job.id}", "val": "job stalled more than maxStalledCount"}}'
    stored = await raw_redis.hgetall(f"bull:{queue_name}:{job.id}")
    assert stored[b"failedReason"] == b"job stalled more than allowable limit"
    assert stored[b"stalledCounter"] == b"1"
    assert runs == []
    assert failed_ids == [job.id]
    assert await job.get_state() == "failed"


async def test_stall_failure_applies_remove_on_fail(make_queue, make_worker, fast, raw_redis,
                                                    queue_name, eventually):
    queue = make_queue()
    job = await queue.add({}, remove_on_fail=True)
    await _abandon_active_job(queue, job.id)
    await make_worker(lambda j: None, options=replace(fast, max_stalled_count=0))
    await eventually(lambda: _gone(raw_redis, f"bull:{queue_name}:{job.id}"), timeout=20)
    assert await raw_redis.zcard(f"bull:{queue_name}:failed") == 0
    assert await raw_redis.llen(f"bull:{queue_name}:active") == 0


async def _gone(raw, key: str) -> bool:
    return not await raw.exists(key)


async def test_stalled_job_with_expired_lock_is_reprocessed(
    make_queue, make_worker, raw_redis, queue_name
):
    queue = make_queue()
    job = await queue.add("payload")
    await _abandon_active_job(queue, job.id)
    await make_worker(lambda j: f"got {j.data}")
    assert await job.finished(timeout=20) == "got payload"
    assert await raw_redis.hget(f"bull:{queue_name}:{job.id}", "stalledCounter") == b"1"


async def test_blocked_event_loop_keeps_its_lock(
    make_queue, make_worker, spawn_worker, raw_redis, queue_name, eventually
):
    queue = make_queue()
    job = await queue.add({})
    spawn_worker("2.5")  # blocks its loop 2.5 s, with a 1 s lock
    await eventually(lambda: raw_redis.llen(_runs_key(queue_name)), timeout=20)

    async def steal(j):
        await raw_redis.rpush(_runs_key(queue_name), "thief")
        return "stolen"

    await make_worker(steal)  # its stalled checks run while the child is blocked
    assert await job.finished(timeout=20) == "child result"
    await asyncio.sleep(0.6)
    assert await raw_redis.lrange(_runs_key(queue_name), 0, -1) == [b"child"]
    assert await raw_redis.hget(f"bull:{queue_name}:{job.id}", "stalledCounter") is None
    await raw_redis.delete(_runs_key(queue_name))


async def test_blocking_async_handler_in_process_keeps_lock(
    make_queue, make_worker, raw_redis, queue_name
):
    queue = make_queue()
    job = await queue.add({})

    async def blocker(j):
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:  # burns CPU, never yields
            sum(range(1000))
        return "done"

    await make_worker(blocker)
    assert await job.finished(timeout=20) == "done"
    stored = await raw_redis.hgetall(f"bull:{queue_name}:{job.id}")
    assert b"stalledCounter" not in stored
    assert stored[b"returnvalue"] == b'"done"'


async def test_worker_that_lost_its_lock_does_not_write_result(
    make_queue, make_worker, raw_redis, queue_name, eventually
):
    queue = make_queue()
    job = await queue.add({})
    release = asyncio.Event()
    errors: list[BaseException] = []
    completed: list[str] = []

    async def handler(j):
        await release.wait()
        return "late result"

    worker = await make_worker(handler, start=False)
    worker.on("error", errors.append)
    worker.on("completed", lambda j, r: completed.append(j.id))
    await worker.start()
    lock_key = f"bull:{queue_name}:{job.id}:lock"
    await eventually(lambda: raw_redis.exists(lock_key))
    await raw_redis.delete(lock_key)
    release.set()
    await eventually(lambda: errors)
    assert isinstance(errors[0], LockMismatch)
    stored = await raw_redis.hgetall(f"bull:{queue_name}:{job.id}")
    assert b"returnvalue" not in stored
    assert b"finishedOn" not in stored
    assert await raw_redis.zscore(f"bull:{queue_name}:completed", job.id) is None
    assert completed == []


async def test_lock_taken_by_another_worker_is_not_overwritten(
    make_queue, make_worker, raw_redis, queue_name, eventually
):
    queue = make_queue()
    job = await queue.add({})
    release = asyncio.Event()
    errors: list[BaseException] = []

    async def handler(j):
        await release.wait()
        raise ValueError("late failure")

    worker = await make_worker(handler, start=False)
    worker.on("error", errors.append)
    await worker.start()
    lock_key = f"bull:{queue_name}:{job.id}:lock"
    await eventually(lambda: raw_redis.exists(lock_key))
    await raw_redis.set(lock_key, "another-worker", px=10_000)
    release.set()
    await eventually(lambda: errors)
    assert isinstance(errors[0], LockMismatch)
    assert errors[0].code == -6
    assert await raw_redis.get(lock_key) == b"another-worker"
    assert await job.get_state() == "active"
    assert await raw_redis.zscore(f"bull:{queue_name}:failed", job.id) is None
    await raw_redis.delete(lock_key)


async def test_stalled_check_is_throttled_by_stalled_check_key(
    make_queue, raw_redis, queue_name
):
    queue = make_queue()
    scripts = Scripts(queue.client, QueueKeys("bull", queue_name))
    await queue.add({})
    await _abandon_active_job(queue, "1", lock_ms=1)
    first = await scripts.move_stalled_jobs_to_wait(
        max_stalled_count=1, now=now_ms(), stalled_interval=5000
    )
    assert first == ([], [])
    assert 0 < await raw_redis.pttl(f"bull:{queue_name}:stalled-check") <= 5000
    assert await raw_redis.smembers(f"bull:{queue_name}:stalled") == {b"1"}
    # A second checker within the interval does nothing.
    assert await scripts.move_stalled_jobs_to_wait(
        max_stalled_count=1, now=now_ms(), stalled_interval=5000
    ) == ([], [])
    assert await raw_redis.llen(f"bull:{queue_name}:active") == 1
    await raw_redis.delete(f"bull:{queue_name}:stalled-check")
    # The abandoned lock lives 1 ms; this test can get here within that
    # millisecond, and a live lock rightly keeps the job active.
    while await raw_redis.exists(f"bull:{queue_name}:1:lock"):  # noqa: ASYNC110
        await asyncio.sleep(0.001)
    assert await scripts.move_stalled_jobs_to_wait(
        max_stalled_count=1, now=now_ms(), stalled_interval=5000
    ) == ([], ["1"])
    assert json.loads(await raw_redis.hget(f"bull:{queue_name}:1", "data")) == {}
