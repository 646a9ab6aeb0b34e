"""Worker behaviour: handlers, concurrency, fetch-next, results, events, shutdown."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import replace
from typing import Any

import pytest

from pyqueue import BulkJob, JobFailedError, KeepJobs, Queue, UnrecoverableError, Worker
from pyqueue.job import now_ms


async def _client_count(raw) -> int:
    return len(await raw.client_list())


async def test_worker_from_queue_object_closes_its_connections(
    redis_url, queue_name, raw_redis, fast
):
    await raw_redis.ping()
    baseline = await _client_count(raw_redis)
    queue: Queue[Any] = Queue(queue_name, redis_url)
    await queue.add({})
    done = asyncio.Event()
    worker = Worker(queue, lambda job: done.set(), options=fast)
    await worker.start()
    await asyncio.wait_for(done.wait(), 10)
    await worker.close(timeout=1)
    await queue.close()
    await asyncio.sleep(0.1)
    assert await _client_count(raw_redis) == baseline


async def _counts(queue, *states):
    return await queue.get_job_counts(*states)


async def test_async_and_sync_handlers(make_queue, make_worker, eventually):
    queue = make_queue()
    threads: dict[str, str] = {}

    async def run_async(job):
        threads["async"] = threading.current_thread().name
        return job.data * 2

    def run_sync(job):
        threads["sync"] = threading.current_thread().name
        time.sleep(0.05)  # blocking is fine: this runs in a thread
        return job.data + 1

    a = await queue.add(20, name="a")
    s = await queue.add(20, name="s")
    await make_worker({"a": run_async, "s": run_sync})
    assert await a.finished(timeout=10) == 40
    assert await s.finished(timeout=10) == 21
    assert threads["async"] == threading.current_thread().name
    assert threads["sync"] != threading.current_thread().name


async def test_handler_per_name_with_fallback_and_missing(make_queue, make_worker, eventually):
    queue = make_queue()
    named = await queue.add({}, name="resize")
    other = await queue.add({}, name="other")
    await make_worker({"resize": lambda job: "resized", "*": lambda job: f"star:{job.name}"})
    assert await named.finished(timeout=10) == "resized"
    assert await other.finished(timeout=10) == "star:other"


async def test_missing_handler_fails_job(make_queue, make_worker):
    queue = make_queue()
    job = await queue.add({}, name="unknown")
    await make_worker({"known": lambda job: 1})
    with pytest.raises(JobFailedError, match="Missing process handler for job type unknown"):
        await job.finished(timeout=10)
    stored = await queue.get_job(job.id)
    assert stored.failed_reason == "Missing process handler for job type unknown"


async def test_concurrency_overlaps_jobs(make_queue, make_worker, fast, eventually):
    queue = make_queue()
    running = 0
    peak = 0
    release = asyncio.Event()

    async def handler(job):
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await release.wait()
        running -= 1

    for i in range(6):
        await queue.add(i)
    await make_worker(handler, options=replace(fast, concurrency=4))
    await eventually(lambda: peak == 4)
    assert (await _counts(queue, "active"))["active"] == 4
    release.set()
    await eventually(lambda: _done(queue, 6))
    assert peak == 4


async def _done(queue, n: int, state: str = "completed") -> bool:
    return (await queue.get_job_counts(state))[state] == n


async def test_sync_handlers_overlap_in_threads(make_queue, make_worker, fast, eventually):
    queue = make_queue()
    barrier = threading.Barrier(3, timeout=10)

    def handler(job):
        barrier.wait()  # only returns once three handlers run at the same time
        return job.data

    for i in range(3):
        await queue.add(i)
    await make_worker(handler, options=replace(fast, concurrency=3))
    await eventually(lambda: _done(queue, 3))


async def test_draining_a_backlog_costs_about_one_script_call_per_job(
    make_queue, make_worker, fast, raw_redis, calls, eventually
):
    queue = make_queue()
    await make_worker(lambda job: None, options=replace(fast, guard_interval=5000))
    await asyncio.sleep(0.3)
    before = await calls(raw_redis, "evalsha")
    n = 40
    await queue.add_bulk([BulkJob(i) for i in range(n)])
    await eventually(lambda: _done(queue, n))
    used = await calls(raw_redis, "evalsha") - before - n  # minus the adds
    # One moveToFinished per job (which also fetches the next) plus a few fetches
    # and background duties; without fetch-next it would be 2 per job.
    assert used < n * 1.3, used


async def test_return_value_and_completed_event(
    make_queue, make_worker, raw_redis, queue_name, messages
):
    queue = make_queue()
    pubsub = raw_redis.pubsub()
    await pubsub.subscribe(f"bull:{queue_name}:completed")
    try:
        job = await queue.add({}, name="obj")
        none_job = await queue.add({}, name="none")
        await make_worker({"obj": lambda job: {"ok": True, "n": 3}, "none": lambda job: None})
        assert await job.finished(timeout=10) == {"ok": True, "n": 3}
        assert await none_job.finished(timeout=10) is None
        payloads = [data for _, data in await messages(pubsub, 2)]
    finally:
        await pubsub.aclose()
    assert payloads[0] == json.dumps(
        {"jobId": job.id, "val": '{"ok":true,"n":3}'}, separators=(",", ":")
    )
    assert payloads[1] in (f'{{"jobId":"{none_job.id}","val":"null"}}',
                           f'{{"jobId":"{none_job.id}"}}')
    stored = await raw_redis.hgetall(f"bull:{queue_name}:{job.id}")
    assert stored[b"returnvalue"] == b'{"ok":true,"n":3}'
    assert int(stored[b"finishedOn"]) >= int(stored[b"processedOn"]) >= int(stored[b"timestamp"])
    assert await raw_redis.zscore(f"bull:{queue_name}:completed", job.id) == int(
        stored[b"finishedOn"]
    )
    assert await raw_redis.hget(f"bull:{queue_name}:{none_job.id}", "returnvalue") == b"null"
    assert await raw_redis.exists(f"bull:{queue_name}:{job.id}:lock") == 0
    assert await raw_redis.llen(f"bull:{queue_name}:active") == 0


@pytest.mark.parametrize(
    ("option", "expected_kept"),
    [(True, 0), (False, 4), (2, 2), (KeepJobs(count=1), 1), (KeepJobs(count=0), 0), (-1, 4)],
)
async def test_remove_on_complete(
    make_queue, make_worker, raw_redis, queue_name, eventually, option, expected_kept
):
    queue = make_queue()
    jobs = [await queue.add(i, remove_on_complete=option) for i in range(4)]
    for job in jobs:
        await queue.client.rpush(f"bull:{queue_name}:{job.id}:logs", "line")
    worker = await make_worker(lambda job: job.data, start=False)
    done: list[str] = []
    worker.on("completed", lambda job, result: done.append(job.id))
    await worker.start()
    await eventually(lambda: len(done) == 4)
    kept = [i.decode() for i in await raw_redis.zrange(f"bull:{queue_name}:completed", 0, -1)]
    assert len(kept) == expected_kept
    assert kept == [j.id for j in jobs][len(jobs) - expected_kept:]
    for job in jobs:
        exists = job.id in kept
        assert await raw_redis.exists(f"bull:{queue_name}:{job.id}") == exists
        assert await raw_redis.exists(f"bull:{queue_name}:{job.id}:logs") == exists


async def test_remove_on_complete_by_age(make_queue, make_worker, raw_redis, queue_name):
    queue = make_queue()
    await make_worker(lambda job: None)
    old = await queue.add("old")
    await old.finished(timeout=10)
    await asyncio.sleep(1.1)
    new = await queue.add("new", remove_on_complete=KeepJobs(age=1))
    await new.finished(timeout=10)
    assert await raw_redis.zrange(f"bull:{queue_name}:completed", 0, -1) == [new.id.encode()]
    assert await queue.get_job(old.id) is None


@pytest.mark.parametrize(("option", "kept"), [(True, 0), (1, 1), (None, 2)])
async def test_remove_on_fail(make_queue, make_worker, raw_redis, queue_name, option, kept):
    queue = make_queue()
    extra = {} if option is None else {"remove_on_fail": option}
    jobs = [await queue.add(i, **extra) for i in range(2)]

    def boom(job):
        raise ValueError(f"boom {job.data}")

    outcomes = asyncio.gather(*(job.finished(timeout=10) for job in jobs), return_exceptions=True)
    await asyncio.sleep(0.1)  # subscribed before anything can finish
    await make_worker(boom)
    for job, outcome in zip(jobs, await outcomes, strict=True):
        assert isinstance(outcome, JobFailedError)
        assert outcome.reason == f"boom {job.data}"
    assert await raw_redis.zcard(f"bull:{queue_name}:failed") == kept
    assert await raw_redis.exists(f"bull:{queue_name}:{jobs[0].id}") == (kept == 2)


async def test_progress_log_update_from_handler(
    make_queue, make_worker, raw_redis, queue_name, eventually, messages
):
    queue = make_queue()
    progress_events: list[tuple[str, Any]] = []
    queue_events = raw_redis.pubsub()
    await queue_events.subscribe(f"bull:{queue_name}:progress")

    async def handler(job):
        await job.progress(42)
        await job.log("hello log")
        assert await job.log("second") == 2
        await job.progress({"p": 1})
        await job.update({**job.data, "seen": True})
        return "str"

    job = await queue.add({"a": 1})
    worker = await make_worker(handler)
    worker.on("progress", lambda j, value: progress_events.append((j.id, value)))
    assert await job.finished(timeout=10) == "str"
    stored = await raw_redis.hgetall(f"bull:{queue_name}:{job.id}")
    assert stored[b"progress"] == b'{"p":1}'
    assert json.loads(stored[b"data"]) == {"a": 1, "seen": True}
    assert stored[b"returnvalue"] == b'"str"'
    assert await queue.get_job_logs(job.id) == (["hello log", "second"], 2)
    published = [data for _, data in await messages(queue_events, 2)]
    await queue_events.aclose()
    assert published == [
        f'{{"jobId":"{job.id}","progress":42}}', f'{{"jobId":"{job.id}","progress":{{"p":1}}}}'
    ]
    await eventually(lambda: len(progress_events) == 2)
    assert progress_events == [(job.id, 42), (job.id, {"p": 1})]


async def test_timeout_fails_attempt_and_retries(make_queue, make_worker, eventually):
    queue = make_queue()
    runs = 0

    async def slow(job):
        nonlocal runs
        runs += 1
        await asyncio.sleep(5)

    job = await queue.add({}, timeout=200, attempts=2)
    await make_worker(slow)
    with pytest.raises(JobFailedError, match=r"^Promise timed out after 200 milliseconds$"):
        await job.finished(timeout=10)
    stored = await queue.get_job(job.id)
    assert stored.attempts_made == 2
    assert runs == 2
    assert stored.failed_reason == "Promise timed out after 200 milliseconds"
    assert len(stored.stacktrace) == 2


async def test_unrecoverable_error_skips_attempts(make_queue, make_worker):
    queue = make_queue()
    runs = 0

    def handler(job):
        nonlocal runs
        runs += 1
        raise UnrecoverableError("give up")

    job = await queue.add({}, attempts=5)
    await make_worker(handler)
    with pytest.raises(JobFailedError, match="give up"):
        await job.finished(timeout=10)
    assert runs == 1
    assert (await queue.get_job(job.id)).attempts_made == 1


async def test_discard_skips_attempts(make_queue, make_worker):
    queue = make_queue()
    runs = 0

    async def handler(job):
        nonlocal runs
        runs += 1
        job.discard()
        raise RuntimeError("discarded")

    job = await queue.add({}, attempts=5)
    await make_worker(handler)
    with pytest.raises(JobFailedError, match="discarded"):
        await job.finished(timeout=10)
    assert runs == 1


async def test_local_events(make_queue, make_worker, fast, eventually):
    queue = make_queue()
    seen: list[tuple[str, Any]] = []

    async def handler(job):
        await job.progress(50)
        if job.data == "bad":
            raise ValueError("nope")
        return job.data

    worker = await make_worker(handler, start=False)
    worker.on("active", lambda job: seen.append(("active", job.id)))
    worker.on("completed", lambda job, result: seen.append(("completed", (job.id, result))))
    worker.on("failed", lambda job, exc: seen.append(("failed", (job.id, str(exc)))))
    worker.on("progress", lambda job, value: seen.append(("progress", (job.id, value))))
    worker.on("drained", lambda: seen.append(("drained", None)))
    ok = await queue.add("good")
    bad = await queue.add("bad")
    await worker.start()
    await eventually(lambda: ("drained", None) in seen and len(seen) >= 7)
    assert seen.index(("active", ok.id)) < seen.index(("progress", (ok.id, 50)))
    assert seen.index(("progress", (ok.id, 50))) < seen.index(("completed", (ok.id, "good")))
    assert ("failed", (bad.id, "nope")) in seen
    assert ("active", bad.id) in seen


async def test_events_async_iterator(make_queue, make_worker):
    queue = make_queue()
    worker = await make_worker(lambda job: job.data, start=False)
    stream = worker.events("completed")
    job = await queue.add(7)
    await worker.start()
    event = await asyncio.wait_for(anext(stream), 10)
    await stream.aclose()
    assert event.name == "completed"
    assert event.args[0].id == job.id
    assert event.args[1] == 7


async def test_local_pause_and_resume(make_queue, make_worker, eventually):
    queue = make_queue()
    done: list[Any] = []
    worker = await make_worker(lambda job: done.append(job.data))
    await asyncio.sleep(0.1)  # the fetch loop is now blocked on the empty queue
    await worker.pause()
    await queue.add("while paused")
    await asyncio.sleep(0.6)
    assert done == []
    assert (await _counts(queue, "waiting"))["waiting"] == 1
    worker.resume()
    await eventually(lambda: done == ["while paused"])


async def test_when_current_jobs_finished(make_queue, make_worker, fast, eventually):
    queue = make_queue()
    finished: list[int] = []

    async def handler(job):
        await asyncio.sleep(0.3)
        finished.append(job.data)

    for i in range(2):
        await queue.add(i)
    worker = await make_worker(handler, options=replace(fast, concurrency=2))
    await eventually(lambda: _done(queue, 2, "active"))
    await worker.when_current_jobs_finished()
    assert sorted(finished) == [0, 1]


async def test_graceful_close_lets_active_job_finish(make_queue, make_worker):
    queue = make_queue()
    started = asyncio.Event()

    async def handler(job):
        started.set()
        await asyncio.sleep(0.3)
        return "done"

    job = await queue.add({})
    worker = await make_worker(handler)
    await asyncio.wait_for(started.wait(), 10)
    await worker.close(timeout=5)
    assert await job.get_state() == "completed"
    assert (await queue.get_job(job.id)).return_value == "done"


async def test_close_past_grace_releases_job_to_wait(
    make_queue, make_worker, raw_redis, queue_name
):
    queue = make_queue()
    started = asyncio.Event()

    async def forever(job):
        started.set()
        await asyncio.sleep(60)

    job = await queue.add({}, attempts=1)
    worker = await make_worker(forever)
    await asyncio.wait_for(started.wait(), 10)
    await worker.close(timeout=0.3)
    assert await job.get_state() == "waiting"
    assert await raw_redis.exists(f"bull:{queue_name}:{job.id}:lock") == 0
    assert (await queue.get_job(job.id)).attempts_made == 0

    second = await make_worker(lambda job: "second run")
    assert await job.finished(timeout=10) == "second run"
    await second.close()


async def test_finished_with_remove_on_complete(make_queue, make_worker):
    queue = make_queue()
    job = await queue.add(5, remove_on_complete=True)
    failing = await queue.add(6, remove_on_fail=True, name="fail")

    def handler(job):
        if job.name == "fail":
            raise RuntimeError("failed for good")
        return job.data * 10

    finished = asyncio.gather(job.finished(timeout=10), failing.finished(timeout=10),
                              return_exceptions=True)
    await asyncio.sleep(0.1)
    await make_worker(handler)
    value, error = await finished
    assert value == 50
    assert isinstance(error, JobFailedError)
    assert error.reason == "failed for good"
    assert await queue.get_job(job.id) is None


async def test_finished_of_already_finished_job(make_queue, make_worker):
    queue = make_queue()
    job = await queue.add(1)
    await make_worker(lambda job: "v")
    await job.finished(timeout=10)
    assert await job.finished(timeout=1) == "v"
    assert await job.is_completed()


async def test_processed_on_and_lock_while_active(
    make_queue, make_worker, raw_redis, queue_name, eventually
):
    queue = make_queue()
    release = asyncio.Event()
    started = now_ms()

    async def handler(job):
        await release.wait()

    job = await queue.add({})
    worker = await make_worker(handler)
    await eventually(lambda: raw_redis.exists(f"bull:{queue_name}:{job.id}:lock"))
    assert await raw_redis.get(f"bull:{queue_name}:{job.id}:lock") == worker.token.encode()
    assert 0 < await raw_redis.pttl(f"bull:{queue_name}:{job.id}:lock") <= 1000
    assert int(await raw_redis.hget(f"bull:{queue_name}:{job.id}", "processedOn")) >= started
    assert await job.get_state() == "active"
    release.set()
    await job.finished(timeout=10)
