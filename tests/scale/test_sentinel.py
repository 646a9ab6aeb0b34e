"""pyqueue through Redis Sentinel: real ``redis-server --sentinel`` processes
(three, quorum 2) watching a master with one replica, all on loopback ports."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import redis.asyncio.sentinel as aiosentinel
from tests.scale.failover import until
from tests.scale.servers import SentinelDeployment

from pyqueue import Queue, QueueEvents, Worker, WorkerOptions
from pyqueue.errors import InvalidOptionsError

pytestmark = pytest.mark.slow

FAST = WorkerOptions(
    lock_duration=1000, stalled_interval=500, guard_interval=200, drain_delay=0.2,
    shutdown_grace=2.0,
)


@pytest.fixture(scope="module")
def sentinel() -> Iterator[SentinelDeployment]:
    with SentinelDeployment() as deployment:
        yield deployment


@pytest.mark.parametrize(("url", "message"), [
    ("redis+sentinel://127.0.0.1:26379", "master name"),
    ("redis+sentinel://127.0.0.1:26379/m/x", "database must be a number"),
    ("redis+sentinel://127.0.0.1:26379/m/1/2", "master name"),
    ("redis+sentinel://127.0.0.1/m", "host:port"),
    ("redis+sentinel://127.0.0.1:26379/m?socket_timeout=soon", "number of seconds"),
    ("redis+sentinel://127.0.0.1:26379/m?retry=3", "unknown option 'retry'"),
])
def test_bad_sentinel_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(InvalidOptionsError, match=message):
        Queue("q", url)


async def _run_one(queue: Queue[Any]) -> Any:
    done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    worker = Worker(queue, lambda job: job.data["n"] * 2, options=FAST)
    worker.on("completed", lambda job, result: done.done() or done.set_result(result))
    await worker.start()
    try:
        await queue.add({"n": 21})
        return await asyncio.wait_for(done, 10)
    finally:
        await worker.close()


async def test_sentinel_url_with_db(sentinel: SentinelDeployment, queue_name: str) -> None:
    queue: Queue[Any] = Queue(queue_name, sentinel.url(db=2))
    events = QueueEvents(queue_name, sentinel.url(db=2))
    heard: list[str] = []
    events.on("completed", lambda job_id, *rest: heard.append(job_id))
    await events.start()
    try:
        assert await _run_one(queue) == 42
        deadline = time.monotonic() + 5
        while not heard and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    finally:
        await events.close()
        await queue.close()
    assert heard == ["1"]
    port = sentinel.current_master_port()
    with contextlib.closing(redis.Redis(port=port, db=2)) as c:
        assert c.zcard(f"bull:{queue_name}:completed") == 1
    with contextlib.closing(redis.Redis(port=port, db=0)) as c:
        assert not c.exists(f"bull:{queue_name}:completed")


async def test_sentinel_master_for_client(sentinel: SentinelDeployment, queue_name: str) -> None:
    manager = aiosentinel.Sentinel([("127.0.0.1", s.port) for s in sentinel.sentinels])
    client = manager.master_for(sentinel.SERVICE)
    try:
        queue: Queue[Any] = Queue(queue_name, connection=client)
        try:
            assert await _run_one(queue) == 42
        finally:
            await queue.close()
    finally:
        await client.aclose()
        for s in manager.sentinels:
            await s.aclose()


async def test_sentinel_url_with_password(queue_name: str) -> None:
    with SentinelDeployment(password="pw") as deployment:
        queue: Queue[Any] = Queue(queue_name, deployment.url(db=1))
        try:
            assert await _run_one(queue) == 42
        finally:
            await queue.close()
        with contextlib.closing(deployment.client(deployment.master.port, db=1)) as c:
            assert c.zcard(f"bull:{queue_name}:completed") == 1
        wrong = deployment.url().replace(":pw@", ":nope@")
        queue = Queue(queue_name, wrong)
        try:
            # redis-py's AuthenticationError when the queue's first command is a read
            # on its client (the format probe); the server's WRONGPASS reply otherwise.
            with pytest.raises((redis.ResponseError, redis.AuthenticationError),
                               match=r"WRONGPASS|invalid"):
                await queue.add({"n": 1})
        finally:
            await queue.close()


def test_sentinel_replica_client_is_refused(
    sentinel: SentinelDeployment, queue_name: str
) -> None:
    manager = aiosentinel.Sentinel([("127.0.0.1", s.port) for s in sentinel.sentinels])
    with pytest.raises(InvalidOptionsError, match="replica"):
        Queue(queue_name, connection=manager.slave_for(sentinel.SERVICE))


async def test_idle_worker_blocked_in_blmove_resumes_after_failover(queue_name: str) -> None:
    """The worker waits in BLMOVE on the master when it dies; after Sentinel
    promotes the replica, a new job is processed without anyone's help."""
    with SentinelDeployment() as deployment:
        url = deployment.url()
        queue: Queue[Any] = Queue(queue_name, url)
        done: list[str] = []
        errors: list[BaseException] = []
        worker = Worker(queue, lambda job: done.append(job.id), options=FAST)
        worker.on("error", errors.append)
        await worker.start()
        try:
            await queue.add({"n": 1})
            await until(lambda: len(done) == 1, 10)
            await asyncio.sleep(0.5)  # the worker is now blocked in BLMOVE
            old = deployment.master
            cpu0, t0 = time.process_time(), time.monotonic()
            old.stop(kill=True)
            await until(lambda: deployment.current_master_port() != old.port, 30)
            added_at = None
            for _ in range(200):  # the producer retries until the new master answers
                try:
                    await queue.add({"n": 2})
                    added_at = time.monotonic()
                    break
                except redis.ConnectionError:
                    await asyncio.sleep(0.1)
            assert added_at is not None
            await until(lambda: len(done) == 2, 30)
            cpu = (time.process_time() - cpu0) / (time.monotonic() - t0)
        finally:
            await worker.close()
            await queue.close()
    print(f"\nsentinel blocked-worker failover: resumed {time.monotonic() - t0:.1f}s after "
          f"the kill, cpu {cpu:.0%} of one core, {len(errors)} error events")
    # A spinning reconnect loop would hold a core; waiting costs next to nothing.
    assert cpu < 0.5





