"""A cancelled subscriber stops, whenever the cancel lands, and gives its connection back.

redis-py 8 on Python 3.11 lost such cancels: while a connection was being set up
(HELLO, CLIENT SETINFO, SUBSCRIBE) redis-py awaits ``asyncio.wait_for`` around each
write, and 3.11's ``wait_for`` returns the write's result instead of raising when
the cancel arrives after the write finished. The task then went on to wait for a
message for ever, holding its connection. Cancels here land at every stage: each
round of the sweep cancels the subscribers one loop turn later than the last.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis

from pyqueue import Queue, QueueEvents

SUBSCRIBERS = 200
ROUNDS = 8  # cancel after 0, 1, 2, ... 7 * STEP loop turns
STEP = 3


async def _clients(raw: aioredis.Redis) -> int:
    return len(await raw.client_list())


async def _cancel_sweep(
    start: Callable[[int], Awaitable[Any]], raw: aioredis.Redis, eventually: Any,
    *, owner: Queue[Any] | None = None,
) -> None:
    """Each round starts SUBSCRIBERS tasks and cancels them a few loop turns later than
    the round before; every task must stop and every connection must be closed (those
    of a shared subscriber once its ``owner`` closes)."""
    baseline = await _clients(raw)
    for round_no in range(ROUNDS):
        tasks = [asyncio.create_task(start(i)) for i in range(SUBSCRIBERS)]
        for _ in range(round_no * STEP):
            await asyncio.sleep(0)
        for task in tasks:
            task.cancel()
        # A subscriber whose cancel was lost waits for a message that never comes.
        _, running = await asyncio.wait(tasks, timeout=15)
        for task in running:
            task.cancel()  # clean up before failing: a second cancel does land
        await asyncio.wait(tasks, timeout=15)
        assert not running, (
            f"round {round_no}: {len(running)} of {SUBSCRIBERS} cancelled subscribers kept running"
        )
        for task in tasks:
            assert task.cancelled(), task
    if owner is not None:
        await owner.close()
    # The server is the judge of leaks: every connection they opened is closed.
    await eventually(lambda: _clients_back(raw, baseline), timeout=15)


async def _clients_back(raw: aioredis.Redis, baseline: int) -> bool:
    return await _clients(raw) <= baseline


async def test_cancelled_finished_waiters_stop_and_close(
    make_queue: Callable[..., Queue[Any]], raw_redis: aioredis.Redis, eventually: Any
) -> None:
    queue = make_queue()
    # Jobs nobody processes: each waiter subscribes and waits until cancelled.
    jobs = [await queue.add({"n": i}) for i in range(SUBSCRIBERS)]

    async def wait(i: int) -> Any:
        return await jobs[i].finished()

    await _cancel_sweep(wait, raw_redis, eventually, owner=queue)


async def test_cancelled_queue_events_stop_and_close(
    redis_url: str, queue_name: str, raw_redis: aioredis.Redis, eventually: Any
) -> None:
    async def listen(_: int) -> None:
        async with QueueEvents(queue_name, redis_url):
            await asyncio.Event().wait()

    await _cancel_sweep(listen, raw_redis, eventually)
