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
import re
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
from tests.interop.bull import Event, NodeBull, single

from pyqueue import Backoff, Job, Queue, Worker, WorkerOptions

# Node worker settings for quick tests (the harness uses the same).
FAST = {"stalledInterval": 500, "lockDuration": 1000, "guardInterval": 200, "drainDelay": 1}
# pyqueue worker settings: short blocking fetch so close() is quick; stall checks off
# unless a test wants them (a 30 s stalled-check throttle would also block Node's).
PY_FAST = {"drain_delay": 1, "guard_interval": 200, "stalled_interval": 0, "shutdown_grace": 5}


# --- helpers ------------------------------------------------------------------------


async def nrun(nb: NodeBull, queue: str, action: str, **cfg: Any) -> list[Event]:
    return await nb.arun({"queue": queue, "action": action, **cfg})


async def nadd(
    nb: NodeBull, queue: str, jobs: list[dict[str, Any]], *, bulk: bool = False
) -> list[str]:
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
    check: Callable[[], Any],
    timeout: float = 10.0,
    what: str = "condition",
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


async def wait_counts(q: Queue[Any], timeout: float = 10.0, **want: int) -> dict[str, int]:
    async def check() -> dict[str, int] | None:
        counts = await q.get_job_counts()
        return counts if all(counts[k] == v for k, v in want.items()) else None

    result: dict[str, int] = await wait_until(check, timeout, f"counts {want}")
    return result


@contextlib.asynccontextmanager
async def py_worker(
    redis_url: str, queue: str, handler: Any, **options: Any
) -> AsyncIterator[Worker]:
    strategies = options.pop("backoff_strategies", None)
    worker = Worker(
        queue,
        handler,
        redis_url=redis_url,
        backoff_strategies=strategies,
        options=WorkerOptions(**{**PY_FAST, **options}),
    )
    await worker.start()
    try:
        yield worker
    finally:
        await worker.close(timeout=3)


@pytest.fixture
async def pq(redis_url: str, queue_name: str) -> AsyncIterator[Queue[Any]]:
    async with Queue[Any](queue_name, redis_url) as q:
        yield q


def _key(queue: str, suffix: str) -> str:
    return f"bull:{queue}:{suffix}"


# --- 1. Node produces, pyqueue consumes ----------------------------------------------


