"""Queue management: getters, counts, logs, pause, clean, empty, obliterate, remove,
retry, promote, metrics and the rate limiter."""

from __future__ import annotations

import asyncio
import base64
from dataclasses import replace

import pytest

from pyqueue import JobStateError, RateLimiter
from pyqueue.job import now_ms


async def _finish_all(queue, make_worker, handler, n: int, eventually) -> None:
    """Run a worker until ``n`` jobs finished, then close it."""
    worker = await make_worker(handler)
    await eventually(lambda: _finished(queue, n))
    await worker.close()


async def _finished(queue, n: int) -> bool:
    counts = await queue.get_job_counts("completed", "failed")
    return counts["completed"] + counts["failed"] == n


async def test_get_job_and_to_json(make_queue):
    queue = make_queue()
    job = await queue.add({"a": 1}, name="n", attempts=2)
    fetched = await queue.get_job(job.id)
    assert fetched is not None
    assert fetched.data == {"a": 1}
    assert fetched.name == "n"
    assert fetched.opts.attempts == 2
    as_json = fetched.to_json()
    assert as_json["id"] == job.id
    assert as_json["opts"]["attempts"] == 2
    assert as_json["attemptsMade"] == 0
    assert await queue.get_job("nope") is None


async def test_counts_and_getters_per_state(make_queue, make_worker, eventually):
    queue = make_queue()
    for i in range(3):
        await queue.add(i, name="ok")
    await queue.add(99, name="bad")
    await queue.add("later", delay=60_000)

    def handler(job):
        if job.name == "bad":
            raise ValueError("bad job")
        return job.data

    await _finish_all(queue, make_worker, handler, 4, eventually)
    for i in range(3, 6):
        await queue.add(i, name="ok")

    assert await queue.get_job_counts() == {
        "waiting": 3, "active": 0, "completed": 3, "failed": 1, "delayed": 1, "paused": 0,
    }
    assert await queue.get_waiting_count() == 3
    assert await queue.get_completed_count() == 3
    assert await queue.get_failed_count() == 1
    assert await queue.get_delayed_count() == 1
    assert await queue.get_active_count() == 0
    assert await queue.get_paused_count() == 0
    assert await queue.count() == 4

    # Lists: newest first by default, next-to-run first with asc.
    waiting = [j.data for j in await queue.get_jobs("waiting")]
    assert waiting == [5, 4, 3]
    assert [j.data for j in await queue.get_jobs("waiting", asc=True)] == [3, 4, 5]
    assert [j.data for j in await queue.get_jobs("waiting", 0, 0, asc=True)] == [3]
    assert [j.data for j in await queue.get_jobs("waiting", 0, 1)] == [5, 4]
    # Zsets: newest finished first by default.
    completed = await queue.get_jobs("completed")
    # Jobs can finish within the same millisecond: compare as a set.
    assert sorted(j.data for j in completed) == [0, 1, 2]
    finished = [j.finished_on for j in completed]
    assert finished == sorted(finished, reverse=True)
    asc = [j.finished_on for j in await queue.get_jobs("completed", asc=True)]
    assert asc == sorted(asc)
    both = await queue.get_jobs(["failed", "delayed"])
    assert [j.data for j in both] == [99, "later"]
    assert (await queue.get_jobs("failed"))[0].failed_reason == "bad job"


async def test_get_job_logs(make_queue, make_worker):
    queue = make_queue()

    async def handler(job):
        for i in range(4):
            await job.log(f"line {i}")

    job = await queue.add({})
    await make_worker(handler)
    await job.finished(timeout=10)
    assert await queue.get_job_logs(job.id) == (["line 0", "line 1", "line 2", "line 3"], 4)
    assert await queue.get_job_logs(job.id, 1, 2) == (["line 1", "line 2"], 4)
    assert await queue.get_job_logs(job.id, 0, 1, asc=False) == (["line 3", "line 2"], 4)
    assert await queue.get_job_logs("missing") == ([], 0)


