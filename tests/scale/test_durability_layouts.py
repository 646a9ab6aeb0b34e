"""Which layouts keep ``Durability(replicas=1)`` through a failover; adds on a cluster during one.

Issue 30: on a 3+3 cluster (the layout of the project's own tests) every add with
``Durability(replicas=1)`` raised ``ReplicationError`` after its timeout once a
master had failed over, because the promoted master has no replica; the error
did not say why. And adds blocked for seconds during a failover instead of
raising within the socket timeout.

Layouts (docs/reliability.md, "Durability through a failover"):

- 3 masters x 1 replica: after a failover the promoted master has no replica;
  adds raise a ReplicationError that names the cause, at once (one INFO), until
  a replica is added or migrates to it.
- a spare replica somewhere (``cluster-migration-barrier 1``, Redis's default):
  the spare migrates to the orphaned master and adds are confirmed again.
- 2 replicas per master: the second replica follows the promoted one at once.
- Sentinel, 1 master + 1 replica: after the master dies the promoted replica has
  none (until the old master returns as one): the same named error.
- Sentinel, 1 master + 2 replicas: the other replica follows the promoted one
  (``test_durability.py``'s lagging failover asserts every add is confirmed in the end).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from typing import Any

import pytest
from tests.scale.servers import Cluster, SentinelDeployment

from pyqueue import Durability, Queue, ReplicationError

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

DURABLE = Durability(replicas=1, timeout_ms=300)


def _tag() -> str:
    return f"{{d{uuid.uuid4().hex[:8]}}}"


def _pid(cluster: Cluster, port: int) -> int:
    node = next(n for n in cluster.nodes if n.port == port)
    assert node.pid is not None
    return node.pid


def _master_port(cluster: Cluster, tag: str, asking_not: int) -> int:
    """The slot's master as a node other than ``asking_not`` (frozen: it would hang) says."""
    node = next(n for n in cluster.nodes if n.running and n.port != asking_not)
    with cluster.client(node) as client:
        slot = int(client.execute_command("CLUSTER KEYSLOT", tag))
        for start, end, primary, *_ in client.execute_command("CLUSTER SLOTS"):
            if start <= slot <= end:
                return int(primary[1])
    raise AssertionError(f"no master serves slot {slot}")


async def _failover(cluster: Cluster, tag: str) -> int:
    """Kill the master of ``tag``'s slot; wait until the cluster serves it again."""
    old = cluster.master_of(tag)
    old.stop(kill=True)
    deadline = time.monotonic() + 60
    while True:
        try:
            if cluster.master_of(tag).port != old.port:
                break
        except Exception:  # nodes answer errors while electing
            pass
        if time.monotonic() > deadline:
            raise AssertionError("no replica took over within 60 s")
        await asyncio.sleep(0.1)
    await asyncio.to_thread(cluster.wait_ok, 60)
    return old.port


async def _add_until(queue: Queue[Any], ok: bool, timeout: float = 60) -> BaseException | None:
    """Add until an add is confirmed (``ok``) or until one raises ReplicationError."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    n = 0
    while time.monotonic() < deadline:
        n += 1
        try:
            await queue.add({}, job_id=f"j{n}")
            if ok:
                return None
        except ReplicationError as exc:
            last = exc
            if not ok:
                return exc
        except Exception as exc:  # connection errors while the slot moves
            last = exc
        await asyncio.sleep(0.1)
    raise AssertionError(f"no {'confirmed add' if ok else 'ReplicationError'}: last {last!r}")


async def test_3x1_cluster_after_failover_names_the_cause() -> None:
    with Cluster(masters=3, replicas=1) as cluster:
        tag = _tag()
        async with Queue("q", cluster.url, prefix=tag, durability=DURABLE) as queue:
            await queue.add({}, job_id="before")
            await _failover(cluster, tag)
            raised = await _add_until(queue, ok=False)
    assert raised is not None
    message = str(raised)
    assert "0 connected replica(s)" in message, message
    assert "cluster-migration-barrier" in message, message


async def test_a_spare_replica_migrates_and_durability_holds() -> None:
    # The spare sits with master 0; the tag is made to live on another master.
    with Cluster(masters=3, replicas=1, spare_of=0) as cluster:
        spare_master = cluster.nodes[0].port
        tag = _tag()
        while cluster.master_of(tag).port == spare_master:
            tag = _tag()
        async with Queue("q", cluster.url, prefix=tag, durability=DURABLE) as queue:
            await queue.add({}, job_id="before")
            await _failover(cluster, tag)
            assert await _add_until(queue, ok=True) is None


async def test_two_replicas_per_master_keep_durability() -> None:
    with Cluster(masters=3, replicas=2) as cluster:
        tag = _tag()
        async with Queue("q", cluster.url, prefix=tag, durability=DURABLE) as queue:
            await queue.add({}, job_id="before")
            await _failover(cluster, tag)
            assert await _add_until(queue, ok=True) is None


async def test_adds_to_a_frozen_master_raise_within_the_socket_timeout() -> None:
    """A master that stops answering (SIGSTOP: TCP still accepts) is left for the new one."""
    timeout = 1.0
    with Cluster(masters=3, replicas=1) as cluster:
        tag = _tag()
        url = f"{cluster.url}?socket_timeout={timeout:g}"
        frozen = cluster.master_of(tag)
        async with Queue("q", url, prefix=tag) as queue:
            await queue.add({}, job_id="before")
            os.kill(_pid(cluster, frozen.port), signal.SIGSTOP)
            try:
                longest, n = 0.0, 0
                tried: list[str] = []
                deadline = time.monotonic() + 60
                while True:
                    n += 1
                    started = time.monotonic()
                    try:
                        await queue.add({}, job_id=f"a{n}")
                        break
                    except Exception as exc:  # raised, as it should, while the slot moves
                        tried.append(f"{time.monotonic() - started:.2f} s: {exc!r}"[:200])
                    finally:
                        longest = max(longest, time.monotonic() - started)
                    assert time.monotonic() < deadline, "adds did not move to the new master"
                    await asyncio.sleep(0.05)
                assert _master_port(cluster, tag, asking_not=frozen.port) != frozen.port
            finally:
                os.kill(_pid(cluster, frozen.port), signal.SIGCONT)
        print(f"\nlongest failing add: {longest:.2f} s; attempts until one landed: {n}")
        # Each attempt ends within its socket timeout (plus the watchdog's quarter
        # steps and a CLUSTER SLOTS look-up), never the 30 s default or for ever.
        assert longest < 3 * timeout, tried


async def test_sentinel_1_plus_1_after_failover_names_the_cause() -> None:
    with SentinelDeployment(replicas=1) as deployment:
        async with Queue("q", deployment.url(), durability=DURABLE) as queue:
            await queue.add({}, job_id="before")
            old = deployment.current_master_port()
            deployment.master.stop(kill=True)
            deadline = time.monotonic() + 60
            while deployment.current_master_port() == old:
                assert time.monotonic() < deadline, "Sentinel did not fail over"
                await asyncio.sleep(0.1)
            raised = await _add_until(queue, ok=False)
    assert "0 connected replica(s)" in str(raised), str(raised)
