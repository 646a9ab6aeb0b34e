"""Workers by name: each pyqueue worker's heartbeat, and the attempt's worker in the job hash."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import textwrap
from typing import Any

import redis.asyncio as aioredis

from pyqueue import Queue, Worker, WorkerOptions, __version__, monitoring
from pyqueue.embedded import RedisServer

HOLD = WorkerOptions(drain_delay=1, guard_interval=200, stalled_interval=0, shutdown_grace=1)


async def _eventually(check: Any, timeout: float = 15.0) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"never true; last {value!r}")
        await asyncio.sleep(0.05)


async def test_a_busy_worker_is_listed_by_name_with_its_jobs(
    redis_url: str, queue_name: str
) -> None:
    release = asyncio.Event()

    async def hold(job: Any) -> str:
        await release.wait()
        return "done"

    async with Queue(queue_name, redis_url) as queue:
        for n in range(3):
            await queue.add({"n": n})
        async with Worker(queue, hold, options=HOLD, concurrency=2) as worker:

            async def listed() -> list[monitoring.WorkerInfo] | None:
                found = await monitoring.get_workers(queue)
                return found if found and len(found[0].jobs) == 2 else None

            found = await _eventually(listed)
            # One entry: its named blocking connection is not counted again as a Node worker.
            assert len(found) == 1
            me = found[0]
            assert (me.kind, me.id, me.host, me.pid) == (
                "pyqueue", worker.token, socket.gethostname(), os.getpid())
            assert (me.concurrency, me.version) == (2, __version__)
            assert sorted(me.jobs) == ["1", "2"]
            assert me.last_heartbeat_ms is not None
            assert sorted(j.id for j in worker.active_jobs) == ["1", "2"]
            # Bull's own view still counts it (bull-board's worker count).
            assert len(await queue.get_workers()) == 1
            # Each attempt names the worker that started it.
            for job_id in ("1", "2"):
                ran = await monitoring.get_attempt_worker(queue, job_id)
                assert ran is not None
                assert (ran.id, ran.pid, ran.latest) == (worker.token, os.getpid(), True)
            release.set()
            job3 = await _eventually(lambda: _completed(queue, "3"))
            assert job3
            ran = await monitoring.get_attempt_worker(queue, "3")
            assert ran is not None
            assert ran.id == worker.token
        # Closed: gone from the list at once, not after the record's TTL.
        assert await monitoring.get_workers(queue) == []


async def _completed(queue: Queue[Any], job_id: str) -> bool:
    return await queue.get_job_state(job_id) == "completed"


KILLABLE = textwrap.dedent("""
    import asyncio, sys
    from pyqueue._engine import presence
    from pyqueue import Worker, WorkerOptions

    presence.HEARTBEAT_EVERY, presence.RECORD_TTL = 0.2, 1.0

    async def main() -> None:
        async def hold(job):
            await asyncio.Event().wait()
        worker = Worker(sys.argv[2], hold, redis_url=sys.argv[1], concurrency=1,
                        options=WorkerOptions(drain_delay=1, stalled_interval=0))
        await worker.start()
        print("started", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())
""")


async def test_a_killed_worker_leaves_the_list_when_its_record_expires(
    redis_url: str, queue_name: str
) -> None:
    proc = subprocess.Popen(  # noqa: ASYNC220 - started once; the test then awaits its line
        [sys.executable, "-c", KILLABLE, redis_url, queue_name], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert (await asyncio.to_thread(proc.stdout.readline)).strip() == "started"
        async with Queue(queue_name, redis_url) as queue:
            await queue.add({"n": 1})

            async def held() -> bool:
                found = await monitoring.get_workers(queue)
                return bool(found) and found[0].jobs == ("1",) and found[0].pid == proc.pid

            await _eventually(held)
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)

            async def gone() -> bool:
                return await monitoring.get_workers(queue) == []

            await _eventually(gone)
            # The job it held stays active: the doctor's business, not the list's.
            assert await queue.get_job_state("1") == "active"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


async def test_a_fully_busy_worker_is_listed_again_after_a_redis_restart(
    queue_name: str,
) -> None:
    with RedisServer(appendonly=True) as server:
        release = asyncio.Event()

        async def hold(job: Any) -> None:
            await release.wait()

        async with Queue(queue_name, server.url) as queue:
            for n in range(2):
                await queue.add({"n": n})
            async with Worker(queue, hold, options=HOLD, concurrency=2) as worker:

                async def busy() -> bool:
                    found = await monitoring.get_workers(queue)
                    return len(found) == 1 and len(found[0].jobs) == 2

                await _eventually(busy)
                await asyncio.to_thread(server.restart)
                await _eventually(busy)
                # Every slot is busy, so its blocking connection has not been named again:
                # the heartbeat is what lists it (Bull's CLIENT LIST count alone says 0).
                raw = aioredis.Redis.from_url(server.url)
                try:
                    names = [c.get("name") for c in await raw.client_list()]
                finally:
                    await raw.aclose()
                assert queue.keys.worker_client_name not in names
                assert (await monitoring.get_workers(queue))[0].id == worker.token
                release.set()
