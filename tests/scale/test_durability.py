"""``Durability``: WAIT for replicas after adds and finishes.

The failover pair shows why it exists: replicas that fall behind (frozen with
SIGSTOP here and their links cut, as a stalled VM or a partition would) get none
of the master's writes; when the master then dies, every add it acknowledged in
the meantime is gone. With ``Durability(replicas=1)`` those adds raise instead of
being acknowledged, the producers retry them, and none is lost.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest
import redis
from tests.scale.failover import Figures, run_failover
from tests.scale.servers import SentinelDeployment

from pyqueue import BulkJob, Durability, JobOptions, Queue, ReplicationError
from pyqueue.embedded import RedisServer
from pyqueue.errors import InvalidOptionsError

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def _pid(server: RedisServer) -> int:
    proc = server._proc  # the test freezes the process itself
    assert proc is not None
    return proc.pid


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"replicas": 0}, "durability.replicas"),
    ({"timeout_ms": 0}, "durability.timeout_ms"),
    ({"after_finish": "yes"}, "durability.after_finish"),
])
def test_bad_durability_is_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidOptionsError, match=message):
        Durability(**kwargs)


def test_durability_must_be_a_durability(redis_url: str) -> None:
    with pytest.raises(InvalidOptionsError, match="durability"):
        Queue("q", redis_url, durability=1)  # type: ignore[arg-type]


async def test_add_without_enough_replicas_raises(redis_url: str, queue_name: str) -> None:
    queue: Queue[Any] = Queue(queue_name, redis_url, durability=Durability(timeout_ms=50))
    try:
        with pytest.raises(ReplicationError, match="0 of 1 replicas") as caught:
            await queue.add({"x": 1}, job_id="a")
        # The job is on the master; adding it again with its id is safe.
        assert (await queue.get_job("a")) is not None
    finally:
        await queue.close()
    assert caught.value.confirmed == 0
    assert caught.value.required == 1


async def test_add_confirmed_by_a_replica_and_refused_when_it_lags(queue_name: str) -> None:
    with SentinelDeployment() as deployment:
        queue: Queue[Any] = Queue(
            queue_name, deployment.url(), durability=Durability(replicas=1, timeout_ms=300)
        )
        try:
            job = await queue.add({"x": 1})
            with redis.Redis(port=deployment.replicas[0].port) as replica:
                assert replica.exists(f"bull:{queue_name}:{job.id}")
            os.kill(_pid(deployment.replicas[0]), signal.SIGSTOP)
            try:
                started = time.monotonic()
                with pytest.raises(ReplicationError):
                    await queue.add({"x": 2})
                assert time.monotonic() - started >= 0.25
            finally:
                os.kill(_pid(deployment.replicas[0]), signal.SIGCONT)
        finally:
            await queue.close()


async def test_a_retried_add_is_not_acknowledged_while_the_replica_lags(queue_name: str) -> None:
    """The add that raised ReplicationError wrote the job on the master; adding it
    again with its id finds it there. That second add must wait for the replica too:
    acknowledging it at once would acknowledge a job only the master holds (the split
    brain test lost 20 of 1,500 jobs this way)."""
    with SentinelDeployment() as deployment:
        durable = Durability(replicas=1, timeout_ms=300)
        queue: Queue[Any] = Queue(queue_name, deployment.url(), durability=durable)
        try:
            await queue.add({"x": 0}, job_id="warm")  # this connection's last write is confirmed
            os.kill(_pid(deployment.replicas[0]), signal.SIGSTOP)
            try:
                with pytest.raises(ReplicationError):
                    await queue.add({"x": 1}, job_id="a")
                with pytest.raises(ReplicationError):
                    await queue.add({"x": 1}, job_id="a")
                with pytest.raises(ReplicationError):
                    await queue.add_bulk([BulkJob({"x": 1}, options=JobOptions(job_id="a"))])
            finally:
                os.kill(_pid(deployment.replicas[0]), signal.SIGCONT)
            job = await queue.add({"x": 1}, job_id="a")  # the replica caught up: confirmed
            assert not job.created
        finally:
            await queue.close()


def _lagging_failover(deployment: SentinelDeployment) -> float:
    """Both replicas fall behind, then the master dies; one replica is promoted
    and the other follows it, so ``WAIT 1`` can be satisfied again afterwards."""
    pids = [_pid(r) for r in deployment.replicas]
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    # Cut the link too: bytes already sent would wait in the frozen replica's
    # socket buffer and reach it after all, hiding the loss.
    with redis.Redis(port=deployment.master.port) as master:
        master.client_kill_filter(_type="replica")
    time.sleep(1.0)  # adds go on meanwhile; the replica gets none of them
    deployment.master.stop(kill=True)
    died = time.monotonic()
    for pid in pids:
        os.kill(pid, signal.SIGCONT)
    return died


HEADER = (
    "| deployment | acked adds | lost | stuck | run twice | resume processing (s) | "
    "resume adding (s) | CPU during outage |"
)


async def _figures(durability: Durability | None) -> Figures:
    # Enough jobs that adds go on well past the kill (200 acked + the 1 s freeze):
    # with 1,000 a fast machine acked them all before it, and with nothing added
    # after the failover, processing had nothing to resume with.
    with SentinelDeployment(replicas=2) as deployment:
        return await run_failover(
            deployment.url(), "bull", "jobs", lambda: _lagging_failover(deployment),
            jobs=3000, handler_ms=40, kill_after_acked=200,
            queue_kwargs={"durability": durability} if durability else None,
        )


async def test_lagging_replica_failover_loses_acked_adds_without_durability() -> None:
    figures = await _figures(None)
    print(f"\n{HEADER}\n{figures.row('Sentinel, replicas frozen 1 s, no durability')}")
    assert figures.stuck == 0
    # The caveat, measured: what the master acknowledged alone died with it.
    assert figures.lost > 0


async def test_lagging_replica_failover_loses_nothing_with_durability() -> None:
    figures = await _figures(Durability(replicas=1, timeout_ms=200))
    print(f"\n{HEADER}\n{figures.row('Sentinel, replicas frozen 1 s, Durability(1)')}")
    assert figures.stuck == 0
    assert figures.lost == 0


async def test_wait_or_waitaof_on_this_server(queue_name: str) -> None:
    """On Redis < 7.2 (this machine's 7.0) ``aof=True`` is refused and auto uses WAIT;
    on >= 7.2 with AOF both use WAITAOF. No replica is attached, so nothing confirms."""
    with RedisServer(appendonly=True) as server:
        with redis.Redis(port=server.port) as c:
            version = str(c.info("server")["redis_version"])
        waitaof = tuple(int(p) for p in version.split(".")[:2]) >= (7, 2)
        auto: Queue[Any] = Queue(queue_name, server.url, durability=Durability(timeout_ms=50))
        required: Queue[Any] = Queue(
            queue_name, server.url, durability=Durability(timeout_ms=50, aof=True)
        )
        try:
            with pytest.raises(ReplicationError) as caught:
                await auto.add({"x": 1})
            assert ("WAITAOF" in str(caught.value)) is waitaof, str(caught.value)
            if waitaof:
                with pytest.raises(ReplicationError, match="WAITAOF"):
                    await required.add({"x": 2})
            else:
                with pytest.raises(InvalidOptionsError, match=f"server is {version}"):
                    await required.add({"x": 2})
        finally:
            await auto.close()
            await required.close()