async def test_global_pause_and_resume(
    make_queue, make_worker, raw_redis, queue_name, eventually, messages
):
    queue = make_queue()
    pubsub = raw_redis.pubsub()
    await pubsub.subscribe(f"bull:{queue_name}:paused", f"bull:{queue_name}:resumed")
    await queue.add("before")
    await queue.pause()
    base = f"bull:{queue_name}:"
    assert await raw_redis.get(base + "meta-paused") == b"1"
    assert await raw_redis.hgetall(base + "meta") == {b"paused": b"1"}
    assert await raw_redis.exists(base + "wait") == 0
    assert await queue.is_paused()
    await queue.add("during")
    assert await raw_redis.llen(base + "paused") == 2
    assert (await queue.get_job_counts())["paused"] == 2
    assert (await queue.get_job_counts())["waiting"] == 0

    done: list[str] = []
    await make_worker(lambda job: done.append(job.data))
    await asyncio.sleep(0.6)
    assert done == []

    await queue.resume()
    assert await raw_redis.exists(base + "meta-paused") == 0
    assert await raw_redis.hexists(base + "meta", "paused") == 0
    assert not await queue.is_paused()
    await eventually(lambda: len(done) == 2)
    assert done == ["before", "during"]
    assert await messages(pubsub, 2) == [
        (base + "paused", "paused"), (base + "resumed", "resumed")
    ]
    await pubsub.aclose()


async def test_clean_by_grace_state_and_limit(make_queue, make_worker, eventually):
    queue = make_queue()
    for i in range(5):
        await queue.add(i)
    await _finish_all(queue, make_worker, lambda job: None, 5, eventually)
    assert await queue.clean(60_000, "completed") == []
    await asyncio.sleep(0.05)
    cleaned: list[tuple[list[str], str]] = []
    queue.on("cleaned", lambda ids, state: cleaned.append((ids, state)))
    removed = await queue.clean(0, "completed", limit=2)
    assert len(removed) == 2
    assert await queue.get_completed_count() == 3
    removed_rest = await queue.clean(0, "completed")
    assert len(removed_rest) == 3
    assert await queue.get_completed_count() == 0
    assert cleaned[0] == (removed, "completed")
    for job_id in removed + removed_rest:
        assert await queue.get_job(job_id) is None


async def test_clean_waiting_jobs(make_queue, raw_redis, queue_name):
    queue = make_queue()
    old = await queue.add("old", timestamp=now_ms() - 10_000)
    new = await queue.add("new")
    assert await queue.clean(5000, "wait") == [old.id]
    assert await raw_redis.lrange(f"bull:{queue_name}:wait", 0, -1) == [new.id.encode()]


async def test_empty_drops_waiting_paused_delayed(make_queue, raw_redis, queue_name):
    queue = make_queue()
    waiting = await queue.add("w", priority=2)
    delayed = await queue.add("d", delay=60_000)
    await queue.pause()
    paused = await queue.add("p")
    await queue.empty()
    counts = await queue.get_job_counts()
    assert counts["waiting"] == counts["paused"] == counts["delayed"] == 0
    assert not await queue.is_paused()  # Bull's empty() unpauses
    assert await queue.get_job(waiting.id) is None
    assert await queue.get_job(paused.id) is None
    assert await raw_redis.exists(f"bull:{queue_name}:priority") == 0
    del delayed


