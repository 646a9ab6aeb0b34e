"""Unusual but legal jobs from Node Bull 4.x, on pyqueue workers and pyqueue's admin calls.

Whatever Node Bull can write, pyqueue processes, lists and removes the way that
Node version would (every test runs against each Bull release in the matrix).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import redis.asyncio as aioredis
from tests.interop.bull import NodeBull
from tests.interop.test_python_node import (
    nadd,
    njobs,
    py_worker,
    wait_counts,
    wait_until,
)

from pyqueue import Job, Queue, Repeat


@pytest.fixture
async def pq(redis_url: str, queue_name: str) -> Any:
    async with Queue[Any](queue_name, redis_url) as q:
        yield q


ODD_IDS = ["store:42", "with space", "ünï ✓ 名前", "007", "12345", "a:b c:ü"]


async def test_odd_ids_names_and_data_processed_listed_removed(
    node_bull: NodeBull, bull_version: str, pq: Queue[Any], raw_redis: aioredis.Redis,
    redis_url: str,
) -> None:
    payloads: list[Any] = ["a JSON string", [1, "two", None], 42, None, 0, {"k": [{}]}]
    jobs: list[dict[str, Any]] = [
        {"name": f"sync:{i}:x y", "data": data, "opts": {"jobId": job_id}}
        for i, (job_id, data) in enumerate(zip(ODD_IDS, payloads, strict=True))
    ]
    jobs.append({"name": "numeric", "data": 7, "opts": {"jobId": 99}})  # a JS number id
    ids = await nadd(node_bull, pq.name, jobs)
    assert ids == [*ODD_IDS, "99"]
    seen: dict[str, tuple[str, Any]] = {}

    async def handle(job: Job[Any]) -> Any:
        seen[job.id] = (job.name, job.data)
        return job.data

    async with py_worker(redis_url, pq.name, handle):
        await wait_counts(pq, completed=len(jobs))
    str_ids = [str(i) for i in ids]
    # Node stores `data || {}`: null and 0 arrive as {} (what a Node worker sees too).
    expected = [{} if job["data"] in (None, 0) else job["data"] for job in jobs]
    assert seen == {
        job_id: (job["name"], data)
        for job_id, job, data in zip(str_ids, jobs, expected, strict=True)
    }
    listed = await pq.get_jobs("completed")
    assert sorted(j.id for j in listed) == sorted(str_ids)
    node_view = await njobs(node_bull, pq.name, str_ids)
    for job_id, data in zip(str_ids, expected, strict=True):
        assert node_view[job_id]["state"] == "completed"
        assert node_view[job_id]["json"]["returnvalue"] == data
    for job in listed:
        await job.remove()
    assert await pq.get_job_counts() == {**await pq.get_job_counts(), "completed": 0}
    gone = await njobs(node_bull, pq.name, str_ids)
    assert all(g["json"] is None for g in gone.values())


async def test_retention_and_bare_backoff_from_node(
    node_bull: NodeBull, bull_version: str, pq: Queue[Any], redis_url: str,
) -> None:
    jobs: list[dict[str, Any]] = []
    for i in range(4):
        jobs.append({"name": "keep2", "data": i, "opts": {"removeOnComplete": 2}})
    for i in range(3):
        jobs.append({"name": "age", "data": i,
                     "opts": {"removeOnComplete": {"age": 3600, "count": 1}}})
    for i in range(3):
        jobs.append({"name": "fail1", "data": i, "opts": {"removeOnFail": 1}})
    for i in range(2):
        jobs.append({"name": "failobj", "data": i,
                     "opts": {"removeOnFail": {"age": 3600, "count": 1}}})
    # backoff as a bare number: a fixed delay of that many ms.
    jobs.append({"name": "retry", "data": None,
                 "opts": {"attempts": 2, "backoff": 150, "jobId": "bare-backoff"}})
    await nadd(node_bull, pq.name, jobs)
    runs: list[tuple[str, int]] = []

    async def handle(job: Job[Any]) -> Any:
        runs.append((job.name, job.attempts_made))
        if job.name.startswith("fail") or (job.name == "retry" and job.attempts_made == 0):
            raise RuntimeError(f"{job.name} fails")
        return job.name

    async with py_worker(redis_url, pq.name, handle):
        await wait_until(lambda: _value(("retry", 1) in runs), 10, "the retry")
        await wait_until(lambda: _no_pending(pq), 10, "all finished")
    # Each finish trims the whole set to that job's `count` (Bull's rule):
    # keep2 leaves two, each `age` job one, fail1 one, each failobj one; the
    # retried job keeps everything, so age #2 survives beside it.
    completed = sorted((j.name, repr(j.data)) for j in await pq.get_jobs("completed"))
    assert completed == [("age", "2"), ("retry", "{}")]
    failed = [(j.name, j.data) for j in await pq.get_jobs("failed")]
    assert failed == [("failobj", 1)]
    assert ("retry", 0) in runs
    node_view = (await njobs(node_bull, pq.name, ["bare-backoff"]))["bare-backoff"]
    assert node_view["state"] == "completed"
    assert node_view["json"]["attemptsMade"] == 1
    assert node_view["json"]["returnvalue"] == "retry"


async def _value(value: Any) -> Any:
    return value


async def _no_pending(pq: Queue[Any]) -> bool:
    counts = await pq.get_job_counts()
    return counts["waiting"] + counts["active"] + counts["delayed"] == 0


async def test_odd_repeat_options_from_node(
    node_bull: NodeBull, bull_version: str, pq: Queue[Any], raw_redis: aioredis.Redis,
    redis_url: str,
) -> None:
    now = int(time.time() * 1000)
    start = (now // 1000 + 1) * 1000
    end = start + 2500
    iso = lambda ms: time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + (  # noqa: E731
        f".{ms % 1000:03d}Z"
    )
    limited = {"every": 250, "limit": 3, "count": 1, "jobId": "rép ü 1"}
    cron = {"cron": "* * * * * *", "tz": "Asia/Kolkata", "startDate": iso(start),
            "endDate": iso(end), "jobId": "c:1 ü"}
    await nadd(node_bull, pq.name, [
        {"name": "every limited", "data": "L", "opts": {"repeat": limited}},
        {"name": "sync:cron", "data": ["C"], "opts": {"repeat": cron}},
    ])
    seen: list[Job[Any]] = []

    async def handle(job: Job[Any]) -> Any:
        seen.append(job)
        return job.name

    async with py_worker(redis_url, pq.name, handle):
        await asyncio.sleep((end - int(time.time() * 1000)) / 1000 + 0.5)
        await wait_until(lambda: _no_pending(pq), 5, "nothing left to run")
    by_name: dict[str, list[Job[Any]]] = {}
    for job in seen:
        by_name.setdefault(job.name, []).append(job)
    # count 1 and limit 3: the first instance is count 2, the chained one 3, then none.
    assert [j.raw_opts["repeat"]["count"] for j in by_name["every limited"]] == [2, 3]
    lim = Repeat.from_wire(limited)
    for job in by_name["every limited"]:
        assert job.id == lim.instance_id("every limited", job.raw_opts["prevMillis"])
        assert job.data == "L"
    cron_jobs = by_name["sync:cron"]
    assert len(cron_jobs) >= 2
    rep = Repeat.from_wire(cron)
    fired = [j.raw_opts["prevMillis"] for j in cron_jobs]
    assert fired == sorted(set(fired))
    assert all(start < ms <= end and ms % 1000 == 0 for ms in fired)
    for job in cron_jobs:
        assert job.id == rep.instance_id("sync:cron", job.raw_opts["prevMillis"])
        assert job.data == ["C"]
    # Both schedules are listed as Node lists them, and pyqueue removes them by key.
    listed = await pq.get_repeatable_jobs()
    keys = sorted(e["key"] for e in listed)
    assert keys == sorted([lim.key("every limited"), rep.key("sync:cron")])
    for key in keys:
        await pq.remove_repeatable_by_key(key)
    assert await pq.get_repeatable_count() == 0
    assert await raw_redis.zcard(pq.keys.delayed) == 0
