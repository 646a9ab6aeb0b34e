"""Subscribed connections that go silent (half-open) are noticed and replaced.

A subscriber only reads, so a black-holed connection looks exactly like a quiet
queue. These tests black-hole the subscribers' sockets through
:class:`ChaosProxy` and check that events and delayed promotion come back,
and that a merely quiet connection is left alone.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from tests.chaos.proxy import ChaosProxy

from pyqueue import Job, Queue, QueueEvents, Worker, WorkerOptions
from pyqueue._protocol.pubsub import SilenceGuard


async def _until(check: object, seconds: float) -> float:
    """Poll ``check()`` until it is true; return the seconds it took."""
    assert callable(check)
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > seconds:
            raise AssertionError(f"condition not met within {seconds} s")
        await asyncio.sleep(0.02)
    return time.monotonic() - start


async def test_guard_keeps_a_quiet_connection_and_drops_a_silent_one(
    proxied: ChaosProxy,
) -> None:
    client = aioredis.Redis.from_url(proxied.url)
    pubsub = client.pubsub()
    try:
        await pubsub.subscribe("quiet")
        guard = SilenceGuard(pubsub, 0.3)
        # The subscribe confirmation, then nothing: PINGs keep it alive for a while.
        assert (await guard.next_message())["type"] == "subscribe"
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(1.5):
                await guard.next_message()

        await proxied.blackhole(0.05)
        start = time.monotonic()
        with pytest.raises(RedisConnectionError, match="silent"):
            await guard.next_message()
        assert time.monotonic() - start < 1.5
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]
        await client.aclose()


async def test_queue_events_idle_is_not_an_error_and_silence_recovers(
    proxied: ChaosProxy, redis_url: str, queue_name: str
) -> None:
    errors: list[BaseException] = []
    heard: list[str] = []
    events = QueueEvents(queue_name, f"{proxied.url}?socket_timeout=0.5")
    events.on("error", errors.append)
    events.on("waiting", heard.append)
    async with events, Queue(queue_name, redis_url=redis_url) as queue:
        # Several socket_timeouts with no traffic: a quiet queue, not a failure.
        await asyncio.sleep(2.0)
        assert errors == []
        await queue.add({"n": 1}, job_id="before")
        await _until(lambda: "before" in heard, 2.0)

        await proxied.blackhole(0.05)
        # Noticed after about two socket_timeouts, then resubscribed.
        await _until(lambda: any(isinstance(e, RedisConnectionError) for e in errors), 3.0)
        n = 0

        async def heard_again() -> None:
            nonlocal n
            while not any(h.startswith("after") for h in heard):
                n += 1
                await queue.add({"n": n}, job_id=f"after-{n}")
                await asyncio.sleep(0.1)

        async with asyncio.timeout(3.0):
            await heard_again()


async def test_worker_hears_delayed_jobs_again_after_its_subscription_went_silent(
    proxied: ChaosProxy, redis_url: str, queue_name: str
) -> None:
    # The guard run is far away: only the delayed channel can promote in time.
    options = WorkerOptions(guard_interval=120_000, stalled_interval=120_000)

    async def handler(job: Job[Any]) -> None:
        return None

    worker = Worker(
        queue_name, handler, redis_url=f"{proxied.url}?socket_timeout=0.5", options=options
    )
    async with Queue(queue_name, redis_url=redis_url) as queue:
        await worker.start()
        try:
            await asyncio.sleep(0.3)  # the worker's subscription is up
            await proxied.blackhole(0.05)
            # Silence is noticed within ~1 s; give the resubscription time too.
            await asyncio.sleep(2.0)
            job = await queue.add({"x": 1}, delay=500)
            state = "delayed"
            deadline = time.monotonic() + 5.0
            while state == "delayed" and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
                state = await queue.get_job_state(job.id)
            # Any later state: promoted by the delayed channel, not by the guard.
            assert state != "delayed"
        finally:
            await worker.close()