async def _ordering(
    nb: NodeBull, pq: Queue[Any], raw: aioredis.Redis, redis_url: str, with_e: bool
) -> list[str]:
    """§9.4: A,B plain, C p3, D p1, E lifo, F p1, added alternately by Node and pyqueue."""
    plan: list[tuple[str, dict[str, Any]]] = [
        ("A", {}),
        ("B", {}),
        ("C", {"priority": 3}),
        ("D", {"priority": 1}),
        ("E", {"lifo": True}),
        ("F", {"priority": 1}),
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
        wait_after.append([names[i.decode() if isinstance(i, bytes) else i] for i in wait])
    if with_e:
        assert wait_after == [
            ["A"],
            ["B", "A"],
            ["B", "A", "C"],
            ["B", "A", "C", "D"],
            ["B", "A", "C", "D", "E"],
            ["B", "A", "C", "D", "F", "E"],
        ]
    run: list[str] = []

    async def handler(job: Job[Any]) -> str:
        run.append(job.name)
        return job.name

    async with py_worker(redis_url, pq.name, handler):
        await wait_counts(pq, completed=len(plan))
    return run


async def test_ordering_mixed_producers(
    node_bull: NodeBull,
    bull_version: str,
    pq: Queue[Any],
    raw_redis: aioredis.Redis,
    redis_url: str,
) -> None:
    assert await _ordering(node_bull, pq, raw_redis, redis_url, with_e=True) == list("EFDCAB")
    async with Queue[Any](pq.name + "-noe", redis_url) as other:
        run = await _ordering(node_bull, other, raw_redis, redis_url, with_e=False)
    assert run == list("DFCAB")


async def test_node_jobs_python_worker(
    node_bull: NodeBull,
    bull_version: str,
    pq: Queue[Any],
    raw_redis: aioredis.Redis,
    redis_url: str,
) -> None:
    nb, q = node_bull, pq.name
    jobs = [
        {"name": "plain", "data": {"a": 1}},
        {"name": "plain", "data": {"d": 1}, "opts": {"delay": 300}},
        {"name": "plain", "data": {"p": 1}, "opts": {"priority": 2}},
        {"name": "plain", "data": {"l": 1}, "opts": {"lifo": True}},
        {
            "name": "flaky",
            "data": {},
            "opts": {"attempts": 3, "backoff": {"type": "exponential", "delay": 200}},
        },
        {"name": "bad", "data": {}, "opts": {"attempts": 2, "backoff": 100}},
        {"name": "plain", "data": {"c": 1}, "opts": {"jobId": "custom-1"}},
        {"name": "plain", "data": {"dup": 1}, "opts": {"jobId": "custom-1"}},
    ]
    ids = await nadd(nb, q, jobs)
    assert ids == ["1", "2", "3", "4", "5", "6", "custom-1", "custom-1"]
    plain_id, delayed_id, prio_id, lifo_id, flaky_id, bad_id = ids[:6]

    runs: dict[str, list[int]] = {}
    seen: dict[str, Any] = {}
    started: list[str] = []  # start order (ms times tie when jobs start back to back)

    async def plain(job: Job[Any]) -> Any:
        started.append(job.id)
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
    assert single(failed, "finished") == {
        **single(failed, "finished"),
        "ok": False,
        "error": "boom bad",
    }

    # Node's order guarantees held for pyqueue: lifo first, then priority, FIFO.
    order = [i for i in started if i in ids[:4]]
    assert order.index(lifo_id) < order.index(prio_id) < order.index(plain_id)
    assert seen[plain_id][0] == {"a": 1}
    assert seen["custom-1"][0] == {"c": 1}  # the duplicate add changed nothing
    flaky_runs = runs[flaky_id]
    assert len(flaky_runs) == 3
    assert flaky_runs[1] - flaky_runs[0] >= 195
    assert flaky_runs[2] - flaky_runs[1] >= 595

    assert runs[delayed_id][0] - seen[delayed_id][2] >= 250
    await _check_node_view(nb, q, raw_redis, ids, fin["id"])


async def _check_node_view(
    nb: NodeBull, q: str, raw_redis: aioredis.Redis, ids: list[str], fin_id: str
) -> None:
    """What Node's getters show after pyqueue ran test_node_jobs_python_worker's jobs."""
    plain_id, delayed_id, prio_id, lifo_id, flaky_id, bad_id = ids[:6]
    counts = await ncounts(nb, q)
    assert counts["counts"] == {
        "waiting": 0,
        "active": 0,
        "completed": 7,
        "failed": 1,
        "delayed": 0,
        "paused": 0,
    }
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
    fj = got[flaky_id]["json"]
    assert got[flaky_id]["state"] == "completed"
    assert fj["returnvalue"] == [1, "two", None]
    assert fj["attemptsMade"] == 2
    assert isinstance(fj["stacktrace"], list)
    assert len(fj["stacktrace"]) == 2
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
    assert {j["id"] for j in listed} == {
        plain_id,
        delayed_id,
        prio_id,
        lifo_id,
        flaky_id,
        "custom-1",
        fin_id,
    }
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
    out = {
        k: v
        for k, v in job_json.items()
        if k not in {"id", "timestamp", "processedOn", "finishedOn"}
    }
    out["opts"] = {k: v for k, v in job_json["opts"].items() if k not in {"timestamp", "jobId"}}
    return out


async def test_python_jobs_node_worker(
    node_bull: NodeBull,
    bull_version: str,
    pq: Queue[Any],
    raw_redis: aioredis.Redis,
) -> None:
    nb, q = node_bull, pq.name
    data = {"s": "x", "n": [1, 2.5, None], "u": "é✓"}
    py_jobs = [
        await pq.add(
            data,
            name="same",
            attempts=2,
            backoff=Backoff(type="fixed", delay=50),
            priority=3,
            timeout=5000,
            job_id="py-1",
        ),
        await pq.add(
            {"k": 1}, name="flaky", attempts=3, backoff=Backoff(type="exponential", delay=200)
        ),
        await pq.add(
            {"k": 2}, name="never", attempts=3, backoff=Backoff(type="exponential", delay=200)
        ),
        await pq.add({"k": 3}),
    ]
    (node_twin,) = await nadd(
        nb,
        q,
        [
            {
                "name": "same",
                "data": data,
                "opts": {
                    "attempts": 2,
                    "backoff": 50,
                    "priority": 3,
                    "timeout": 5000,
                    "jobId": "node-1",
                },
            }
        ],
    )
    before = await njobs(nb, q, ["py-1", node_twin])
    assert _comparable(before["py-1"]["json"]) == _comparable(before[node_twin]["json"])
    assert before["py-1"]["state"] == before[node_twin]["state"] == "waiting"

    events = await nrun(
        nb,
        q,
        "process",
        until=5,
        timeoutMs=15000,
        settings=FAST,
        behaviour={
            "same": {"return": "same"},
            "flaky": {"failTimes": 2, "message": "flaky", "return": {"third": True}},
            "never": {"fail": "never works"},
            "*": {"return": None},
        },
    )
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
        assert [f["final"] for f in fails] == (
            [False, False, True] if expect_fail else [False, False]
        )

    flaky = await pq.get_job(py_jobs[1].id)
    never = await pq.get_job(py_jobs[2].id)
    assert flaky is not None
    assert never is not None
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
    node_bull: NodeBull,
    bull_version: str,
    pq: Queue[Any],
    raw_redis: aioredis.Redis,
) -> None:
    worker = {
        "queue": pq.name,
        "action": "process",
        "until": 1,
        "timeoutMs": 15000,
        "behaviour": {"*": {"return": "woke"}},
    }  # default guardInterval: 5 s
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
    node_bull: NodeBull,
    bull_version: str,
    pq: Queue[Any],
    raw_redis: aioredis.Redis,
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


# --- 3. global events both ways -------------------------------------------------------