async def test_empty_racing_adds_orphans_no_job(make_queue, raw_redis, queue_name):
    """Bug: empty() read the lists in one MULTI and deleted in a second, so a job
    added in between lost its list entry and left its hash behind (orphaned)."""
    queue = make_queue()
    producer = make_queue()  # another connection, as another process would be
    added: list[str] = []
    stop = asyncio.Event()

    async def produce() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            kind = n % 3
            if kind == 1:
                job = await producer.add({"n": n}, delay=60_000)
            elif kind == 2:
                job = await producer.add({"n": n}, priority=2)
            else:
                job = await producer.add({"n": n})
            added.append(job.id)

    tasks = [asyncio.create_task(produce()) for _ in range(3)]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 2.0
    empties = 0
    try:
        while loop.time() < deadline:
            await queue.empty()
            empties += 1
            await asyncio.sleep(0)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    assert empties > 10
    assert len(added) > empties
    base = f"bull:{queue_name}:"
    async with raw_redis.pipeline(transaction=True) as pipe:
        pipe.lrange(base + "wait", 0, -1)
        pipe.zrange(base + "delayed", 0, -1)
        pipe.zrange(base + "priority", 0, -1)
        for job_id in added:
            pipe.exists(base + job_id)
        wait, delayed, priority, *exists = await pipe.execute()
    listed = {i.decode() for i in (*wait, *delayed)}
    orphans = [i for i, e in zip(added, exists, strict=True) if e and i not in listed]
    hashless = [i for i, e in zip(added, exists, strict=True) if not e and i in listed]
    assert orphans == [], f"{len(orphans)} job hashes in no list"
    assert hashless == [], f"{len(hashless)} listed jobs without a hash"
    assert {i.decode() for i in priority} <= listed


async def test_empty_clears_limited_sets_and_keeps_other_queues(
    make_queue, raw_redis, queue_name
):
    queue = make_queue()
    other = make_queue(name=f"{queue_name}-other")
    kept = await other.add("other")
    await queue.add("w")
    base = f"bull:{queue_name}:"
    # As the rate limiter leaves a parked job: in a limited set, and in the index.
    for job_id, limited in (("x", "limiter:limited"), ("y", "limiter:g1:limited")):
        await raw_redis.sadd(base + limited, job_id)
        await raw_redis.hset(base + "limiter:index", job_id, base + limited)
    await raw_redis.set(base + "limiter", 3)
    await queue.empty()
    assert await raw_redis.keys(base + "*limit*") == []
    assert await raw_redis.keys(base + "*") == [(base + "id").encode()]
    assert await other.get_job(kept.id) is not None


async def test_obliterate_refuses_active_jobs_without_force(
    make_queue, make_worker, raw_redis, queue_name, eventually
):
    queue = make_queue()
    release = asyncio.Event()

    async def handler(job):
        await release.wait()

    await queue.add("active one")
    for i in range(3):
        await queue.add(i, delay=60_000 if i == 0 else 0)
    worker = await make_worker(handler)
    await eventually(queue.get_active_count)
    with pytest.raises(JobStateError):
        await queue.obliterate()
    release.set()
    await worker.close()
    await queue.obliterate()
    assert await raw_redis.keys(f"bull:{queue_name}:*") == []


async def test_obliterate_with_force(make_queue, make_worker, raw_redis, queue_name, eventually):
    queue = make_queue()
    for i in range(3):
        await queue.add(i)
    await queue.add("d", delay=60_000)
    await queue.add("x", name="fail")
    await _finish_all(queue, make_worker, _fail_named, 4, eventually)
    await raw_redis.rpush(f"bull:{queue_name}:1:logs", "a line")
    # Simulate a job held by a (dead) worker.
    await queue.add("held")
    await queue.scripts.move_to_active(token="other", lock_duration=60_000, now=now_ms())
    await queue.obliterate(force=True, count=2)
    assert await raw_redis.keys(f"bull:{queue_name}:*") == []


def _fail_named(job):
    if job.name == "fail":
        raise ValueError("fail")
    return job.data


