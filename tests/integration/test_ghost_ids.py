"""A job id listed in wait whose hash is gone ("ghost"): removed, logged once, reported.

Issue 30: such an id was dropped in silence, with no event and no log line even
at DEBUG. It happens when a hash is deleted by hand, by an eviction policy, or
when a failover keeps the list and loses the hash. Each of the three ways a
worker takes a job from wait must say so: moveToActive popping from wait, the
blocking move (BLMOVE) then moveToActive with that id, and the next job fetched
by a finishing call.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import pytest
import redis.asyncio as aioredis

from pyqueue import JobNotFound

from .conftest import FAST


def _ghost_errors(errors: list[BaseException]) -> list[str]:
    return sorted(e.job_id for e in errors if isinstance(e, JobNotFound) and e.job_id)


@pytest.mark.parametrize("path", ["pop", "blocking", "fetch-next"])
async def test_a_ghost_id_is_removed_logged_once_and_reported(
    make_queue: Any, make_worker: Any, eventually: Any, raw_redis: aioredis.Redis,
    caplog: pytest.LogCaptureFixture, path: str,
) -> None:
    queue = make_queue()
    keys = queue.keys
    done: list[str] = []
    errors: list[BaseException] = []

    async def handler(job: Any) -> None:
        done.append(job.id)

    if path == "fetch-next":
        # The first job's finishing call fetches the next id: the ghost.
        await queue.add({}, job_id="first")
        await raw_redis.lpush(keys.wait, "ghost-id")
        worker = await make_worker(handler, options=dataclasses.replace(FAST, concurrency=1),
                                   start=False)
    else:
        worker = await make_worker(handler, start=False)
    if path == "pop":
        await raw_redis.lpush(keys.wait, "ghost-id")
        await queue.add({}, job_id="first")
    worker.on("error", errors.append)
    caplog.set_level(logging.WARNING, logger="pyqueue")
    if path == "blocking":
        # Start on an empty queue, so the worker blocks in BLMOVE; then the ghost arrives.
        await worker.start()
        await eventually(lambda: _blocked(raw_redis), timeout=10)
        await raw_redis.lpush(keys.wait, "ghost-id")
        await queue.add({}, job_id="first")
    else:
        await worker.start()

    await eventually(lambda: "first" in done and "ghost-id" in _ghost_errors(errors), timeout=15)
    assert _ghost_errors(errors) == ["ghost-id"]
    for key in (keys.wait, keys.active):
        assert b"ghost-id" not in await raw_redis.lrange(key, 0, -1)
    assert await raw_redis.exists(keys.lock("ghost-id")) == 0
    lines = [r.getMessage() for r in caplog.records if "ghost-id" in r.getMessage()]
    assert len(lines) == 1, lines
    assert queue.name in lines[0]


async def _blocked(raw_redis: aioredis.Redis) -> bool:
    clients = await raw_redis.client_list()
    return any(c.get("cmd") in ("blmove", "brpoplpush") for c in clients)
