"""Split brain on Sentinel, measured: acknowledged jobs that vanish, with and without Durability.

Issue 30: after a double failover the first promoted server stayed a master for
11 s and every pyqueue connection kept writing to it; 2,747 and 3,089
acknowledged, executed job records were discarded at the resync. Now every
process follows ``+switch-master`` (``pyqueue._protocol.sentinel_watch``) and
leaves an abandoned master at once; with ``Durability`` an add to a master that
lost its replicas raises instead of being acknowledged.

``follow=False`` turns the following off (the behaviour before) to measure what
it saves. What is asserted: with ``Durability(replicas=1)`` nothing acknowledged
vanishes; nothing acknowledged is stuck; the rest is printed
(``./scripts/test tests/scale/test_split_brain.py -s``) and published in
``docs/reliability.md``.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator

import pytest
import redis
from redis.exceptions import ResponseError
from tests.scale.servers import SentinelDeployment
from tests.scale.split_brain import (
    PartitionableSentinel,
    SplitFigures,
    role_of,
    run_split_brain,
    wait_for,
)

from pyqueue import Durability
from pyqueue._protocol import sentinel_watch

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

HOLD_S = 2.0
"""Seconds the partition lasts once a replica was promoted (two masters take writes)."""

HEADER = (
    "| fault, client | acked | vanished | of those never ran | stuck | run twice | "
    "adds refused (retried) | fault (s) | acked adds/s |"
)


# (follow +switch-master, Durability(1)): the behaviour before (not following) is
# measured without Durability only, where following is what makes the difference.
CASES = [
    pytest.param(True, False, id="follow-plain"),
    pytest.param(False, False, id="no-follow-plain"),
    pytest.param(True, True, id="follow-durability"),
]


@contextlib.contextmanager
def _following(follow: bool) -> Iterator[None]:
    previous = sentinel_watch.ENABLED
    sentinel_watch.ENABLED = follow
    try:
        yield
    finally:
        sentinel_watch.ENABLED = previous


def _report(label: str, figures: SplitFigures) -> None:
    print(f"\n{HEADER}\n{figures.row(label)}")


def _failover(sentinel_port: int, service: str) -> None:
    with redis.Redis(port=sentinel_port) as sentinel:
        def accepted() -> bool:
            try:
                return bool(sentinel.sentinel_failover(service))
            except ResponseError as exc:  # INPROG, NOGOODSLAVE: the last one is settling
                if "INPROG" in str(exc) or "NOGOODSLAVE" in str(exc):
                    return False
                raise
        wait_for(accepted, "Sentinel did not accept the failover", 30)


def double_failover(deployment: SentinelDeployment) -> None:
    """Fail over, then fail over again while the first promoted server is still master."""
    service, sentinel = deployment.SERVICE, deployment.sentinels[0].port
    first = deployment.current_master_port()
    _failover(sentinel, service)
    wait_for(lambda: deployment.current_master_port() != first, "first failover", 30)
    promoted = deployment.current_master_port()
    # Sentinel needs the old master back as a replica of the promoted one to pick it.
    wait_for(lambda: role_of(first) == ("slave", promoted), "old master rejoined", 40)
    _failover(sentinel, service)
    wait_for(lambda: deployment.current_master_port() == first, "second failover", 30)
    # The first promoted server is still a master for a while: the split brain.
    wait_for(lambda: role_of(promoted)[0] == "slave", "first promoted demoted", 40)


def partition(deployment: PartitionableSentinel) -> None:
    """Cut the master from Sentinels and replicas (clients keep it) until a replica is
    promoted and has served a while; then heal, and wait until one master is left."""
    proxy = deployment.proxy
    assert proxy is not None
    old_port, proxy_port = deployment.master.port, deployment.master_port()
    proxy.call(proxy.partition, {deployment.CUT})
    wait_for(lambda: deployment.master_port() != proxy_port, "Sentinel promoted a replica", 40)
    new = deployment.master_port()
    time.sleep(HOLD_S)  # the two masters both take writes meanwhile
    proxy.call(proxy.heal)

    def settled() -> bool:
        # Usually the old master rejoins as the new one's replica; a Sentinel may also
        # fail back to it (it is reachable again), and the new one becomes its replica.
        return role_of(old_port) == ("slave", new) or (
            role_of(new) == ("slave", old_port) and role_of(old_port)[0] == "master"
        )
    try:
        wait_for(settled, "one master left after the partition healed", 40)
    except TimeoutError as exc:
        raise TimeoutError(
            f"{exc}: old master {role_of(old_port)}, Sentinel names "
            f"{deployment.master_port()}, promoted {new} is {role_of(new)}"
        ) from None


@pytest.mark.parametrize(("follow", "durable"), CASES)
async def test_double_failover(follow: bool, durable: bool) -> None:
    with _following(follow), SentinelDeployment(replicas=1) as deployment:
        kwargs = {"durability": Durability(replicas=1, timeout_ms=200)} if durable else None
        figures = await run_split_brain(
            deployment.url(), f"sb-{uuid.uuid4().hex[:8]}", lambda: double_failover(deployment),
            queue_kwargs=kwargs,
        )
    _report(f"double failover, {'Durability(1)' if durable else 'plain'}, "
            f"{'following' if follow else 'not following'} +switch-master", figures)
    assert figures.stuck == 0
    if durable:
        assert figures.vanished == 0


@pytest.mark.parametrize(("follow", "durable"), CASES)
async def test_partitioned_master(follow: bool, durable: bool) -> None:
    deployment = PartitionableSentinel(replicas=1)
    try:
        await deployment.start()
        kwargs = {"durability": Durability(replicas=1, timeout_ms=200)} if durable else None
        with _following(follow):
            figures = await run_split_brain(
                deployment.url(), f"sb-{uuid.uuid4().hex[:8]}", lambda: partition(deployment),
                queue_kwargs=kwargs,
            )
    finally:
        await deployment.close()
    _report(f"partition, {'Durability(1)' if durable else 'plain'}, "
            f"{'following' if follow else 'not following'} +switch-master", figures)
    assert figures.stuck == 0
    if durable:
        assert figures.vanished == 0


async def test_partitioned_master_with_min_replicas_to_write() -> None:
    """Sentinel's advice against split brain: a master without a replica that answered
    within ``min-replicas-max-lag`` seconds refuses writes (NOREPLICAS, which pyqueue
    raises as TransientServerError). It bounds the loss without Durability."""
    deployment = PartitionableSentinel(
        replicas=1, extra_args=["--min-replicas-to-write", "1", "--min-replicas-max-lag", "1"]
    )
    try:
        await deployment.start()
        figures = await run_split_brain(
            deployment.url(), f"sb-{uuid.uuid4().hex[:8]}", lambda: partition(deployment)
        )
    finally:
        await deployment.close()
    _report("partition, plain, min-replicas-to-write 1 (max-lag 1 s), following", figures)
    assert figures.stuck == 0