async def test_node_hears_python_global_events(
    node_bull: NodeBull,
    bull_version: str,
    pq: Queue[Any],
    redis_url: str,
) -> None:
    listen = {"queue": pq.name, "action": "listen", "timeoutMs": 20000}
    with node_bull.start(listen) as listener:
        await listener.await_for("ready")
        ok = await pq.add({"n": 1}, name="ok")
        bad = await pq.add({"n": 2}, name="bad")
        await listener.await_for("global:waiting", args=[bad.id, None])

        async def handle(job: Job[Any]) -> Any:
            if job.name == "bad":
                raise RuntimeError("nope from python")
            await job.progress(42)
            await job.progress({"p": [1, 2]})
            return {"ok": True, "s": "x"}

        async with py_worker(redis_url, pq.name, handle):
            await wait_counts(pq, completed=1, failed=1)
            await listener.await_for("global:drained")
        await pq.pause()
        await pq.resume()
        await listener.await_for("global:resumed")
        events = listener.terminate()
    seen: dict[str, list[list[Any]]] = {}
    for e in events:
        if e["event"].startswith("global:"):
            seen.setdefault(e["event"][len("global:") :], []).append(e["args"])
    assert seen["waiting"] == [[ok.id, None], [bad.id, None]]
    assert sorted(seen["active"]) == sorted([[ok.id, "waiting"], [bad.id, "waiting"]])
    assert seen["progress"] == [[ok.id, 42], [ok.id, {"p": [1, 2]}]]
    ((job_id, val, prev),) = seen["completed"]
    assert (job_id, prev) == (ok.id, "active")
    assert isinstance(val, str)
    assert json.loads(val) == {"ok": True, "s": "x"}
    assert seen["failed"] == [[bad.id, "nope from python", "active"]]
    assert seen["paused"] == [[]]
    assert seen["resumed"] == [[]]
    assert [] in seen["drained"]


async def test_python_hears_node_global_events(
    node_bull: NodeBull,
    bull_version: str,
    queue_name: str,
    redis_url: str,
) -> None:
    from pyqueue.events import QueueEvents

    got: list[tuple[Any, ...]] = []
    names = (
        "waiting",
        "active",
        "completed",
        "failed",
        "progress",
        "paused",
        "resumed",
        "drained",
        "delayed",
        "duplicated",
    )
    async with QueueEvents(queue_name, redis_url) as ev:
        for name in names:
            ev.on(name, lambda *args, _n=name: got.append((_n, *args)))
        ids = await nadd(
            node_bull,
            queue_name,
            [
                {"name": "ok", "data": {}},
                {"name": "bad", "data": {}},
                {"name": "later", "data": {}, "opts": {"delay": 200, "jobId": "dly"}},
            ],
        )
        worker = {
            "queue": queue_name,
            "action": "process",
            "timeoutMs": 15000,
            "settings": FAST,
            "behaviour": {
                "ok": {"progress": [42], "return": {"ok": True}},
                "bad": {"fail": "nope from node"},
                "*": {"return": "late"},
            },
        }
        with node_bull.start(worker) as proc:
            await proc.await_for("completed", id="dly")
            # Node publishes drained from its next fetch after the last job.
            await wait_until(lambda: _async_value(("drained",) in got), 5, "drained")
            proc.terminate()
        await nadmin(node_bull, queue_name, "pause")
        await nadmin(node_bull, queue_name, "resume")
        await wait_until(lambda: _async_value(any(g[0] == "resumed" for g in got)), 5, "resumed")
    by: dict[str, list[tuple[Any, ...]]] = {}
    for name, *args in got:
        by.setdefault(name, []).append(tuple(args))
    ok_id, bad_id, delayed_id = ids
    assert by["waiting"][:2] == [(ok_id,), (bad_id,)]
    assert (delayed_id,) in by["waiting"]  # promoted by the Node worker
    assert {a for a in by["active"]} == {
        (ok_id, "waiting"),
        (bad_id, "waiting"),
        (delayed_id, "waiting"),
    }
    assert by["progress"] == [(ok_id, 42)]
    assert (ok_id, {"ok": True}, "active") in by["completed"]
    assert (delayed_id, "late", "active") in by["completed"]
    assert by["failed"] == [(bad_id, "nope from node", "active")]
    assert len(by["delayed"]) >= 1
    assert isinstance(by["delayed"][0][0], float)
    assert by["paused"] == [()]
    assert by["resumed"] == [()]
    assert () in by["drained"]


async def _async_value(value: Any) -> Any:
    return value


# --- 4. stall recovery both ways ------------------------------------------------------

