"""``Durability`` with WAITAOF against a real server: fsynced on the master and a replica.

On Redis >= 7.2 (and Valkey, which reports redis_version 7.2.4) with AOF on, an add
is acknowledged only once ``WAITAOF 1 1`` confirms it; the server's own command
statistics show the WAITAOF calls. On older servers ``aof=True`` is refused with
a message naming the version, and auto mode sends WAIT. ``scripts/server-matrix``
runs this module on each server of the matrix.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import pytest
import redis

from pyqueue import Durability, Queue, ReplicationError
from pyqueue.embedded import RedisServer
from pyqueue.errors import InvalidOptionsError

pytestmark = pytest.mark.timeout(60)


def _version(port: int) -> tuple[int, int]:
    with redis.Redis(port=port) as client:
        text = str(client.info("server")["redis_version"])
    major, minor = text.split(".")[:2]
    return int(major), int(minor)


def _calls(port: int, command: str) -> int:
    with redis.Redis(port=port) as client:
        stats = client.info("commandstats").get(f"cmdstat_{command}")
    return int(stats["calls"]) if stats else 0


@contextlib.contextmanager
def _pair(replica_aof: bool) -> Any:
    with RedisServer(appendonly=True) as master, RedisServer(appendonly=replica_aof) as replica:
        with redis.Redis(port=replica.port) as client:
            client.execute_command("REPLICAOF", "127.0.0.1", master.port)
            deadline = time.monotonic() + 20
            while client.info("replication").get("master_link_status") != "up":
                assert time.monotonic() < deadline, "the replica did not sync"
                time.sleep(0.05)
        yield master, replica


async def test_waitaof_confirms_an_add_fsynced_on_master_and_replica(queue_name: str) -> None:
    with _pair(replica_aof=True) as (master, _):
        supported = _version(master.port) >= (7, 2)
        durable = Durability(replicas=1, timeout_ms=5000, aof=True)
        async with Queue(queue_name, master.url, durability=durable) as queue:
            if not supported:
                with pytest.raises(InvalidOptionsError, match=r"WAITAOF needs Redis >= 7\.2"):
                    await queue.add({"n": 1}, job_id="a")
                return
            before = _calls(master.port, "waitaof")
            job = await queue.add({"n": 1}, job_id="a")
            assert job.id == "a"
            await queue.add({"n": 2}, job_id="b")
            assert _calls(master.port, "waitaof") - before == 2
            # Auto mode picks WAITAOF too on this server with AOF on.
        async with Queue(queue_name, master.url, durability=Durability(timeout_ms=5000)) as auto:
            before = _calls(master.port, "waitaof")
            await auto.add({"n": 3}, job_id="c")
            assert _calls(master.port, "waitaof") - before == 1


async def test_waitaof_refuses_when_the_replica_has_no_aof(queue_name: str) -> None:
    with _pair(replica_aof=False) as (master, _):
        if _version(master.port) < (7, 2):
            durable = Durability(replicas=1, timeout_ms=2000)
            async with Queue(queue_name, master.url, durability=durable) as queue:
                await queue.add({"n": 1})  # WAIT: the replica received it
                assert _calls(master.port, "waitaof") == 0
            return
        durable = Durability(replicas=1, timeout_ms=300, aof=True)
        async with Queue(queue_name, master.url, durability=durable) as queue:
            with pytest.raises(ReplicationError, match="fsynced to their AOF"):
                await queue.add({"n": 1})
