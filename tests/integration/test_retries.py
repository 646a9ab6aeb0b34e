"""Retries: attempts, fixed/exponential/custom backoff, failure fields, stack trace limit."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import pytest

from pyqueue import Backoff, InvalidOptionsError, JobFailedError
from pyqueue.job import now_ms


def _failing(runs: list[int], succeed_on: int | None = None):
    async def handler(job):
        runs.append(now_ms())
        if succeed_on is not None and len(runs) >= succeed_on:
            return "finally"
        raise ValueError(f"boom {len(runs)}")

    return handler


def _gaps(runs: list[int]) -> list[int]:
    return [b - a for a, b in itertools.pairwise(runs)]


async def test_fixed_backoff_gaps(make_queue, make_worker, raw_redis, queue_name):
    queue = make_queue()
    runs: list[int] = []
    job = await queue.add({}, attempts=3, backoff=300)
    await make_worker(_failing(runs))
    with pytest.raises(JobFailedError, match="boom 3"):
        await job.finished(timeout=15)
    assert len(runs) == 3
    assert all(gap >= 300 for gap in _gaps(runs)), _gaps(runs)
    stored = await raw_redis.hgetall(f"bull:{queue_name}:{job.id}")
    assert stored[b"attemptsMade"] == b"3"
    assert stored[b"failedReason"] == b"boom 3"
    traces = json.loads(stored[b"stacktrace"])
    assert len(traces) == 3
    assert all("ValueError: boom" in t for t in traces)
    assert "ValueError: boom 1" in traces[0]
    assert await raw_redis.zscore(f"bull:{queue_name}:failed", job.id) == int(
        stored[b"finishedOn"]
    )


async def test_exponential_backoff_gaps(make_queue, make_worker):
    queue = make_queue()
    runs: list[int] = []
    job = await queue.add({}, attempts=3, backoff=Backoff(type="exponential", delay=200))
    await make_worker(_failing(runs))
    with pytest.raises(JobFailedError):
        await job.finished(timeout=15)
    gaps = _gaps(runs)
    assert len(gaps) == 2
    assert gaps[0] >= 200, gaps
    assert gaps[1] >= 600, gaps


async def test_backoff_parks_job_in_delayed_with_bulls_score(
    make_queue, make_worker, raw_redis, queue_name, eventually, messages
):
    queue = make_queue()
    runs: list[int] = []
    pubsub = raw_redis.pubsub()
    await pubsub.subscribe(f"bull:{queue_name}:delayed")
    job = await queue.add({}, attempts=2, backoff=2000)
    await make_worker(_failing(runs))
    score = await eventually(lambda: raw_redis.zscore(f"bull:{queue_name}:delayed", job.id))
    (_, published), = await messages(pubsub, 1)
    await pubsub.aclose()
    assert int(score) % 4096 == int(job.id) & 0xFFF
    due = int(score) // 4096
    assert due >= runs[0] + 2000
    assert float(published) == pytest.approx(score / 4096)
    assert await job.get_state() == "delayed"
    stored = await raw_redis.hgetall(f"bull:{queue_name}:{job.id}")
    assert stored[b"delay"] == b"0"  # a backoff does not change the delay field
    assert stored[b"attemptsMade"] == b"1"
    assert await raw_redis.exists(f"bull:{queue_name}:{job.id}:lock") == 0


async def test_no_backoff_retries_immediately_and_success_keeps_fields(
    make_queue, make_worker, raw_redis, queue_name
):
    queue = make_queue()
    runs: list[int] = []
    job = await queue.add({}, attempts=3)
    await make_worker(_failing(runs, succeed_on=3))
    assert await job.finished(timeout=10) == "finally"
    stored = await raw_redis.hgetall(f"bull:{queue_name}:{job.id}")
    # Bull leaves the failure fields of earlier attempts on a job that succeeds.
    assert stored[b"attemptsMade"] == b"2"
    assert stored[b"failedReason"] == b"boom 2"
    assert len(json.loads(stored[b"stacktrace"])) == 2
    assert stored[b"returnvalue"] == b'"finally"'


async def test_single_failed_publish_for_many_attempts(
    make_queue, make_worker, raw_redis, queue_name, messages
):
    queue = make_queue()
    pubsub = raw_redis.pubsub()
    await pubsub.subscribe(f"bull:{queue_name}:failed")
    job = await queue.add({}, attempts=3)
    local_failed: list[str] = []
    worker = await make_worker(_failing([]), start=False)
    worker.on("failed", lambda j, exc: local_failed.append(str(exc)))
    await worker.start()
    with pytest.raises(JobFailedError):
        await job.finished(timeout=10)
    (_, payload), = await messages(pubsub, 1)
    with pytest.raises(AssertionError):
        await messages(pubsub, 1, timeout=0.3)
    await pubsub.aclose()
    assert json.loads(payload) == {"jobId": job.id, "val": "boom 3"}
    # The local event fires on every failed attempt.
    assert local_failed == ["boom 1", "boom 2", "boom 3"]


@pytest.mark.parametrize(
    ("returned", "runs_expected", "min_gap"),
    [(150, 3, 150), (-1, 1, None), (0, 3, 0), (None, 3, 0)],
)
async def test_custom_backoff_strategy(
    make_queue, make_worker, returned, runs_expected, min_gap
):
    seen_args: list[tuple[int, str, Any]] = []

    def strategy(attempts_made: int, err: BaseException, options: Any) -> Any:
        seen_args.append((attempts_made, str(err), options))
        return returned

    # The producer knows the strategy's name too, so its add accepts the type.
    queue = make_queue(backoff_strategies={"jitter": strategy})

    runs: list[int] = []
    job = await queue.add(
        {}, attempts=3, backoff=Backoff(type="jitter", options={"base": 7})
    )
    await make_worker(_failing(runs), backoff_strategies={"jitter": strategy})
    with pytest.raises(JobFailedError):
        await job.finished(timeout=10)
    assert len(runs) == runs_expected
    assert seen_args[0] == (1, "boom 1", {"base": 7})
    if min_gap:
        assert all(gap >= min_gap for gap in _gaps(runs)), _gaps(runs)
    assert (await queue.get_job(job.id)).attempts_made == runs_expected


async def test_async_custom_strategy(make_queue, make_worker):
    async def strategy(attempts_made: int, err: BaseException, options: Any) -> int:
        await asyncio.sleep(0)
        return 100 * attempts_made

    queue = make_queue(backoff_strategies={"linear": strategy})

    runs: list[int] = []
    job = await queue.add({}, attempts=3, backoff=Backoff(type="linear"))
    await make_worker(_failing(runs), backoff_strategies={"linear": strategy})
    with pytest.raises(JobFailedError):
        await job.finished(timeout=10)
    gaps = _gaps(runs)
    assert gaps[0] >= 100
    assert gaps[1] >= 200


async def test_unknown_backoff_strategy_fails_job(make_queue, make_worker):
    # A producer that registers "nope" (or a Node app) adds it; this worker does not know it.
    queue = make_queue(backoff_strategies={"nope": lambda *args: 0})
    runs: list[int] = []
    job = await queue.add({}, attempts=3, backoff=Backoff(type="nope", delay=10))
    await make_worker(_failing(runs))
    with pytest.raises(JobFailedError, match="Unknown backoff strategy nope"):
        await job.finished(timeout=10)
    assert len(runs) == 1
    assert await job.get_state() == "failed"


async def test_stack_trace_limit(make_queue, make_worker, raw_redis, queue_name):
    queue = make_queue()
    job = await queue.add({}, attempts=4, stack_trace_limit=2)
    await make_worker(_failing([]))
    with pytest.raises(JobFailedError):
        await job.finished(timeout=10)
    traces = json.loads(await raw_redis.hget(f"bull:{queue_name}:{job.id}", "stacktrace"))
    # The newest `limit` traces, as Bull 4.15+ keeps them.
    assert len(traces) == 2
    assert "boom 3" in traces[0]
    assert "boom 4" in traces[1]


async def test_retry_keeps_lifo_and_priority(make_queue, make_worker, eventually):
    queue = make_queue()
    order: list[str] = []

    async def handler(job):
        order.append(job.data)
        if job.data == "retry-me" and order.count("retry-me") == 1:
            raise ValueError("once")

    await queue.add("retry-me", attempts=2, priority=1)
    await queue.add("p2", priority=2)
    await queue.add("plain")
    await make_worker(handler)
    await eventually(lambda: len(order) == 4)
    # The retried job is re-inserted by priority, so it runs before p2 again.
    assert order == ["retry-me", "retry-me", "p2", "plain"]


async def test_an_unknown_backoff_type_is_refused_at_add(make_queue, raw_redis, queue_name):
    queue = make_queue()
    with pytest.raises(InvalidOptionsError, match=r"backoff\.type: unknown strategy 'jitter'"):
        await queue.add({}, attempts=3, backoff=Backoff(type="jitter"))
    assert await raw_redis.keys(f"bull:{queue_name}:*") == []
