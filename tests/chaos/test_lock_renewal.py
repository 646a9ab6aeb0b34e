"""A lock renewal that meets a silent (black-holed) socket must not lose the lock.

The renewer thread talks to Redis through :class:`ChaosProxy`; the job and its
lock are made by the real scripts on the real server. After the renewer's one
connection is black-holed, the next renewal hangs on it: the renewer must give
up on that socket and renew on a new one before the lock's TTL runs out.
"""

from __future__ import annotations

import asyncio
import time

import redis.asyncio as aioredis
from tests.chaos.proxy import ChaosProxy

from pyqueue import Queue
from pyqueue._engine.locks import LockRenewer, sync_renewer
from pyqueue._protocol.connection import ConnectionSpec
from pyqueue.job import now_ms

LOCK_MS = 2000
RENEW_MS = LOCK_MS // 2  # Bull's default lockRenewTime


async def test_one_black_holed_renewal_does_not_lose_the_lock(
    proxied: ChaosProxy, redis_url: str, raw_redis: aioredis.Redis, queue_name: str
) -> None:
    """Bug: the renewer's socket timeout equalled its period, so the renewal
    stuck on a silent socket outlived the lock and every lock was lost."""
    token = "renewer-token"
    async with Queue(queue_name, redis_url) as queue:
        job = await queue.add({"n": 1})
        started = await queue.scripts.move_to_active(
            token=token, lock_duration=LOCK_MS, now=now_ms()
        )
        assert started is not None
        assert started[1] == job.id
        spec = ConnectionSpec.from_url(proxied.url)
        renew, close, _ = sync_renewer(spec, queue.keys, token, LOCK_MS)
        lost: list[str] = []
        errors: list[BaseException] = []
        renewer = LockRenewer(renew, RENEW_MS, on_lost=lost.append, on_error=errors.append)
        try:
            # Open the renewer's connection, then silence it (half-open, as after a
            # NAT timeout): the next periodic renewal is sent into the void.
            assert await asyncio.to_thread(renew, [job.id]) == [True]
            renewer.add(job.id)
            renewer.start()
            await proxied.blackhole(0.05)
            assert proxied.blackholes == 1
            start = time.monotonic()
            lock_key = queue.keys.lock(job.id)
            # Several lock durations: the lock must be held by us throughout.
            while time.monotonic() - start < 2.5 * LOCK_MS / 1000:
                assert await raw_redis.get(lock_key) == token.encode(), (
                    f"lock lost {time.monotonic() - start:.2f} s after the black hole; "
                    f"renewer errors: {errors!r}"
                )
                await asyncio.sleep(0.05)
            assert lost == []
            # The silent socket was noticed (as an error), and renewal went on.
            assert errors, "the black-holed renewal was never noticed"
        finally:
            await asyncio.to_thread(renewer.stop)
            close()
