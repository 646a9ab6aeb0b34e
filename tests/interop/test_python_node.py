"""pyqueue and real Node Bull on one Redis: each side produces, consumes and manages
the other's jobs (bull-protocol.md §9).  Most tests run for Bull 4.12.9 and 4.16.x.

Node is driven through ``tests/interop/node/driver.js``; every Node call from an
async test goes through ``arun`` so a pyqueue worker in the same loop keeps running.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import pytest
import redis.asyncio as aioredis
from tests.interop.bull import Event, NodeBull, single

from pyqueue import Backoff, Job, Queue, Worker, WorkerOptions

if TYPE_CHECKING:
    from tests.interop.bull import NodeProcess

# Node worker settings for quick tests (the harness uses the same).
FAST = {"stalledInterval": 500, "lockDuration": 1000, "guardInterval": 200, "drainDelay": 1}
# pyqueue worker settings: short blocking fetch so close() is quick; stall checks off
# unless a test wants them (a 30 s stalled-check throttle would also block Node's).
PY_FAST = {"drain_delay": 1, "guard_interval": 200, "stalled_interval": 0, "shutdown_grace": 5}


# --- helpers ------------------------------------------------------------------------


async def nrun(nb: NodeBull, queue: str, action: str, **cfg: Any) -> list[Event]:
    return await nb.arun({"queue": queue, "action": action, **cfg})


async def nadd(nb: NodeBull, queue: str, jobs: list[dict[str, Any]], *, bulk: bool = False) -> list[str]:
    events = await nrun(nb, queue, "addBulk" if bulk else "add", jobs=jobs)
    ids: list[str] = single(events, "added")["ids"]
    return ids


async def ncounts(nb: NodeBull, queue: str) -> Event:
    return single(await nrun(nb, queue, "counts"), "counts")


async def njobs(nb: NodeBull, queue: str, ids: list[str]) -> dict[str, Event]:
    events = await nrun(nb, queue, "getJob", ids=ids)
    return {e["id"]: e for e in events if e["event"] == "job"}


async def nadmin(nb: NodeBull, queue: str, op: str, **args: Any) -> Event:
    return single(await nrun(nb, queue, "admin", op=op, **args), "result")


async def wait_until(
    check: Callable[[], Any], timeout: float = 10.0, what: str = "condition"  # noqa: ASYNC109
) -> Any:
    """Poll an async ``check`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; last={last!r}")


async def wait_counts(q: Queue[Any], timeout: float = 10.0, **want: int) -> dict[str, int]:  # noqa: ASYNC109
    async def check() -> dict[str, int] | None:
        counts = await q.get_job_counts()
        return counts if all(counts[k] == v for k, v in want.items()) else None

    result: dict[str, int] = await wait_until(check, timeout, f"counts {want}")
    return result


@contextlib.asynccontextmanager
async def py_worker(
    redis_url: str, queue: str, handler: Any, **options: Any
) -> AsyncIterator[Worker]:
    worker = Worker(queue, handler, redis_url=redis_url, options=WorkerOptions(**{**PY_FAST, **options}))
    await worker.start()
    try:
        yield worker
    finally:
        await worker.close(timeout=3)


@pytest.fixture
async def pq(redis_url: str, queue_name: str) -> AsyncIterator[Queue[Any]]:
    async with Queue(queue_name, redis_url) as q:
        yield q


def _key(queue: str, suffix: str) -> str:
    return f"bull:{queue}:{suffix}"


# --- 1. Node produces, pyqueue consumes ----------------------------------------------


async def _ordering(nb: NodeBull, pq: Queue[Any], raw: aioredis.Redis, redis_url: str,
                    with_e: bool) -> list[str]:
    """§9.4: A,B plain, C p3, D p1, E lifo, F p1, added alternately by Node and pyqueue."""
    plan: list[tuple[str, dict[str, Any]]] = [
        ("A", {}), ("B", {}), ("C", {"priority": 3}), ("D", {"priority": 1}),
        ("E", {"lifo": True}), ("F", {"priority": 1}),
    ]
    if not with_e:
        plan = [p for p in plan if p[0] != "E"]
    names: dict[str, str] = {}
    wait_after: list[list[str]] = []
    for i, (name, opts) in enumerate(plan):
        if i % 2 == 0:
            (job_id,) = await nadd(nb, pq.name, [{"name": name, "data": {"n": name}, "opts": opts}])
        else:
            job_id = (await pq.add({"n": name}, name=name, **opts)).id
        names[job_id] = name
        wait = await raw.lrange(_key(pq.name, "wait"), 0, -1)
        wait_after.append([names[i.decode()] for i in wait])
    if with_e:
        assert wait_after == [
            ["A"], ["B", "A"], ["B", "A", "C"], ["B", "A", "C", "D"],
            ["B", "A", "C", "D", "E"], ["B", "A", "C", "D", "F", "E"],
        ]
    run: list[str] = []

    async def handler(job: Job[Any]) -> str:
        run.append(job.name)
        return job.name

    async with py_worker(redis_url, pq.name, handler):
        await wait_counts(pq, completed=len(plan))
    return run


async def test_ordering_mixed_producers(
    node_bull: NodeBull, bull_version: str, pq: Queue[Any], raw_redis: aioredis.Redis,
    redis_url: str,
) -> None:
    assert await _ordering(node_bull, pq, raw_redis, redis_url, with_e=True) == list("EFDCAB")
    async with Queue(pq.name + "-noe", redis_url) as other:
        run = await _ordering(node_bull, other, raw_redis, redis_url, with_e=False)
    assert run == list("DFCAB")


async def test_node_jobs_python_worker(
    node_bull: NodeBull, bull_version: str, pq: Queue[Any], raw_redis: aioredis.Redis,
    redis_url: str,
) -> None:
    nb, q = node_bull, pq.name
    jobs = [
        {"name": "plain", "data": {"a": 1}},
        {"name": "plain", "data": {"d": 1}, "opts": {"delay": 300}},
        {"name": "plain", "data": {"p": 1}, "opts": {"priority": 2}},
        {"name": "plain", "data": {"l": 1}, "opts": {"lifo": True}},
        {"name": "flaky", "data": {}, "opts": {"attempts": 3,
                                               "backoff": {"type": "exponential", "delay": 200}}},
        {"name": "bad", "data": {}, "opts": {"attempts": 2, "backoff": 100}},
        {"name": "plain", "data": {"c": 1}, "opts": {"jobId": "custom-1"}},
        {"name": "plain", "data": {"dup": 1}, "opts": {"jobId": "custom-1"}},
    ]
    ids = await nadd(nb, q, jobs)
    assert ids == ["1", "2", "3", "4", "5", "6", "custom-1", "custom-1"]
    plain_id, delayed_id, prio_id, lifo_id, flaky_id, bad_id = ids[:6]

    runs: dict[str, list[int]] = {}
    seen: dict[str, Any] = {}

    async def plain(job: Job[Any]) -> Any:
        runs.setdefault(job.id, []).append(int(time.time() * 1000))
        seen[job.id] = (job.data, job.raw_opts, job.timestamp)
        await job.progress(50)
        await job.log(f"log {job.id}")
        await job.progress({"done": True})
        return {"ok": True, "id": job.id}

    async def flaky(job: Job[Any]) -> Any:
        runs.setdefault(job.id, []).append(int(time.time() * 1000))
        if job.attempts_made < 2:
            raise RuntimeError(f"flaky {job.attempts_made + 1}")
        return [1, "two", None]

    async def bad(job: Job[Any]) -> Any:
        runs.setdefault(job.id, []).append(int(time.time() * 1000))
        raise ValueError("boom bad")

    handlers = {"plain": plain, "flaky": flaky, "bad": bad, "fin": plain}
    async with py_worker(redis_url, q, handlers):
        # Node's job.finished() on a job pyqueue completes, and on one it fails.
        ok, failed = await asyncio.gather(
            nrun(nb, q, "finished", job={"name": "fin", "data": {"f": 1}}, timeoutMs=10000),
            nrun(nb, q, "finished", id=bad_id, timeoutMs=10000),
        )
        await wait_counts(pq, completed=7, failed=1)

    fin = single(ok, "finished")
    assert fin["ok"] is True
    assert fin["value"] == {"ok": True, "id": fin["id"]}
    assert single(failed, "finished") == {**single(failed, "finished"), "ok": False,
                                         "error": "boom bad"}

    # Node's order guarantees held for pyqueue: lifo first, then priority, FIFO.
    first_runs = sorted((r[0], i) for i, r in runs.items() if i in ids[:4])
    order = [i for _, i in first_runs]
    assert order.index(lifo_id) < order.index(prio_id) < order.index(plain_id)
    assert seen[plain_id][0] == {"a": 1}
    assert seen["custom-1"][0] == {"c": 1}  # the duplicate add changed nothing
    flaky_runs = runs[flaky_id]
    assert len(flaky_runs) == 3
    assert flaky_runs[1] - flaky_runs[0] >= 195
    assert flaky_runs[2] - flaky_runs[1] >= 595

    counts = await ncounts(nb, q)
    assert counts["counts"] == {"waiting": 0, "active": 0, "completed": 7, "failed": 1,
                                "delayed": 0, "paused": 0}
    got = await njobs(nb, q, [plain_id, delayed_id, flaky_id, bad_id, "custom-1"])
    pj = got[plain_id]["json"]
    assert got[plain_id]["state"] == "completed"
    assert pj["returnvalue"] == {"ok": True, "id": plain_id}
    assert pj["progress"] == {"done": True}
    assert pj["attemptsMade"] == 0
    assert pj["finishedOn"] >= pj["processedOn"] >= pj["timestamp"]
    assert pj["data"] == {"a": 1}
    assert got[delayed_id]["state"] == "completed"
    assert got[delayed_id]["json"]["opts"]["delay"] == 300
    assert got[delayed_id]["json"]["delay"] == 0  # the hash field is reset on promotion
    assert runs[delayed_id][0] - pj["timestamp"] >= 250
    fj = got[flaky_id]["json"]
    assert got[flaky_id]["state"] == "completed"
    assert fj["returnvalue"] == [1, "two", None]
    assert fj["attemptsMade"] == 2
    assert isinstance(fj["stacktrace"], list) and len(fj["stacktrace"]) == 2
    assert "flaky 2" in fj["stacktrace"][1]
    assert fj["failedReason"] == "flaky 2"
    bj = got[bad_id]["json"]
    assert got[bad_id]["state"] == "failed"
    assert bj["attemptsMade"] == 2
    assert bj["failedReason"] == "boom bad"
    assert len(bj["stacktrace"]) == 2
    assert all("ValueError: boom bad" in s for s in bj["stacktrace"])
    assert bj["finishedOn"] >= bj["processedOn"]
    assert await raw_redis.zscore(_key(q, "failed"), bad_id) == bj["finishedOn"]

    listed = single(await nrun(nb, q, "getJobs", types=["completed"]), "jobs")["jobs"]
    assert {j["id"] for j in listed} == {plain_id, delayed_id, prio_id, lifo_id, flaky_id,
                                        "custom-1", fin["id"]}
    failed_list = single(await nrun(nb, q, "getJobs", types=["failed"]), "jobs")["jobs"]
    assert [j["id"] for j in failed_list] == [bad_id]
    logs = await nadmin(nb, q, "getJobLogs", id=plain_id)
    assert logs["value"] == {"logs": [f"log {plain_id}"], "count": 1}
    # The hash is clean for Node: no lock left, nothing active or stalled.
    assert await raw_redis.exists(_key(q, f"{plain_id}:lock")) == 0
    assert await raw_redis.scard(_key(q, "stalled")) == 0


# --- 2. pyqueue produces, Node consumes ----------------------------------------------


def _comparable(job_json: dict[str, Any]) -> dict[str, Any]:
    """toJSON() without what differs between two otherwise identical jobs."""
    out = {k: v for k, v in job_json.items()
           if k not in {"id", "timestamp", "processedOn", "finishedOn"}}
    out["opts"] = {k: v for k, v in job_json["opts"].items() if k not in {"timestamp", "jobId"}}
    return out


async def test_python_jobs_node_worker(
    node_bull: NodeBull, bull_version: str, pq: Queue[Any], raw_redis: aioredis.Redis,
) -> None:
    nb, q = node_bull, pq.name
    data = {"s": "x", "n": [1, 2.5, None], "u": "é✓"}
    py_jobs = [
        await pq.add(data, name="same", attempts=2, backoff=Backoff(type="fixed", delay=50),
                     priority=3, timeout=5000, job_id="py-1"),
        await pq.add({"k": 1}, name="flaky", attempts=3,
                     backoff=Backoff(type="exponential", delay=200)),
        await pq.add({"k": 2}, name="never", attempts=3,
                     backoff=Backoff(type="exponential", delay=200)),
        await pq.add({"k": 3}),
    ]
    (node_twin,) = await nadd(nb, q, [{"name": "same", "data": data, "opts": {
        "attempts": 2, "backoff": 50, "priority": 3, "timeout": 5000, "jobId": "node-1"}}])
    before = await njobs(nb, q, ["py-1", node_twin])
    assert _comparable(before["py-1"]["json"]) == _comparable(before[node_twin]["json"])
    assert before["py-1"]["state"] == before[node_twin]["state"] == "waiting"

    events = await nrun(nb, q, "process", until=5, timeoutMs=15000, settings=FAST, behaviour={
        "same": {"return": "same"},
        "flaky": {"failTimes": 2, "message": "flaky", "return": {"third": True}},
        "never": {"fail": "never works"},
        "*": {"return": None},
    })
    processing = [e for e in events if e["event"] == "processing"]
    first = next(e for e in processing if e["id"] == "py-1")
    assert first["data"] == data
    assert first["name"] == "same"
    assert first["timestamp"] == py_jobs[0].timestamp
    assert first["delay"] == 0
    assert first["opts"] == py_jobs[0].raw_opts
    assert first["opts"]["backoff"] == {"type": "fixed", "delay": 50}
    default = next(e for e in processing if e["id"] == py_jobs[3].id)
    assert default["name"] == "__default__"
    assert set(default["opts"]) == {"attempts", "delay", "timestamp"}

    for job_id, expect_fail in ((py_jobs[1].id, False), (py_jobs[2].id, True)):
        starts = [e["t"] for e in processing if e["id"] == job_id]
        assert len(starts) == 3
        assert starts[1] - starts[0] >= 195
        assert starts[2] - starts[1] >= 595
        fails = [e for e in events if e["event"] == "failed" and e["id"] == job_id]
        assert [f["final"] for f in fails] == ([False, False, True] if expect_fail
                                                else [False, False])

    flaky = await pq.get_job(py_jobs[1].id)
    never = await pq.get_job(py_jobs[2].id)
    assert flaky is not None and never is not None
    assert await flaky.get_state() == "completed"
    assert flaky.return_value == {"third": True}
    assert flaky.attempts_made == 2
    assert flaky.failed_reason == "flaky"
    assert await never.get_state() == "failed"
    assert never.attempts_made == 3
    assert never.failed_reason == "never works"
    assert len(never.stacktrace) == 3
    assert never.stacktrace[0].startswith("Error: never works")
    after = await njobs(nb, q, ["py-1", node_twin])
    assert _comparable(after["py-1"]["json"]) == _comparable(after[node_twin]["json"])


async def test_delayed_wakeup_of_idle_node_worker(
    node_bull: NodeBull, bull_version: str, pq: Queue[Any], raw_redis: aioredis.Redis,
) -> None:
    worker = {"queue": pq.name, "action": "process", "until": 1, "timeoutMs": 15000,
              "behaviour": {"*": {"return": "woke"}}}  # default guardInterval: 5 s
    with node_bull.start(worker) as proc:
        await proc.await_for("ready")
        await asyncio.sleep(0.5)  # the worker is idle, blocked on wait
        job = await pq.add({"w": 1}, delay=1500)
        counter = int(await raw_redis.get(_key(pq.name, "id")) or 0)
        score = await raw_redis.zscore(_key(pq.name, "delayed"), job.id)
        assert score == (job.timestamp + 1500) * 4096 + (counter & 4095)
        started = await proc.await_for("processing", timeout=5, id=job.id)
        await proc.await_for("completed", timeout=5, id=job.id)
    due = job.timestamp + 1500
    assert started["t"] >= due - 5
    assert started["t"] - due < 1000  # long before the 5 s guard tick
    assert await raw_redis.hget(_key(pq.name, job.id), "delay") == b"0"


async def test_python_duplicate_of_node_custom_id(
    node_bull: NodeBull, bull_version: str, pq: Queue[Any], raw_redis: aioredis.Redis,
) -> None:
    (node_id,) = await nadd(node_bull, pq.name, [{"data": {"orig": 1}, "opts": {"jobId": "same"}}])
    before = await raw_redis.hgetall(_key(pq.name, "same"))
    counter = int(await raw_redis.get(_key(pq.name, "id")) or 0)
    dup = await pq.add({"orig": 2}, job_id="same", priority=5)
    assert dup.id == node_id == "same"
    assert await raw_redis.hgetall(_key(pq.name, "same")) == before
    assert int(await raw_redis.get(_key(pq.name, "id")) or 0) == counter + 1
    assert await raw_redis.lrange(_key(pq.name, "wait"), 0, -1) == [b"same"]
    (job,) = (await njobs(node_bull, pq.name, ["same"])).values()
    assert job["json"]["data"] == {"orig": 1}