VICTIM = """
import asyncio, sys
from pyqueue import Worker, WorkerOptions

async def main() -> None:
    async def hang(job):
        print("processing", job.id, flush=True)
        await asyncio.Event().wait()

    concurrency = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    opts = WorkerOptions(
        lock_duration=1000, stalled_interval=0, drain_delay=1, concurrency=concurrency
    )
    worker = Worker(sys.argv[1], hang, redis_url=sys.argv[2], options=opts)
    await worker.start()
    print("ready", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


async def kill_python_victim(queue: str, redis_url: str, job_ids: list[str]) -> None:
    """Run a pyqueue worker subprocess until it holds ``job_ids``, then SIGKILL it."""
    victim = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        VICTIM,
        queue,
        redis_url,
        str(len(job_ids)),
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert victim.stdout is not None
        waiting = set(job_ids)
        async with asyncio.timeout(15):
            while waiting:
                line = (await victim.stdout.readline()).decode().split()
                assert line, "victim exited before taking its jobs"
                if line[0] == "processing":
                    waiting.discard(line[1])
        victim.send_signal(signal.SIGKILL)
        await victim.wait()
    finally:
        if victim.returncode is None:
            victim.kill()
            await victim.wait()
    assert victim.returncode == -signal.SIGKILL


async def test_killed_python_worker_recovered_by_node(
    node_bull: NodeBull,
    bull_version: str,
    pq: Queue[Any],
    raw_redis: aioredis.Redis,
    redis_url: str,
) -> None:
    job = await pq.add({"k": 1}, name="victim")
    await kill_python_victim(pq.name, redis_url, [job.id])
    assert await raw_redis.exists(_key(pq.name, f"{job.id}:lock")) == 1
    assert await raw_redis.lrange(_key(pq.name, "active"), 0, -1) == [job.id.encode()]

    events = await nrun(
        node_bull,
        pq.name,
        "process",
        until=1,
        timeoutMs=15000,
        settings=FAST,
        behaviour={"*": {"return": "recovered by node"}},
    )
    assert any(e["event"] == "stalled" and e["id"] == job.id for e in events)
    assert single(events, "completed")["result"] == "recovered by node"
    fresh = await pq.get_job(job.id)
    assert fresh is not None
    assert await fresh.get_state() == "completed"
    assert fresh.stalled_counter == 1
    assert fresh.attempts_made == 0
    assert fresh.return_value == "recovered by node"


async def test_killed_node_worker_recovered_by_python(
    node_bull: NodeBull,
    bull_version: str,
    queue_name: str,
    raw_redis: aioredis.Redis,
    redis_url: str,
) -> None:
    (job_id,) = await nadd(node_bull, queue_name, [{"data": {"k": 1}}])
    hang = {
        "queue": queue_name,
        "action": "process",
        "settings": FAST,
        "timeoutMs": 20000,
        "behaviour": {"*": {"hang": True}},
    }
    with node_bull.start(hang) as victim:
        await victim.await_for("processing", id=job_id)
        victim.kill()
    assert victim.proc.returncode == -9
    assert await raw_redis.lrange(_key(queue_name, "active"), 0, -1) == [job_id.encode()]

    stalled: list[str] = []
    runs: list[str] = []

    async def handle(job: Job[Any]) -> str:
        runs.append(job.id)
        return "recovered by python"

    async with (
        Queue[Any](queue_name, redis_url) as q,
        py_worker(
            redis_url, queue_name, handle, stalled_interval=500, lock_duration=1000
        ) as worker,
    ):
        worker.on("stalled", stalled.append)
        await wait_counts(q, timeout=10, completed=1)
    assert stalled == [job_id]
    assert runs == [job_id]
    (job,) = (await njobs(node_bull, queue_name, [job_id])).values()
    assert job["state"] == "completed"
    assert job["json"]["returnvalue"] == "recovered by python"
    assert await raw_redis.hget(_key(queue_name, job_id), "stalledCounter") == b"1"


STALL_REASON = "job stalled more than allowable limit"


async def _failed_messages(redis_url: str, queue: str) -> tuple[aioredis.Redis, Any]:
    client = aioredis.Redis.from_url(redis_url)
    pubsub = client.pubsub()
    await pubsub.subscribe(_key(queue, "failed"))
    return client, pubsub


async def _drain(client: aioredis.Redis, pubsub: Any) -> list[str]:
    out: list[str] = []
    while (m := await pubsub.get_message(timeout=0.2)) is not None:
        if m["type"] == "message":
            out.append(m["data"].decode())
    await pubsub.aclose()
    await client.aclose()
    return out


async def _stall_failed_outcome(
    raw_redis: aioredis.Redis, queue: str, keep: str, drop: str, messages: list[str]
) -> None:
    job = await raw_redis.hgetall(_key(queue, keep))
    assert job[b"failedReason"] == STALL_REASON.encode()
    assert job[b"stalledCounter"] == b"1"
    assert b"attemptsMade" not in job  # a stall is not an attempt
    assert await raw_redis.zscore(_key(queue, "failed"), keep) == int(job[b"finishedOn"])
    assert not await raw_redis.exists(_key(queue, drop))  # removeOnFail: true applied
    assert await raw_redis.zscore(_key(queue, "failed"), drop) is None
    assert await raw_redis.llen(_key(queue, "active")) == 0
    assert sorted(messages) == sorted(
        f'{{"jobId":"{i}", "val": "job stalled more than maxStalledCount"}}' for i in (keep, drop)
    )


async def test_stall_limit_zero_fails_across(
    node_bull: NodeBull,
    bull_version: str,
    queue_name: str,
    raw_redis: aioredis.Redis,
    redis_url: str,
) -> None:
    # Node-made jobs, pyqueue worker killed, Node's checker (maxStalledCount 0) fails them.
    qa = queue_name + "-a"
    keep, drop = await nadd(
        node_bull,
        qa,
        [
            {"name": "keep", "data": {}},
            {"name": "drop", "data": {}, "opts": {"removeOnFail": True}},
        ],
    )
    await kill_python_victim(qa, redis_url, [keep, drop])
    client, pubsub = await _failed_messages(redis_url, qa)
    checker = {
        "queue": qa,
        "action": "process",
        "timeoutMs": 15000,
        "settings": {**FAST, "maxStalledCount": 0},
        "behaviour": {"*": {"return": "must not run"}},
    }
    with node_bull.start(checker) as proc:
        await proc.await_for("ready")
        async with Queue[Any](qa, redis_url) as q:
            await wait_counts(q, timeout=10, failed=1, active=0)
        proc.terminate()
    assert not [e for e in proc.events if e["event"] == "processing"]
    await _stall_failed_outcome(raw_redis, qa, keep, drop, await _drain(client, pubsub))

    # pyqueue-made jobs, Node worker killed, pyqueue's checker fails them.
    qb = queue_name + "-b"
    async with Queue[Any](qb, redis_url) as q:
        keep = (await q.add({}, name="keep")).id
        drop = (await q.add({}, name="drop", remove_on_fail=True)).id
        hang = {
            "queue": qb,
            "action": "process",
            "concurrency": 2,
            "settings": FAST,
            "timeoutMs": 20000,
            "behaviour": {"*": {"hang": True}},
        }
        with node_bull.start(hang) as victim:
            await victim.await_for("processing", id=keep)
            await victim.await_for("processing", id=drop)
            victim.kill()
        client, pubsub = await _failed_messages(redis_url, qb)
        runs: list[str] = []
        stall_failed: list[str] = []
        async with py_worker(
            redis_url,
            qb,
            lambda job: runs.append(job.id),
            stalled_interval=500,
            lock_duration=1000,
            max_stalled_count=0,
        ) as worker:
            worker.on("stalled-failed", stall_failed.append)
            await wait_counts(q, timeout=10, failed=1, active=0)
    assert runs == []
    assert sorted(stall_failed) == sorted([keep, drop])
    await _stall_failed_outcome(raw_redis, qb, keep, drop, await _drain(client, pubsub))
    (job,) = (await njobs(node_bull, qb, [keep])).values()
    assert job["state"] == "failed"
    assert job["json"]["failedReason"] == STALL_REASON


# --- 5. pause / resume across ----------------------------------------------------------


async def test_pause_resume_across(
    node_bull: NodeBull,
    bull_version: str,
    pq: Queue[Any],
    raw_redis: aioredis.Redis,
    redis_url: str,
) -> None:
    nb, q = node_bull, pq.name
    assert (await nadmin(nb, q, "pause"))["ok"] is True
    assert await pq.is_paused()
    job = await pq.add({"p": 1})
    assert await raw_redis.lrange(_key(q, "paused"), 0, -1) == [job.id.encode()]
    assert await raw_redis.get(_key(q, "meta-paused")) == b"1"
    assert await raw_redis.hget(_key(q, "meta"), "paused") == b"1"
    counts = await ncounts(nb, q)
    assert counts["isPaused"] is True
    assert counts["counts"]["paused"] == 1
    assert counts["counts"]["waiting"] == 0
    assert await job.get_state() == "paused"

    calls: list[str] = []

    async def handle(j: Job[Any]) -> None:
        calls.append(j.id)

    async with py_worker(redis_url, q, handle):  # must not fetch while paused
        await asyncio.sleep(0.5)
    assert calls == []

    worker = {
        "queue": q,
        "action": "process",
        "until": 2,
        "timeoutMs": 15000,
        "settings": FAST,
        "behaviour": {"*": {"return": "after resume"}},
    }
    with nb.start(worker) as proc:
        await proc.await_for("ready")
        await pq.resume()
        assert not await raw_redis.exists(_key(q, "meta-paused"))
        await proc.await_for("completed", id=job.id)
        # and the reverse: pyqueue pauses, Node adds, Node resumes
        await pq.pause()
        (node_id,) = await nadd(nb, q, [{"data": {"p": 2}}])
        assert await pq.get_job_state(node_id) == "paused"
        assert (await nadmin(nb, q, "resume"))["ok"] is True
        await proc.await_for("completed", id=node_id)
    assert not await pq.is_paused()
    assert await pq.get_job_counts() == {
        "waiting": 0,
        "active": 0,
        "completed": 2,
        "failed": 0,
        "delayed": 0,
        "paused": 0,
    }


# --- 6. mixed fleet ----------------------------------------------------------------------


async def test_mixed_fleet_each_job_once(
    node_bull: NodeBull,
    pq: Queue[Any],
    redis_url: str,
) -> None:
    from pyqueue import BulkJob

    py_runs: list[str] = []

    async def handle(job: Job[Any]) -> str:
        py_runs.append(job.id)
        await asyncio.sleep(0.002)
        return "py"

    node = {
        "queue": pq.name,
        "action": "process",
        "concurrency": 5,
        "timeoutMs": 60000,
        "settings": FAST,
        "behaviour": {"*": {"sleepMs": 2, "return": "node"}},
    }
    with node_bull.start(node) as proc:
        await proc.await_for("ready")
        async with py_worker(redis_url, pq.name, handle, concurrency=5):
            await asyncio.gather(
                pq.add_bulk(BulkJob({"i": i}, name="py") for i in range(250)),
                nadd(
                    node_bull,
                    pq.name,
                    [{"name": "node", "data": {"i": i}} for i in range(250)],
                    bulk=True,
                ),
            )
            await wait_counts(pq, timeout=60, completed=500)
        events = await asyncio.to_thread(proc.terminate)
    node_runs = [e["id"] for e in events if e["event"] == "processing"]
    node_done = [e["id"] for e in events if e["event"] == "completed"]
    assert single(events, "done")["failed"] == 0
    all_runs = py_runs + node_runs
    assert len(all_runs) == 500
    assert len(set(all_runs)) == 500
    assert sorted(node_done) == sorted(node_runs)
    assert py_runs
    assert node_runs
    assert await pq.get_job_counts() == {
        "waiting": 0,
        "active": 0,
        "completed": 500,
        "failed": 0,
        "delayed": 0,
        "paused": 0,
    }
    counts = await ncounts(node_bull, pq.name)
    assert counts["counts"]["completed"] == 500
    results = {j.id: j.return_value for j in await pq.get_jobs("completed")}
    assert {i for i, r in results.items() if r == "py"} == set(py_runs)


# --- 7. management across -----------------------------------------------------------------


async def test_node_manages_python_jobs(
    node_bull: NodeBull,
    bull_version: str,
    pq: Queue[Any],
    raw_redis: aioredis.Redis,
    redis_url: str,
) -> None:
    nb, q = node_bull, pq.name
    done1, done2 = await pq.add({}, name="ok"), await pq.add({}, name="ok")
    bad1, bad2 = await pq.add({}, name="bad"), await pq.add({}, name="bad")
    hold = await pq.add({}, name="hold")
    release = asyncio.Event()

    async def handle(job: Job[Any]) -> str:
        if job.name == "bad":
            raise RuntimeError("python failure")
        if job.name == "hold":
            await release.wait()
        await job.log(f"line 1 of {job.id}")
        await job.log("line 2")
        return "fine"

    async with py_worker(redis_url, q, handle):
        await wait_until(pq.get_active_count, 5, "hold active")
        await wait_counts(pq, completed=2, failed=2, active=1)
        locked = await nadmin(nb, q, "remove", id=hold.id)  # refused while locked
        assert locked["ok"] is False
        assert hold.id in locked["error"]
        release.set()
        await wait_counts(pq, completed=3)
    delayed = await pq.add({}, name="later", delay=60_000)
    waiting = await pq.add({}, name="gone")

    logs = await nadmin(nb, q, "getJobLogs", id=done1.id)
    assert logs["value"] == {"logs": [f"line 1 of {done1.id}", "line 2"], "count": 2}
    assert (await nadmin(nb, q, "retry", id=bad1.id))["ok"] is True
    assert await pq.get_job_state(bad1.id) == "waiting"
    assert (await nadmin(nb, q, "retryJobs"))["ok"] is True
    assert await pq.get_job_state(bad2.id) == "waiting"
    retried = await pq.get_job(bad2.id)
    assert retried is not None
    assert retried.processed_on is None
    assert (await nadmin(nb, q, "promote", id=delayed.id))["ok"] is True
    assert await pq.get_job_state(delayed.id) == "waiting"
    assert await raw_redis.hget(_key(q, delayed.id), "delay") == b"0"
    assert (await nadmin(nb, q, "remove", id=waiting.id))["ok"] is True
    assert await pq.get_job(waiting.id) is None
    cleaned = await nadmin(nb, q, "clean", grace=0, state="completed")
    assert sorted(cleaned["value"]) == sorted([done1.id, done2.id, hold.id])
    assert await pq.get_job(done1.id) is None
    assert not await raw_redis.exists(_key(q, f"{done1.id}:logs"))

    # The retried and promoted jobs run again on pyqueue.
    async with py_worker(redis_url, q, lambda job: "second run"):
        await wait_counts(pq, completed=3, waiting=0)
    assert (await ncounts(nb, q))["counts"] == {
        "waiting": 0,
        "active": 0,
        "completed": 3,
        "failed": 0,
        "delayed": 0,
        "paused": 0,
    }
    assert (await nadmin(nb, q, "obliterate", force=True))["ok"] is True
    assert await raw_redis.keys(_key(q, "*")) == []


async def test_python_manages_node_jobs(
    node_bull: NodeBull,
    bull_version: str,
    pq: Queue[Any],
    raw_redis: aioredis.Redis,
    redis_url: str,
) -> None:
    from pyqueue import JobStateError

    nb, q = node_bull, pq.name
    ok1, ok2, bad1, bad2 = await nadd(
        nb,
        q,
        [
            {"name": "ok", "data": {}},
            {"name": "ok", "data": {}},
            {"name": "bad", "data": {}},
            {"name": "bad", "data": {}},
        ],
    )
    await nrun(
        nb,
        q,
        "process",
        until=4,
        timeoutMs=15000,
        settings=FAST,
        behaviour={
            "ok": {"log": ["node line 1", "node line 2"], "return": 1},
            "bad": {"fail": "node failure"},
        },
    )
    delayed, gone, held = await nadd(
        nb,
        q,
        [
            {"name": "later", "data": {}, "opts": {"delay": 60_000}},
            {"name": "gone", "data": {}},
            {"name": "hold", "data": {}},
        ],
    )

    assert await pq.get_job_logs(ok1) == (["node line 1", "node line 2"], 2)
    assert await pq.get_job_logs(ok1, 1, 1) == (["node line 2"], 2)
    job = await pq.get_job(bad1)
    assert job is not None
    await job.retry()
    await pq.retry_jobs()
    delayed_job = await pq.get_job(delayed)
    assert delayed_job is not None
    await delayed_job.promote()
    gone_job = await pq.get_job(gone)
    assert gone_job is not None
    await gone_job.remove()
    assert sorted(await pq.clean(0, "completed")) == sorted([ok1, ok2])

    counts = await ncounts(nb, q)
    assert counts["counts"] == {
        "waiting": 4,
        "active": 0,
        "completed": 0,
        "failed": 0,
        "delayed": 0,
        "paused": 0,
    }
    got = await njobs(nb, q, [bad1, bad2, delayed, gone, ok1])
    assert got[bad1]["state"] == got[bad2]["state"] == got[delayed]["state"] == "waiting"
    assert got[bad1]["json"]["processedOn"] in (None, 0)
    assert got[delayed]["json"]["delay"] == 0
    assert got[gone]["json"] is None
    assert got[ok1]["json"] is None

    hang = {
        "queue": q,
        "action": "process",
        "settings": FAST,
        "timeoutMs": 20000,
        "names": ["hold"],
        "behaviour": {"*": {"hang": True}},
    }
    with nb.start(hang) as proc:
        await proc.await_for("processing", id=held)
        held_job = await pq.get_job(held)
        assert held_job is not None
        with pytest.raises(JobStateError):
            await held_job.remove()
        proc.terminate()
    # The retried Node jobs run again on a Node worker.
    events = await nrun(
        nb,
        q,
        "process",
        until=3,
        timeoutMs=15000,
        settings=FAST,
        behaviour={"*": {"return": "again"}},
    )
    assert sorted(e["id"] for e in events if e["event"] == "completed") == sorted(
        [bad1, bad2, delayed]
    )
    await pq.obliterate(force=True)
    assert await raw_redis.keys(_key(q, "*")) == []


# --- retry details: the same Node-made jobs through a Node and a pyqueue worker ---------

RETRY_JOBS = [
    {"name": "st", "data": {}, "opts": {"attempts": 3, "stackTraceLimit": 2}},
    {"name": "neg", "data": {}, "opts": {"attempts": 5, "backoff": {"type": "never"}}},
    {"name": "zero", "data": {}, "opts": {"attempts": 3, "backoff": {"type": "zero"}}},
    {"name": "slow", "data": {}, "opts": {"attempts": 2, "backoff": 150}},
    {"name": "slow", "data": {}, "opts": {"attempts": 2, "backoff": 150, "jobId": "abc"}},
]


async def _retry_run(nb: NodeBull, queue: str, redis_url: str, consumer: str) -> dict[str, Any]:
    ids = await nadd(nb, queue, RETRY_JOBS)
    client = aioredis.Redis.from_url(redis_url)
    pubsub = client.pubsub()
    await pubsub.subscribe(_key(queue, "delayed"), _key(queue, "failed"))
    try:
        if consumer == "node":
            await nrun(
                nb,
                queue,
                "process",
                until=5,
                timeoutMs=15000,
                settings=FAST,
                backoffStrategies={"never": {"value": -1}, "zero": {"value": 0}},
                behaviour={
                    "st": {"failTimes": 9},
                    "neg": {"fail": "neg"},
                    "zero": {"failTimes": 2, "return": "z"},
                    "slow": {"failTimes": 1, "message": "slow", "return": "s"},
                },
            )
        else:

            async def handle(job: Job[Any]) -> Any:
                if job.name == "neg":
                    raise RuntimeError("neg")
                if job.name == "slow" and job.attempts_made < 1:
                    raise RuntimeError("slow")
                if job.name == "st" or (job.name == "zero" and job.attempts_made < 2):
                    raise RuntimeError(f"fail {job.attempts_made + 1}")
                return {"zero": "z", "slow": "s"}[job.name]

            strategies = {"never": lambda *_: -1, "zero": lambda *_: 0}
            async with (
                Queue[Any](queue, redis_url) as q,
                py_worker(redis_url, queue, handle, backoff_strategies=strategies),
            ):
                await wait_counts(q, completed=3, failed=2)
        messages: list[tuple[str, str]] = []
        while (m := await pubsub.get_message(timeout=0.2)) is not None:
            if m["type"] == "message":
                messages.append((m["channel"].decode().rsplit(":", 1)[1], m["data"].decode()))
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]
        await client.aclose()
    jobs = await njobs(nb, queue, ids)
    out: dict[str, Any] = {"ids": ids, "messages": messages}
    for job_id, job in jobs.items():
        j = job["json"]
        out[job_id] = {
            "state": job["state"],
            "attemptsMade": j["attemptsMade"],
            "failedReason": j["failedReason"],
            "returnvalue": j["returnvalue"],
            "traces": [re.findall(r"(?:Error: )(\w+(?: \d)?)", t)[-1] for t in j["stacktrace"]],
        }
    return out


async def test_retry_details_match_node_worker(
    node_bull: NodeBull,
    bull_version: str,
    queue_name: str,
    redis_url: str,
) -> None:
    node = await _retry_run(node_bull, queue_name + "-node", redis_url, "node")
    py = await _retry_run(node_bull, queue_name + "-py", redis_url, "py")
    st, neg, zero, slow, abc = py["ids"]
    assert node["ids"] == py["ids"]
    assert py[st] == {
        "state": "failed",
        "attemptsMade": 3,
        "failedReason": "fail 3",
        "returnvalue": None,
        "traces": ["fail 2", "fail 3"],
    }
    # stackTraceLimit: up to 4.14 Bull keeps the first limit-1 traces plus the newest;
    # 4.15+ (and pyqueue) the newest `limit` ones.  Same array format, other selection.
    newest = node_bull.has("saveStacktrace")
    node_st_traces = ["fail 2", "fail 3"] if newest else ["fail 1", "fail 3"]
    assert node[st] == {**py[st], "traces": node_st_traces}
    for job_id in (neg, zero, slow, abc):
        assert node[job_id] == py[job_id], job_id
    assert py[neg] == {
        "state": "failed",
        "attemptsMade": 1,
        "failedReason": "neg",
        "returnvalue": None,
        "traces": ["neg"],
    }
    assert py[zero]["state"] == "completed"
    assert py[zero]["attemptsMade"] == 2
    for run in (node, py):
        failed = [json.loads(d)["jobId"] for c, d in run["messages"] if c == "failed"]
        assert sorted(failed) == sorted([st, neg])  # one publish per final failure
        # A backoff retry publishes the score / 4096 = due + (id & 4095) / 4096 on the
        # delayed channel (updateDelaySet re-announces the same value).
        low_bits = {round(float(d) % 1 * 4096) for c, d in run["messages"] if c == "delayed"}
        assert low_bits == {0, int(slow) & 4095}, run["messages"]


# --- robustness: odd Node-made jobs on a pyqueue worker -------------------------------------


async def test_odd_node_jobs_on_python_worker(
    node_bull: NodeBull,
    bull_version: str,
    pq: Queue[Any],
    redis_url: str,
) -> None:
    # Big, but under the 64 KiB pipe buffer: the driver's process.exit() can cut a
    # longer stdout line (a harness limit, not Bull's or pyqueue's).
    big = {"blob": "x" * 30_000, "list": list(range(1000))}
    jobs: list[dict[str, Any]] = [
        {"name": "echo", "data": "just a string"},
        {"name": "echo", "data": {"raw": 1}, "opts": {"preventParsingData": True}},
        {"name": "naïve ✓ 名前", "data": {"u": "ü ✓ 😀"}, "opts": {"jobId": "ü:1:x"}},
        {"name": "echo", "data": big},
        {"name": "echo", "data": [1, None, True, 2.5]},
    ]
    ids = await nadd(node_bull, pq.name, jobs)
    assert ids[2] == "ü:1:x"
    seen: dict[str, Any] = {}

    async def handle(job: Job[Any]) -> Any:
        seen[job.id] = job.data
        return job.data if job.id != ids[3] else len(job.data["blob"])

    async with py_worker(redis_url, pq.name, handle):
        await wait_counts(pq, completed=5)
    assert seen[ids[0]] == "just a string"
    assert seen[ids[2]] == {"u": "ü ✓ 😀"}
    assert seen[ids[3]] == big
    assert seen[ids[4]] == [1, None, True, 2.5]
    got = await njobs(node_bull, pq.name, ids)
    assert all(g["state"] == "completed" for g in got.values())
    assert got[ids[0]]["json"]["returnvalue"] == "just a string"
    assert got[ids[1]]["json"]["data"] == '{"raw":1}'  # Node leaves it unparsed
    assert seen[ids[1]] == '{"raw":1}'  # as Node's job.data: the raw text
    assert got[ids[1]]["json"]["returnvalue"] == '{"raw":1}'
    assert got[ids[2]]["json"]["name"] == "naïve ✓ 名前"
    assert got[ids[2]]["json"]["returnvalue"] == {"u": "ü ✓ 😀"}
    assert got[ids[3]]["json"]["returnvalue"] == 30_000
