"""kill -9 the migrator at random points, many times: after every kill, each job
is on one side or the other (never both, never neither) with its data, each
schedule is Bull's or BullMQ's; the run after the last kill finishes the job.

The migrator runs in a process of its own (``run_migrator.py``) with one or
two jobs per script call and reports each step on stdout; each run is killed
after a random number of steps plus a random delay (the seed is printed on
failure), so the kills land anywhere in a run: between two calls, inside
one (Redis then runs the script to its end: it is atomic), while it reads.
The test counts the kills that interrupted a run which had moved something
and had not finished, and wants many of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import sys
from pathlib import Path
from typing import Any, cast

import pytest
import redis.asyncio as aioredis
from tests.migrate.conftest import BULL_LISTS, BULL_SETS, BULLMQ_LISTS, BULLMQ_SETS, FAST

from pyqueue import BulkJob, Job, JobOptions, Queue, Repeat, Worker

ROOT = Path(__file__).resolve().parents[2]
KILLS_WANTED = 12
MAX_RUNS = 80
QUEUES = 6


async def _fill(url: str, name: str) -> dict[str, Any]:
    """Bull jobs of every kind; ``{id: data}`` of each, and the schedule count."""
    async with Queue(name, url) as queue:
        finished = await queue.add_bulk([BulkJob({"n": f"h{i}"}, name="h") for i in range(60)])

        async def handler(job: Job[Any]) -> str:
            await job.log("ran")
            if int(job.data["n"][1:]) % 4 == 0:
                raise RuntimeError("no")
            return "yes"

        async with Worker(queue, handler, options=FAST):
            for _ in range(600):
                counts = await queue.get_job_counts("completed", "failed")
                if counts["completed"] + counts["failed"] == len(finished):
                    break
                await asyncio.sleep(0.05)
        jobs = [BulkJob({"n": f"w{i}"}, options=JobOptions(priority=i % 3 or None))
                for i in range(300)]
        jobs += [BulkJob({"n": f"d{i}"}, options=JobOptions(delay=3_600_000 + i))
                 for i in range(80)]
        jobs += [BulkJob({"n": f"c{i}"}, options=JobOptions(job_id=f"cust:{i}"))
                 for i in range(20)]
        added = await queue.add_bulk(jobs)
        for every in (60_000, 120_000, 180_000):
            await queue.add({"every": every}, repeat=Repeat(every=every), name=f"e{every}")
    data = {j.id: j.data for j in [*finished, *added]}
    return {"jobs": data, "schedules": 3}


async def _ids(raw: aioredis.Redis, base: str, lists: tuple[str, ...],
               sets: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for state in (*lists, *sets):
        if state in lists:
            found = cast("list[bytes]", await raw.lrange(base + state, 0, -1))
        else:
            found = cast("list[bytes]", await raw.zrange(base + state, 0, -1))
        out += [f.decode() for f in found]
    return out


async def _check(raw: aioredis.Redis, name: str, target: str, made: dict[str, Any],
                 in_place: bool) -> int:
    """The invariants at any moment; returns the number of jobs moved so far."""
    src, dst = f"bull:{name}:", f"{target}:{name}:"
    staged = await raw.hget(dst + "pq-migrate:state", "staged") == b"1"
    renames = {k.decode(): v.decode()
               for k, v in (await raw.hgetall(dst + "pq-migrate:ids")).items()}
    if in_place and staged:
        bull = await _ids(raw, src + "pq-migrate:src:", ("wait", "paused"), BULL_SETS)
        bull += await _ids(raw, src, ("active",), ())
        mq = await _ids(raw, dst, ("wait", "paused"), BULLMQ_SETS)
    elif in_place:
        bull, mq = await _ids(raw, src, BULL_LISTS, BULL_SETS), []
    else:
        bull = await _ids(raw, src, BULL_LISTS, BULL_SETS)
        mq = await _ids(raw, dst, BULLMQ_LISTS, BULLMQ_SETS)
    repeat_bull = [i for i in bull if i.startswith("repeat:")]
    repeat_mq = [i for i in mq if i.startswith("repeat:")]
    bull = [i for i in bull if not i.startswith("repeat:")]
    mq = [i for i in mq if not i.startswith("repeat:")]
    assert len(bull) == len(set(bull))
    assert len(mq) == len(set(mq))
    expected = made["jobs"]
    back = {v: k for k, v in renames.items()}
    assert sorted([*bull, *(back.get(i, i) for i in mq)]) == sorted(expected)
    for job_id in mq:
        fields = await raw.hmget(dst + job_id, "data", "atm")
        assert fields[1] is not None, f"{job_id} is in BullMQ's structures unconverted"
        assert json.loads(fields[0] or b"null") == expected[back.get(job_id, job_id)]
    for job_id in bull:
        fields = await raw.hmget(src + job_id, "data", "atm")
        assert fields[1] is None, f"{job_id} is in Bull's structures converted"
        assert json.loads(fields[0] or b"null") == expected[job_id]
    # Each schedule is on one side: Bull's key with its instance, or a scheduler with its.
    bull_schedules = await raw.zcard(src + ("pq-migrate:src:repeat" if staged else "repeat"))
    mq_schedules = await raw.zcard(dst + "repeat") if (staged or not in_place) else 0
    assert bull_schedules + mq_schedules == made["schedules"]
    assert len(repeat_bull) == bull_schedules
    assert len(repeat_mq) == mq_schedules
    return len(mq)


async def _run_once(config: dict[str, Any],
                    kill_at: tuple[int, float] | None) -> tuple[bool, str]:
    """Start the migrator; with ``kill_at = (steps, delay)``, SIGKILL it ``delay``
    seconds after it reported that many steps, unless it has reported its end.
    ``(finished, output)``: a run that reported its end counts as it reported,
    even when the kill caught it on its way out."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.migrate.run_migrator", json.dumps(config), cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONWARNINGS": "error"})
    assert proc.stdout is not None
    started = await asyncio.wait_for(proc.stdout.readline(), 60)
    assert b"started" in started, started
    lines: list[bytes] = []
    if kill_at is not None:
        steps, delay = kill_at
        while sum(b'"step"' in line for line in lines) < steps:
            line = await asyncio.wait_for(proc.stdout.readline(), 60)
            lines.append(line)
            if not line or b'"report"' in line:
                break
        if not any(b'"report"' in line for line in lines):
            await asyncio.sleep(delay)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    text = b"".join(lines).decode() + out.decode()
    reports = [json.loads(line) for line in text.splitlines() if '"report"' in line]
    if reports:
        return bool(reports[-1]["finished"]), text
    assert proc.returncode == -signal.SIGKILL, err.decode()
    return False, text


