"""Issue 11 item 9: ``Queue(connection=client)`` with clients that are not plain TCP.

Every connection a queue and its worker open (script calls, blocking fetch,
pub/sub, the lock renewal thread) must go where the given client goes. Each
test runs a job end to end and then asks the server which clients it saw.
(Sentinel clients are covered in ``tests/scale/test_sentinel.py``.)
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.credentials import UsernamePasswordCredentialProvider

from pyqueue import Queue, Worker, WorkerOptions
from pyqueue.embedded import RedisServer
from pyqueue.errors import InvalidOptionsError

FAST = WorkerOptions(lock_duration=1000, stalled_interval=500, drain_delay=0.2)


async def _round_trip(client: aioredis.Redis, name: str) -> tuple[Any, Queue[Any]]:
    queue: Queue[Any] = Queue(name, connection=client)
    done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    async def handler(job: Any) -> int:
        await asyncio.sleep(0.05)  # long enough for a lock renewal to be attempted
        return int(job.data["n"]) * 2

    worker = Worker(queue, handler, options=FAST)
    worker.on("completed", lambda job, result: done.done() or done.set_result(result))
    await worker.start()
    try:
        await queue.add({"n": 21})
        result = await asyncio.wait_for(done, 10)
        counts = await queue.get_job_counts()
    finally:
        await worker.close()
    assert counts["completed"] == 1
    return result, queue


async def test_unix_socket_client_keeps_every_connection_on_the_socket(queue_name: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "redis.sock")
        extra = ["--unixsocket", path, "--unixsocketperm", "700"]
        with RedisServer(extra_args=extra) as server:
            client = aioredis.Redis(unix_socket_path=path)
            watcher = aioredis.Redis(unix_socket_path=path, client_name="watcher")
            try:
                # Client names tell the worker's connections from ours.
                result, queue = await _round_trip(client, queue_name)
                clients = await watcher.client_list()
                await queue.close()
            finally:
                await client.aclose()
                await watcher.aclose()
            del server
    assert result == 42
    tcp = [c for c in clients if not c["addr"].startswith("/") and c.get("name") != "watcher"]
    # Redis reports unix-socket clients with the socket path as their address.
    assert tcp == [], f"connections not on the unix socket: {[c['addr'] for c in tcp]}"


async def test_credential_provider_client_authenticates_every_connection(
    queue_name: str,
) -> None:
    with RedisServer(extra_args=["--requirepass", "s3cret"]) as server:
        provider = UsernamePasswordCredentialProvider(password="s3cret")
        client = aioredis.Redis(port=server.port, credential_provider=provider)
        try:
            result, queue = await _round_trip(client, queue_name)
            await queue.close()
        finally:
            await client.aclose()
    assert result == 42


class _CustomConnection(aioredis.Connection):
    pass


def test_unknown_connection_class_is_refused_by_name(queue_name: str) -> None:
    pool = aioredis.ConnectionPool(connection_class=_CustomConnection, port=1)
    client = aioredis.Redis.from_pool(pool)
    with pytest.raises(InvalidOptionsError, match="_CustomConnection"):
        Queue(queue_name, connection=client)


def test_non_client_is_refused(queue_name: str) -> None:
    with pytest.raises(InvalidOptionsError, match=r"expected a redis\.asyncio\.Redis"):
        Queue(queue_name, connection=object())  # type: ignore[arg-type]
