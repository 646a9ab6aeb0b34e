"""How long ``pyqueue migrate`` takes to move a Bull 4 queue to BullMQ 6.

    .venv/bin/python benchmarks/migrate.py [--jobs 10000] [--reps 3] [--batch-size 100]

Each repetition fills a Bull queue through pyqueue's public API (Bull mode) on
a private redis-server: 60 % waiting (a fifth of them prioritised), 10 %
delayed, 25 % completed and 5 % failed, each finished job with a return value
or a stack trace, progress and a log line (a worker really ran them), plus
three repeatable jobs. Then it times ``migrate_queue`` into a new prefix and,
on a second such queue, in place; and checks the outcome: every job on the
BullMQ side exactly once with its data, nothing left on the Bull side. Prints
seconds per run (median, min-max over the repetitions) and per 10,000 jobs.
The fill is not timed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any, cast

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis.asyncio as aioredis

from pyqueue import BulkJob, Job, JobOptions, Queue, Repeat, Worker, WorkerOptions
from pyqueue.embedded import RedisServer
from pyqueue.migrate import migrate_queue

_STATES = ("wait", "paused", "active", "prioritized", "delayed", "completed", "failed")


async def fill(url: str, name: str, jobs: int) -> dict[str, Any]:
    """The queue of the module docstring; ``{id: data}`` of every job."""
    finished, failing = jobs * 30 // 100, jobs * 5 // 100
    waiting, delayed = jobs * 60 // 100, jobs - jobs * 30 // 100 - jobs * 60 // 100
    async with Queue(name, url) as queue:
        done = await queue.add_bulk([
            BulkJob({"n": i, "fail": i < failing}, name="history") for i in range(finished)])

        async def handler(job: Job[Any]) -> Any:
            await job.progress(100)
            await job.log("ran")
            if job.data["fail"]:
                raise RuntimeError("failed on purpose")
            return {"ok": job.data["n"]}

        async with Worker(queue, handler, options=WorkerOptions(
                concurrency=50, drain_delay=0.2, stalled_interval=0)):
            for _ in range(12_000):  # a minute at most
                counts = await queue.get_job_counts("completed", "failed")
                if sum(counts.values()) >= finished:
                    break
                await asyncio.sleep(0.005)
        pending = [BulkJob({"n": i}, name="work", options=JobOptions(
            priority=1 + i % 5 if i % 5 == 0 else None)) for i in range(waiting)]
        pending += [BulkJob({"n": i}, name="later", options=JobOptions(delay=3_600_000 + i))
                    for i in range(delayed)]
        added: list[Job[Any]] = []
        for start in range(0, len(pending), 1000):
            added += await queue.add_bulk(pending[start:start + 1000])
        for every in (60_000, 300_000, 3_600_000):
            await queue.add({"every": every}, repeat=Repeat(every=every), name=f"every-{every}")
    return {job.id: job.data for job in [*done, *added]}


async def check(raw: aioredis.Redis, source: str, target: str, made: dict[str, Any],
                renames: dict[str, str]) -> None:
    """Every job once on the BullMQ side with its data; nothing left on Bull's."""
    seen: dict[str, str] = {}
    for state in _STATES:
        key = f"{target}:{state}"
        members = await (raw.lrange(key, 0, -1) if state in ("wait", "paused", "active")
                         else raw.zrange(key, 0, -1))
        for raw_id in cast("list[bytes]", members):
            job_id = raw_id.decode()
            if job_id.startswith("repeat:"):
                continue
            assert job_id not in seen, f"{job_id} in {seen.get(job_id)} and {state}"
            seen[job_id] = state
    back = {v: k for k, v in renames.items()}
    assert sorted(back.get(i, i) for i in seen) == sorted(made), "jobs lost or duplicated"
    async with raw.pipeline(transaction=False) as pipe:
        for job_id in seen:
            pipe.hget(f"{target}:{job_id}", "data")
        data = await pipe.execute()
    for job_id, raw_data in zip(seen, data, strict=True):
        assert json.loads(raw_data) == made[back.get(job_id, job_id)], job_id
    for state in ("wait", "active", "paused", "delayed", "completed", "failed", "repeat"):
        assert not await raw.exists(f"{source}:{state}"), f"{source}:{state} is left"


async def one_run(url: str, jobs: int, batch: int, in_place: bool) -> float:
    name = f"bench-{uuid.uuid4().hex[:8]}"
    made = await fill(url, name, jobs)
    to_prefix = None if in_place else "bmq"
    started = time.perf_counter()
    report = await migrate_queue(name, redis_url=url, to_prefix=to_prefix, batch_size=batch)
    seconds = time.perf_counter() - started
    assert report.finished
    assert report.total == len(made), (report.total, len(made))
    raw = aioredis.Redis.from_url(url)
    try:
        source = f"bull:{name}:pq-migrate:src" if in_place else f"bull:{name}"
        await check(raw, source, f"{to_prefix or 'bull'}:{name}", made, report.renames)
        await raw.flushall()
    finally:
        await raw.aclose()
    return seconds


def _row(label: str, jobs: int, times: list[float]) -> str:
    per = [t * 10_000 / jobs for t in times]
    return (f"{label:<11} {jobs:>7,} {statistics.median(times):>8.2f} s "
            f"({min(times):.2f}-{max(times):.2f})   {statistics.median(per):>6.2f} s "
            f"({min(per):.2f}-{max(per):.2f})   {jobs / statistics.median(times):>8,.0f}")


async def main(jobs: int, reps: int, batch: int) -> None:
    with RedisServer() as server:
        results: dict[str, list[float]] = {"new prefix": [], "in place": []}
        for _ in range(reps):
            results["new prefix"].append(await one_run(server.url, jobs, batch, False))
            results["in place"].append(await one_run(server.url, jobs, batch, True))
    print(f"pyqueue migrate, Bull 4 -> BullMQ 6: {jobs:,} jobs, {reps} repetitions, "
          f"batch {batch}; every run checked: each job once, with its data, nothing left")
    print(f"{'mode':<11} {'jobs':>7} {'run':>10} (min-max)  per 10,000 (min-max)   jobs/s")
    for label, times in results.items():
        print(_row(label, jobs, times))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=100)
    args = parser.parse_args()
    asyncio.run(main(args.jobs, args.reps, args.batch_size))