async def _kill_until_done(url: str, raw: aioredis.Redis, name: str, target: str,
                           rng: random.Random, kills_left: int) -> int:
    """Migrate one freshly filled queue, killing runs until ``kills_left`` kills
    landed mid-run (or the queue is done); checks the invariants after every run.
    Returns the kills that landed mid-run."""
    in_place = target == "bull"
    made = await _fill(url, name)
    config: dict[str, Any] = {"url": url, "queue": name, "batch_size": 2, "progress": True}
    if not in_place:
        config["to_prefix"] = target
    interrupted = moved = 0
    out = ""
    for _ in range(MAX_RUNS):
        kill = (rng.randrange(0, 12), rng.uniform(0, 0.005)) \
            if interrupted < kills_left else None
        finished, out = await _run_once(config, kill)
        now_moved = await _check(raw, name, target, made, in_place)
        if finished:
            assert now_moved == len(made["jobs"])
            return interrupted
        if now_moved > moved:
            interrupted += 1
        moved = now_moved
    raise AssertionError(f"{name}: not finished after {MAX_RUNS} runs ({interrupted} "
                         f"interrupted); the last run's output: {out[-3000:]}")


@pytest.mark.timeout(900)
@pytest.mark.parametrize("target", ["bmq", "bull"], ids=["new-prefix", "in-place"])
async def test_kill_nine_at_random_points_neither_duplicates_nor_loses(
    redis_url: str, raw_redis: aioredis.Redis, queue_name: str, target: str,
) -> None:
    """Queue after queue until enough kills landed mid-run: on a loaded machine
    the migrator can run ahead of the steps this test reads, and finish a queue
    before the kills it was meant to take."""
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    interrupted = 0
    for round_ in range(QUEUES):
        interrupted += await _kill_until_done(redis_url, raw_redis, f"{queue_name}-{round_}",
                                              target, rng, KILLS_WANTED - interrupted)
        if interrupted >= KILLS_WANTED:
            return
    raise AssertionError(f"seed {seed}: only {interrupted} kills mid-run in {QUEUES} queues")