async def test_remove_job_and_locked_job(
    make_queue, make_worker, raw_redis, queue_name, eventually
):
    queue = make_queue()
    job = await queue.add("remove me", priority=3)
    removed: list[str] = []
    queue.on("removed", lambda j: removed.append(j.id))
    await job.remove()
    assert removed == [job.id]
    assert await raw_redis.keys(f"bull:{queue_name}:{job.id}*") == []
    assert await raw_redis.llen(f"bull:{queue_name}:wait") == 0
    assert await raw_redis.zcard(f"bull:{queue_name}:priority") == 0

    release = asyncio.Event()

    async def handler(j):
        await release.wait()

    locked = await queue.add("busy")
    await make_worker(handler)
    await eventually(lambda: raw_redis.exists(f"bull:{queue_name}:{locked.id}:lock"))
    with pytest.raises(JobStateError, match=f"Could not remove job {locked.id}"):
        await locked.remove()
    assert await queue.get_job(locked.id) is not None
    release.set()
    await locked.finished(timeout=10)


async def test_retry_failed_job(make_queue, make_worker, raw_redis, queue_name):
    queue = make_queue()
    runs: list[int] = []

    def handler(job):
        runs.append(1)
        if len(runs) == 1:
            raise ValueError("first run fails")
        return "second run"

    job = await queue.add({})
    await make_worker(handler)
    with pytest.raises(Exception, match="first run fails"):
        await job.finished(timeout=10)
    with pytest.raises(JobStateError, match="already retried or has not failed"):
        await (await queue.add({}, delay=60_000)).retry()
    await job.retry()
    assert await job.finished(timeout=10) == "second run"
    stored = await raw_redis.hgetall(f"bull:{queue_name}:{job.id}")
    assert b"retriedOn" in stored
    assert stored[b"attemptsMade"] == b"1"  # not reset, as in Bull
    missing = await queue.add({}, delay=60_000)
    await missing.remove()
    with pytest.raises(JobStateError, match="doesn't exist"):
        await missing.retry()


async def test_retry_jobs_moves_all_failed_back(make_queue, make_worker, eventually):
    queue = make_queue()
    attempts: dict[str, int] = {}

    def handler(job):
        attempts[job.id] = attempts.get(job.id, 0) + 1
        if attempts[job.id] == 1:
            raise ValueError("first")

    for i in range(3):
        await queue.add(i)
    await make_worker(handler)
    await eventually(lambda: _done_failed(queue, 3))
    await queue.retry_jobs()
    await eventually(lambda: _finished_completed(queue, 3))
    assert attempts == {"1": 2, "2": 2, "3": 2}


async def _done_failed(queue, n):
    return await queue.get_failed_count() == n


async def _finished_completed(queue, n):
    return await queue.get_completed_count() == n


async def test_promote_delayed_job(make_queue, raw_redis, queue_name):
    queue = make_queue()
    job = await queue.add("soon", delay=60_000)
    await job.promote()
    assert await job.get_state() == "waiting"
    assert await raw_redis.hget(f"bull:{queue_name}:{job.id}", "delay") == b"0"
    assert await raw_redis.zcard(f"bull:{queue_name}:delayed") == 0
    with pytest.raises(JobStateError):
        await job.promote()


async def test_remove_jobs_by_pattern(make_queue, raw_redis, queue_name):
    queue = make_queue()
    for name in ("user-1", "user-2", "order-1"):
        await queue.add(name, job_id=name)
    await raw_redis.rpush(f"bull:{queue_name}:user-1:logs", "l")
    removed = await queue.remove_jobs("user-*")
    assert sorted(removed) == ["user-1", "user-2"]
    assert await raw_redis.lrange(f"bull:{queue_name}:wait", 0, -1) == [b"order-1"]
    assert await raw_redis.exists(f"bull:{queue_name}:user-1:logs") == 0


async def test_metrics(make_queue, make_worker, fast, eventually):
    queue = make_queue()
    for i in range(4):
        await queue.add(i, name="fail" if i == 3 else "ok")
    await make_worker(_fail_named, options=replace(fast, metrics_max_data_points=10))
    await eventually(lambda: _finished(queue, 4))
    completed = await queue.get_metrics("completed")
    failed = await queue.get_metrics("failed")
    assert completed["meta"]["count"] == 3
    assert completed["meta"]["prevCount"] == 0
    assert completed["meta"]["prevTS"] > 0
    assert completed["data"] == []
    assert completed["count"] == 0
    assert failed["meta"]["count"] == 1


