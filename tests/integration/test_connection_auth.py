"""Issue 11 item 3: after a reconnect, no command may run before AUTH and SELECT have.

The hot-path connection used to publish a new socket to other callers as soon
as it was open, then send AUTH and wait for its reply before sending SELECT.
Commands that arrived in that window ran in db 0 (or, without AUTH, failed
with NOAUTH). The test restarts a password-protected server under 50
concurrent producers using db 3, and checks db 0 stays empty.
"""

from __future__ import annotations

import asyncio
import random

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from pyqueue import Queue
from pyqueue.embedded import RedisServer

PRODUCERS = 50
RESTARTS = 3
KILLS = 30


async def _producer(queue: Queue[object], n: int, stop: asyncio.Event, errors: list[str]) -> int:
    added = 0
    while not stop.is_set():
        try:
            await queue.add({"n": n}, job_id=f"p{n}-{added}")
            added += 1
            # Producers at a steady rate rather than in lockstep, so calls keep
            # arriving at every moment, including while a reconnect is half done.
            await asyncio.sleep(random.random() / 200)
        except RedisConnectionError:
            # Jittered retry: some producers must arrive while a reconnect is
            # half done, which is the window this test is about.
            await asyncio.sleep(random.random() / 5000)
        except ResponseError as exc:  # NOAUTH, or a db-0 side effect
            errors.append(str(exc))
            await asyncio.sleep(0.001)
    return added


async def _drop_clients(server: RedisServer) -> None:
    admin = aioredis.Redis(port=server.port, password="pw")
    try:
        await admin.client_kill_filter(_type="normal", skipme=True)
    finally:
        await admin.aclose()


@pytest.mark.parametrize("fault", ["restart", "client-kill"])
async def test_reconnect_authenticates_and_selects_before_any_command(
    queue_name: str, fault: str
) -> None:
    """A restart also empties the script cache, so the first command after it is
    usually a harmless NOSCRIPT; dropping connections keeps scripts cached, which
    is the case that ran real writes in db 0."""
    with RedisServer(extra_args=["--requirepass", "pw"]) as server:
        url = f"redis://:pw@127.0.0.1:{server.port}/3"
        queue: Queue[object] = Queue(queue_name, url)
        stop = asyncio.Event()
        errors: list[str] = []
        tasks = [
            asyncio.create_task(_producer(queue, n, stop, errors)) for n in range(PRODUCERS)
        ]
        try:
            for _ in range(RESTARTS if fault == "restart" else KILLS):
                await asyncio.sleep(0.3 if fault == "restart" else 0.05)
                if fault == "restart":
                    await asyncio.to_thread(server.restart)
                else:
                    await _drop_clients(server)
            await asyncio.sleep(0.5)
        finally:
            stop.set()
            added = sum(await asyncio.gather(*tasks))
            await queue.close()
        db0 = aioredis.Redis(port=server.port, password="pw", db=0)
        db3 = aioredis.Redis(port=server.port, password="pw", db=3)
        try:
            stray = [k.decode() for k in await db0.keys("*")]
            in_db3 = await db3.dbsize()
        finally:
            await db0.aclose()
            await db3.aclose()
    assert added > 0
    assert in_db3 > 0, "nothing reached db 3 after the last restart"
    assert stray == [], f"{len(stray)} keys landed in db 0, e.g. {stray[:5]}"
    assert errors == [], f"{len(errors)} error replies, e.g. {errors[:3]}"
