"""Failover chaos: a master SIGKILLed under load, on Cluster and on Sentinel.

The figures (see ``failover.py``) are printed as rows of the table in
``docs/reliability.md``; run ``./scripts/test tests/scale/test_failover.py -s``
to reproduce them. What is asserted is what must always hold: processing and
adding resume by themselves, no job is left stuck, and the outage is not
spent spinning. Lost jobs are reported, not asserted away: with asynchronous
replication a master can die with writes its replica never received.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from redis.exceptions import RedisError
from tests.scale.failover import OPTIONS, Figures, run_failover, until
from tests.scale.servers import Cluster, SentinelDeployment

from pyqueue import Queue, Worker

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

HEADER = (
    "| deployment | acked adds | lost | stuck | run twice | resume processing (s) | "
    "resume adding (s) | CPU during outage |"
)


def _check(figures: Figures, label: str) -> None:
    print(f"\n{HEADER}\n{figures.row(label)}\nerror events: {figures.errors}")
    assert figures.acked == figures.jobs
    assert figures.stuck == 0
    assert figures.cpu_share < 0.8


async def test_cluster_master_killed_under_load() -> None:
    with Cluster(node_timeout_ms=1000) as cluster:
        tag = "{failover}"
        master = cluster.master_of(f"{tag}:jobs:id")
        figures = await run_failover(
            cluster.url, tag, "jobs", lambda: master.stop(kill=True)
        )
    _check(figures, "Cluster 3+3, node-timeout 1 s")


async def test_sentinel_master_killed_under_load() -> None:
    with SentinelDeployment() as deployment:
        figures = await run_failover(
            deployment.url(), "bull", "jobs", lambda: deployment.master.stop(kill=True)
        )
    _check(figures, "Sentinel 1+1, down-after 1 s")


async def test_cluster_idle_worker_blocked_in_blmove_resumes_after_failover() -> None:
    """The case of the BullMQ reports: the worker sits in BLMOVE on the slot's
    master when it dies; once a replica took over, a new job is processed."""
    with Cluster(node_timeout_ms=1000) as cluster:
        tag = "{blocked}"
        queue: Queue[Any] = Queue("idle", cluster.url, prefix=tag)
        done: list[str] = []
        worker = Worker(queue, lambda job: done.append(job.id), options=OPTIONS)
        await worker.start()
        try:
            await queue.add({"n": 1})
            await until(lambda: len(done) == 1, 10)
            await asyncio.sleep(0.5)  # now blocked in BLMOVE
            master = cluster.master_of(f"{tag}:idle:id")
            cpu0, t0 = time.process_time(), time.monotonic()
            master.stop(kill=True)
            for _ in range(300):  # the producer retries until the new master answers
                try:
                    await queue.add({"n": 2})
                    break
                except (RedisError, OSError):
                    await asyncio.sleep(0.1)
            await until(lambda: len(done) == 2, 30)
            resumed = time.monotonic() - t0
            cpu = (time.process_time() - cpu0) / resumed
            assert cluster.master_of(f"{tag}:idle:id").port != master.port
        finally:
            await worker.close()
            await queue.close()
    print(f"\ncluster blocked-worker failover: resumed {resumed:.1f}s after the kill, "
          f"cpu {cpu:.0%} of one core")
    assert cpu < 0.5

