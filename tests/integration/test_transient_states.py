"""Transient server states are transient: one exception class for producers, retried by workers.

Issue 30: after a restart with a large dataset, ``Queue.add`` raised
``ResponseError('LOADING Redis is loading the dataset in memory')`` 140 times in
7.7 s, although ``docs/reliability.md`` tells producers to retry on
``ConnectionError``/``TimeoutError``; workers saw both ``BusyLoadingError`` and a
plain ``ResponseError: LOADING``. Now every such reply (LOADING, BUSY, READONLY,
MASTERDOWN, TRYAGAIN, CLUSTERDOWN, NOREPLICAS) raises
:class:`pyqueue.TransientServerError`, a ``redis.exceptions.ConnectionError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import redis.exceptions
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff

from pyqueue import Queue, TransientServerError, Worker, WorkerOptions
from pyqueue.embedded import RedisServer, find_redis_server

_KEYS = 20_000
_VALUE = "x" * 2000  # 40 MB: Redis 6.2 answers LOADING only every 2 MB it loads


def _loader_args() -> list[str]:
    # key-load-delay (a testing knob of Redis >= 6) slows loading per key (us); to
    # answer LOADING the loader must process events, every 2 MB by default, every
    # 1 KiB with the option Redis 7 added (6.2 refuses the option).
    args = ["--key-load-delay", "200", "--rdbcompression", "no"]
    version = subprocess.run([find_redis_server(), "--version"], capture_output=True,
                             text=True, check=True).stdout
    if int(version.split("v=", 1)[1].split(".")[0]) >= 7:
        args += ["--loading-process-events-interval-bytes", "1024"]
    return args


@contextlib.contextmanager
def _loading_server() -> Iterator[RedisServer]:
    """A server that takes seconds to load its RDB after a restart, answering LOADING."""
    server = RedisServer(extra_args=_loader_args())
    with server:
        with redis.Redis(port=server.port) as client:
            client.eval(
                "for i = 1, tonumber(ARGV[1]) do redis.call('SET', 'filler:' .. i, ARGV[2]) end",
                0, _KEYS, _VALUE,
            )
            client.save()
        yield server


async def _until_loading(port: int) -> None:
    # No retries: redis-py retries BusyLoadingError (a ConnectionError) by default.
    client = redis.asyncio.Redis(port=port, retry=AsyncRetry(NoBackoff(), 0))
    try:
        for _ in range(400):
            try:
                await client.get("probe")  # not PING: Redis 6.2 answers PING while loading
                await asyncio.sleep(0.02)
            except redis.exceptions.BusyLoadingError:
                return
            except redis.exceptions.ConnectionError:
                await asyncio.sleep(0.02)
    finally:
        await client.aclose()
    raise AssertionError("the restarted server never answered LOADING")


async def _until(check: Callable[[], bool], timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():  # noqa: ASYNC110 - a handler's list, no event to wait on
            await asyncio.sleep(0.02)


async def _add_until_refused(queue: Queue[Any]) -> tuple[str, BaseException]:
    for n in range(500):
        try:
            await queue.add({}, job_id=f"busy-{n}")
        except redis.exceptions.RedisError as exc:
            return f"busy-{n}", exc
        await asyncio.sleep(0.01)
    raise AssertionError("no add was refused while a script ran")


@pytest.mark.timeout(120)
async def test_loading_raises_transient_to_producers_and_workers_retry(queue_name: str) -> None:
    with _loading_server() as server:
        queue: Queue[Any] = Queue(queue_name, server.url)
        done: list[str] = []
        errors: list[BaseException] = []

        async def handler(job: Any) -> None:
            done.append(job.id)

        options = WorkerOptions(stalled_interval=1000, guard_interval=500, drain_delay=1)
        async with queue, Worker(queue, handler, options=options) as worker:
            worker.on("error", errors.append)
            await queue.add({}, job_id="before")
            await _until(lambda: "before" in done)
            server.stop()
            # start() returns once the server is ready, after loading: run it aside.
            starting = asyncio.create_task(asyncio.to_thread(server.start, 60))
            await _until_loading(server.port)
            refused: list[BaseException] = []
            while True:
                try:
                    await queue.add({}, job_id="during")
                    break
                except redis.exceptions.ConnectionError as exc:  # the documented contract
                    refused.append(exc)
                    await asyncio.sleep(0.05)
            await starting
            await _until(lambda: "during" in done)
        assert refused, "no add was refused while the server was loading"
        assert all(isinstance(e, TransientServerError) for e in refused), refused
        assert {e.code for e in refused if isinstance(e, TransientServerError)} == {"LOADING"}
        # Workers saw connection errors only, never a plain ResponseError("LOADING ...").
        plain = [e for e in errors if not isinstance(e, redis.exceptions.ConnectionError)]
        assert not plain, plain


async def test_busy_script_raises_transient_and_the_add_was_not_run(queue_name: str) -> None:
    with RedisServer(extra_args=["--lua-time-limit", "50"]) as server:
        blocker = redis.Redis(port=server.port)
        started = threading.Event()

        def spin() -> None:
            started.set()
            with contextlib.suppress(redis.exceptions.ResponseError):
                blocker.eval("while true do end", 0)

        thread = threading.Thread(target=spin, daemon=True)
        thread.start()
        started.wait()
        queue: Queue[Any] = Queue(queue_name, server.url)
        try:
            tried, refused = await _add_until_refused(queue)
            assert isinstance(refused, TransientServerError)
            assert refused.code == "BUSY"
            assert isinstance(refused, redis.exceptions.ConnectionError)
        finally:
            with redis.Redis(port=server.port) as killer:
                for _ in range(100):
                    try:
                        killer.script_kill()
                        break
                    except redis.exceptions.ResponseError:
                        await asyncio.sleep(0.02)
            thread.join(10)
            blocker.close()
        # Not run: the next add of the same id creates the job.
        assert await queue.get_job(tried) is None
        assert (await queue.add({}, job_id=tried)).id == tried
        await queue.close()


async def test_noreplicas_raises_transient(queue_name: str) -> None:
    with RedisServer(extra_args=["--min-replicas-to-write", "1"]) as server:
        async with Queue(queue_name, server.url) as queue:
            with pytest.raises(TransientServerError) as raised:
                await queue.add({})
        assert raised.value.code == "NOREPLICAS"


async def test_readonly_replica_raises_transient(
    queue_name: str, redis_server: RedisServer
) -> None:
    with RedisServer(extra_args=["--replicaof", "127.0.0.1", str(redis_server.port)]) as replica:
        async with Queue(queue_name, replica.url) as queue:
            with pytest.raises(TransientServerError) as raised:
                await queue.add({})
        assert raised.value.code == "READONLY"