async def test_manual_failover_moves_every_connection_to_the_new_master(queue_name: str) -> None:
    """SENTINEL FAILOVER demotes a live master: connections still open to it get
    READONLY for writes and must reconnect to the promoted replica by themselves."""
    with SentinelDeployment() as deployment:
        queue: Queue[Any] = Queue(queue_name, deployment.url())
        done: list[str] = []
        worker = Worker(queue, lambda job: done.append(job.id), options=FAST)
        await worker.start()
        try:
            await queue.add({"n": 1})
            await until(lambda: len(done) == 1, 10)
            old = deployment.current_master_port()
            with contextlib.closing(redis.Redis(port=deployment.sentinels[0].port)) as s:
                s.execute_command("SENTINEL", "FAILOVER", deployment.SERVICE)
            await until(lambda: deployment.current_master_port() != old, 30)
            new = deployment.current_master_port()
            # Until Sentinel turns the old master into a replica (its next INFO
            # poll), it still accepts writes: see docs/reliability.md, known limits.
            await until(lambda: _role(old) == "slave", 30)
            for _ in range(100):
                try:
                    job = await queue.add({"n": 2})
                    break
                except redis.ConnectionError:
                    await asyncio.sleep(0.1)
            await until(lambda: len(done) == 2, 30)
            for _ in range(100):  # the handler ran; its finishing write follows
                if (await queue.get_job_counts())["completed"] == 2:
                    break
                await asyncio.sleep(0.05)
        finally:
            await worker.close()
            await queue.close()
        with contextlib.closing(redis.Redis(port=new)) as c:
            assert c.zscore(f"bull:{queue_name}:completed", job.id) is not None
        assert done == ["1", job.id]


def _role(port: int) -> str:
    with contextlib.closing(redis.Redis(port=port, socket_timeout=2)) as c:
        return str(c.info("replication")["role"])


async def test_cli_through_sentinel(sentinel: SentinelDeployment, queue_name: str) -> None:
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    prefix = f"cli-{queue_name}"  # alone under its prefix, whatever else the db holds
    async with Queue(queue_name, sentinel.url(3), prefix=prefix) as queue:
        await queue.add({"n": 1})
    done = await asyncio.to_thread(
        subprocess.run,
        [str(Path(sys.executable).parent / "pyqueue"), "queues", "--json", "--prefix", prefix],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "REDIS_URL": sentinel.url(3)},
    )
    assert done.returncode == 0, done.stderr
    listed = {q["name"]: q["counts"]["waiting"] for q in json.loads(done.stdout)}
    assert listed == {queue_name: 1}
