"""Factories for queues and workers on the private test Redis; each closes what it made."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import pytest

from pyqueue import Queue, Worker, WorkerOptions

FAST = WorkerOptions(
    lock_duration=1000, stalled_interval=500, guard_interval=200, drain_delay=0.2,
    shutdown_grace=2.0,
)

MakeQueue = Callable[..., Queue[Any]]
MakeWorker = Callable[..., Awaitable[Worker]]
Eventually = Callable[..., Awaitable[Any]]


@pytest.fixture
async def make_queue(redis_url: str, queue_name: str) -> AsyncIterator[MakeQueue]:
    """``make_queue(name=queue_name, **kwargs)`` -> an open Queue on the test server."""
    created: list[Queue[Any]] = []

    def factory(name: str | None = None, **kwargs: Any) -> Queue[Any]:
        queue: Queue[Any] = Queue(name or queue_name, redis_url, **kwargs)
        created.append(queue)
        return queue

    yield factory
    for queue in reversed(created):
        await queue.close()


@pytest.fixture
async def make_worker(redis_url: str, queue_name: str) -> AsyncIterator[MakeWorker]:
    """``await make_worker(processor, options=FAST, start=True, queue=name, **kwargs)``."""
    created: list[Worker] = []

    async def factory(
        processor: Any,
        *,
        options: WorkerOptions | None = None,
        start: bool = True,
        queue: str | Queue[Any] | None = None,
        **kwargs: Any,
    ) -> Worker:
        worker = Worker(
            queue or queue_name, processor, redis_url=redis_url,
            options=options or FAST, **kwargs,
        )
        created.append(worker)
        if start:
            await worker.start()
        return worker

    yield factory
    for worker in reversed(created):
        await worker.close(timeout=1.0)


async def _eventually(
    check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02
) -> Any:
    """Await ``check()`` (sync or async) until it returns a truthy value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value) or isinstance(value, Awaitable):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value {value!r})")
        await asyncio.sleep(interval)


@pytest.fixture
def eventually() -> Eventually:
    return _eventually


async def hash_of(raw: Any, key: str) -> dict[str, str]:
    data: Mapping[bytes, bytes] = await raw.hgetall(key)
    return {k.decode(): v.decode() for k, v in data.items()}


@pytest.fixture
def read_hash() -> Callable[[Any, str], Awaitable[dict[str, str]]]:
    """``await read_hash(raw_redis, key)`` -> the hash decoded to ``str``."""
    return hash_of


@pytest.fixture
def fast() -> WorkerOptions:
    """Short lock/stall/guard settings that keep tests quick."""
    return FAST


async def command_calls(raw: Any, command: str) -> int:
    """How many times ``command`` ran on the server so far (INFO commandstats)."""
    stats: Mapping[str, Any] = await raw.info("commandstats")
    entry = stats.get(f"cmdstat_{command}")
    return int(entry["calls"]) if entry else 0


@pytest.fixture
def calls() -> Callable[[Any, str], Awaitable[int]]:
    """``await calls(raw_redis, "evalsha")`` -> the server's call count for a command."""
    return command_calls


async def next_messages(pubsub: Any, n: int, timeout: float = 5.0) -> list[tuple[str, str]]:
    """The next ``n`` pub/sub messages as ``(channel, data)``, skipping (un)subscribe replies."""
    out: list[tuple[str, str]] = []
    deadline = time.monotonic() + timeout
    while len(out) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"only {len(out)} of {n} messages arrived: {out!r}")
        msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=min(left, 0.2))
        if msg is not None:
            out.append((msg["channel"].decode(), msg["data"].decode()))
    return out


@pytest.fixture
def messages() -> Callable[..., Awaitable[list[tuple[str, str]]]]:
    """``await messages(pubsub, n)`` -> the next n messages as ``(channel, data)``."""
    return next_messages