async def test_no_metrics_without_setting(make_queue, make_worker, eventually, raw_redis,
                                          queue_name):
    queue = make_queue()
    await queue.add(1)
    await _finish_all(queue, make_worker, lambda job: None, 1, eventually)
    assert await raw_redis.exists(f"bull:{queue_name}:metrics:completed") == 0


async def test_rate_limiter(make_queue, make_worker, fast, raw_redis, queue_name, eventually):
    queue = make_queue()
    starts: list[int] = []
    for i in range(5):
        await queue.add(i)
    limiter = RateLimiter(max=2, duration=1000)
    await make_worker(
        lambda job: starts.append(now_ms()), options=replace(fast, limiter=limiter, concurrency=3)
    )
    await eventually(lambda: len(starts) >= 2)
    ttl = await raw_redis.pttl(f"bull:{queue_name}:limiter")
    assert 0 < ttl <= 1000
    await eventually(lambda: _finished_completed(queue, 5), timeout=15)
    starts.sort()
    # Any three consecutive starts span at least one window (minus clock slack).
    for first, third in zip(starts, starts[2:], strict=False):
        assert third - first >= 900, starts
    assert await raw_redis.scard(f"bull:{queue_name}:limiter:limited") == 0


async def test_rate_limiter_groups(
    make_queue, make_worker, fast, raw_redis, queue_name, eventually
):
    """Bull's groupKey: ids end in ':<group>' and each group has its own window."""
    queue = make_queue(limiter_group_key="store.id")
    starts: dict[str, list[int]] = {"a": [], "b": []}
    jobs = [await queue.add({"store": {"id": g}, "i": i}) for i in range(3) for g in ("a", "b")]
    assert {j.id.rsplit(":", 1)[1] for j in jobs} == {"a", "b"}
    custom = await queue.add({"store": {"id": "a"}}, job_id="mine")
    assert custom.id == "mine:a"
    limiter = RateLimiter(max=2, duration=1000, group_key="store.id")

    def handler(job):
        starts[job.data["store"]["id"]].append(now_ms())

    await make_worker(handler, options=replace(fast, limiter=limiter, concurrency=4))
    await eventually(lambda: len(starts["a"]) + len(starts["b"]) >= 4)
    assert await raw_redis.exists(f"bull:{queue_name}:limiter:a") == 1
    assert await raw_redis.exists(f"bull:{queue_name}:limiter:b") == 1
    await eventually(lambda: _finished_completed(queue, 7), timeout=15)
    for group_starts in starts.values():
        group_starts.sort()
        for first, third in zip(group_starts, group_starts[2:], strict=False):
            assert third - first >= 900, starts


async def test_get_workers_lists_this_queues_workers_by_bulls_connection_name(
    make_queue, make_worker, queue_name, eventually
):
    # Length a multiple of 3: its base64 name is a prefix of the longer queue's.
    name = queue_name + "x" * (-len(queue_name) % 3)
    longer = name + "d"
    assert base64.b64encode(longer.encode()).startswith(base64.b64encode(name.encode()))
    queue, other = make_queue(name=name), make_queue(name=longer)
    assert await queue.get_workers() == []
    worker = await make_worker(lambda job: None, queue=name)
    await make_worker(lambda job: None, queue=longer)
    await eventually(lambda: _has_workers(other, 1))
    await eventually(lambda: _has_workers(queue, 1))
    (entry,) = await queue.get_workers()
    assert entry["name"] == name
    assert int(entry["id"]) > 0
    await worker.close()
    await eventually(lambda: _has_workers(queue, 0))
    assert len(await other.get_workers()) == 1


async def _has_workers(queue, n: int) -> bool:
    return len(await queue.get_workers()) == n
