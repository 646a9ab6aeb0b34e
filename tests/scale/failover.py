"""Kill a master under load and count what it cost.

Producers add jobs with their own ids (a retried add is idempotent) and count a
job as *acknowledged* only once ``add`` returned. Workers (separate queues,
separate connections) log every execution. One master is SIGKILLed when a third
of the jobs are done; the deployment promotes a replica by itself. Then:

- lost: acknowledged, but gone from Redis (the write had not reached the
  replica, the honest cost of asynchronous replication);
- stuck: still in Redis but never processed (a silent stall: must be 0);
- run twice: jobs whose handler started more than once (in flight when the
  master died, or finished on the old master without that reaching the replica);
- resume: seconds from the kill to the first job completed after it, and to the
  first add acknowledged after it (replies read in the first 100 ms were sent
  before the kill and do not count);
- cpu: this process's CPU time over the outage (kill to resume), as a share of
  one core; a reconnect loop that spins would show up as ~100%.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from redis.exceptions import RedisError

from pyqueue import Queue, ReplicationError, Worker, WorkerOptions

OPTIONS = WorkerOptions(
    lock_duration=2000, stalled_interval=1000, guard_interval=500, drain_delay=0.5,
    shutdown_grace=2.0, concurrency=5,
)


_IN_FLIGHT = 0.1


@dataclass
class Figures:
    jobs: int
    acked: int
    lost: int
    stuck: int
    run_twice: int
    resume_processing_s: float
    resume_adding_s: float
    cpu_share: float
    errors: int
    error_kinds: str = ""

    def row(self, label: str) -> str:
        return (
            f"| {label} | {self.acked} | {self.lost} | {self.stuck} | {self.run_twice} | "
            f"{self.resume_processing_s:.1f} | {self.resume_adding_s:.1f} | "
            f"{self.cpu_share:.0%} |"
        )


async def run_failover(
    url: str,
    prefix: str,
    name: str,
    kill: Callable[[], float | None],
    *,
    jobs: int = 1200,
    handler_ms: float = 5,
    kill_after_acked: int | None = None,
    producers: int = 2,
    workers: int = 2,
    queue_kwargs: dict[str, Any] | None = None,
) -> Figures:
    runs: Counter[str] = Counter()
    finished_at: dict[str, float] = {}
    acked: list[str] = []
    errors: list[BaseException] = []
    killed_at: list[float] = []
    acked_at: list[float] = []

    async def handler(job: Any) -> None:
        runs[job.id] += 1
        await asyncio.sleep(handler_ms / 1000)

    def completed(job: Any, result: Any) -> None:
        finished_at.setdefault(job.id, time.monotonic())

    queues = [
        Queue(name, url, prefix=prefix, **(queue_kwargs or {})) for _ in range(producers)
    ]
    fleet = await _start_workers(url, prefix, name, workers, handler, completed, errors)

    async def produce(p: int, queue: Queue[Any]) -> None:
        for n in range(jobs // producers):
            job_id = f"p{p}-{n}"
            while True:
                try:
                    await queue.add({"n": n}, job_id=job_id)
                    break
                except (RedisError, OSError, ReplicationError):
                    # Not acknowledged: the producer tries again, as an app would.
                    await asyncio.sleep(0.05)
            acked.append(job_id)
            acked_at.append(time.monotonic())
            await asyncio.sleep(0.002)

    tasks = [asyncio.create_task(produce(p, q)) for p, q in enumerate(queues)]
    try:
        # Polling: the trigger is a count, there is no event to wait on.
        while (  # noqa: ASYNC110
            len(finished_at) < jobs // 3 if kill_after_acked is None
            else len(acked) < kill_after_acked
        ):
            await asyncio.sleep(0.01)
        cpu0 = time.process_time()
        killed_at.append(time.monotonic())
        # ``kill`` may do more first (freeze a replica); it returns when the master died.
        died = await asyncio.to_thread(kill)
        if died is not None:
            killed_at[0] = died
        # A reply read within 100 ms of the SIGKILL was sent before it: not a resumption.
        after = killed_at[0] + _IN_FLIGHT
        while not any(t > after for t in finished_at.values()):
            if time.monotonic() - killed_at[0] > 60:
                raise AssertionError("processing did not resume within 60 s of the kill")
            await asyncio.sleep(0.01)
        resumed = min(t for t in finished_at.values() if t > after)
        cpu = (time.process_time() - cpu0) / max(resumed - killed_at[0], 0.1)
        await asyncio.gather(*tasks)
        missing, present = await _unprocessed(queues[0], acked, runs, finished_at)
    finally:
        for worker in fleet:
            await worker.close()
            await worker.queue.close()
        for queue in queues:
            await queue.close()
    return Figures(
        jobs=jobs,
        acked=len(acked),
        lost=len(missing) - len(present),
        stuck=len(present),
        run_twice=sum(1 for n in runs.values() if n > 1),
        resume_processing_s=resumed - killed_at[0],
        resume_adding_s=min(
            (t for t in acked_at if t > killed_at[0] + _IN_FLIGHT), default=float("nan")
        ) - killed_at[0],
        cpu_share=cpu,
        errors=len(errors),
        error_kinds=", ".join(
            f"{kind} x{n}" for kind, n in Counter(
                f"{type(e).__name__}: {str(e)[:60]}" for e in errors
            ).most_common(4)
        ),
    )


async def _start_workers(
    url: str, prefix: str, name: str, count: int, handler: Any,
    completed: Callable[[Any, Any], None], errors: list[BaseException],
) -> list[Worker]:
    fleet = []
    for _ in range(count):
        worker = Worker(Queue(name, url, prefix=prefix), handler, options=OPTIONS)
        worker.on("completed", completed)
        worker.on("error", errors.append)
        fleet.append(worker)
    for worker in fleet:
        await worker.start()
    return fleet


async def _unprocessed(
    queue: Queue[Any], acked: list[str], runs: Counter[str], finished_at: dict[str, float]
) -> tuple[list[str], list[str]]:
    """Acked jobs that never ran, and those of them still in Redis (stuck)."""
    # Settle: until every acknowledged job ran, or nothing moved for 5 s.
    last_progress, seen = time.monotonic(), len(finished_at)
    while time.monotonic() - last_progress < 5 and not set(acked) <= set(runs):
        await asyncio.sleep(0.1)
        if len(finished_at) != seen:
            last_progress, seen = time.monotonic(), len(finished_at)
    missing = [job_id for job_id in acked if job_id not in runs]
    present = []
    for job_id in missing:
        for _ in range(20):
            try:
                if await queue.get_job(job_id) is not None:
                    present.append(job_id)
                break
            except RedisError:
                await asyncio.sleep(0.1)
    return missing, present


def role(port: int) -> str:
    try:
        with redis.Redis(port=port, socket_timeout=1) as client:
            return str(client.info("replication")["role"])
    except RedisError:
        return "down"


async def until(check: Any, timeout: float) -> None:
    """Wait until ``check()`` is true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout}s")
        await asyncio.sleep(0.05)
