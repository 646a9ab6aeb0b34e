"""Unexpected failures inside a job's chain: each emits ``error``, settles the job
and leaves the slot working (the next job runs on the same, single slot).

Covered: Redis refusing the finishing write (READONLY after a failover; OOM under
``maxmemory`` is covered too but does not reach the finishing scripts), a custom
backoff strategy that raises or returns nonsense, and stored ``opts`` that do
not decode (as another client might write them).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ReadOnlyError, ResponseError

from pyqueue import Backoff, InvalidOptionsError, JobFailedError, Queue, Worker, _scheduling
from pyqueue.embedded import RedisServer, free_port


def _readonly(exc: BaseException) -> bool:
    # redis-py maps the READONLY reply to ReadOnlyError and drops the code from the text.
    return isinstance(exc, ReadOnlyError) or (
        isinstance(exc, ResponseError) and "READONLY" in str(exc)
    )


async def test_readonly_on_finishing_emits_error_then_the_result_is_saved(queue_name, fast):
    """A failover demotes the server to a replica while a handler runs: writes are refused."""
    with RedisServer() as server:
        raw = aioredis.Redis.from_url(server.url)
        queue: Queue[Any] = Queue(queue_name, server.url)
        job = await queue.add({}, name="demoted")
        following = await queue.add({}, name="next")
        errors: list[BaseException] = []

        async def demote(j):
            # A primary that is not there: the server stays a read-only replica.
            await raw.execute_command("REPLICAOF", "127.0.0.1", str(free_port()))
            return "saved"

        worker = Worker(
            queue, {"demoted": demote, "next": lambda j: "ok"},
            options=replace(fast, lock_duration=5000, stalled_interval=0),
        )
        worker.on("error", errors.append)
        try:
            await worker.start()
            for _ in range(500):
                if any(_readonly(e) for e in errors):
                    break
                await asyncio.sleep(0.01)
            await raw.execute_command("REPLICAOF", "NO", "ONE")
            assert any(_readonly(e) for e in errors), errors
            # Writable again within the lock: the retried finishing call saves the result.
            assert await job.finished(timeout=10) == "saved"
            assert await following.finished(timeout=10) == "ok"
        finally:
            await worker.close(timeout=1)
            await queue.close()
            await raw.aclose()


async def test_oom_while_a_handler_runs_does_not_lose_the_job(
    make_queue, make_worker, fast, raw_redis
):
    """Does not reproduce on Redis 7: the finishing scripts' first write is an LREM,
    which maxmemory allows, and a script may write freely after its first write."""
    queue = make_queue()
    original = (await raw_redis.config_get("maxmemory"))["maxmemory"]
    job = await queue.add({}, name="oom")
    following = await queue.add({}, name="next")
    errors: list[BaseException] = []

    async def fill_memory(j):
        await raw_redis.config_set("maxmemory", 1)
        return "saved"

    worker = await make_worker({"oom": fill_memory, "next": lambda j: "ok"}, start=False)
    worker.on("error", errors.append)
    try:
        await worker.start()
        assert await job.finished(timeout=10) == "saved"
        # Fetching the next job is refused (its first write adds): reported, then retried.
        for _ in range(500):
            if errors:
                break
            await asyncio.sleep(0.01)
    finally:
        await raw_redis.config_set("maxmemory", original)
    assert isinstance(errors[0], ResponseError)
    assert "maxmemory" in str(errors[0])
    assert await following.finished(timeout=10) == "ok"


def _raises(attempts_made: int, err: BaseException, options: Any) -> Any:
    raise RuntimeError("strategy exploded")


def _nonsense(attempts_made: int, err: BaseException, options: Any) -> Any:
    return "soon"


@pytest.mark.parametrize(("strategy", "reason"), [
    (_raises, "strategy exploded"), (_nonsense, "soon"),
])
async def test_backoff_strategy_failure_fails_the_job_and_emits_error(
    strategy, reason, make_queue, make_worker
):
    queue = make_queue(backoff_strategies={"mine": strategy})
    job = await queue.add({}, name="bad", attempts=3, backoff=Backoff(type="mine"))
    following = await queue.add({}, name="next")
    errors: list[BaseException] = []

    def fail(j):
        raise ValueError("attempt failed")

    worker = await make_worker(
        {"bad": fail, "next": lambda j: "ok"}, backoff_strategies={"mine": strategy},
        start=False,
    )
    worker.on("error", errors.append)
    await worker.start()
    with pytest.raises(JobFailedError, match=f"backoff strategy 'mine' failed: .*{reason}"):
        await job.finished(timeout=10)
    assert await following.finished(timeout=10) == "ok"
    assert len(errors) == 1
    assert reason in str(errors[0])
    assert (await queue.get_job(job.id)).attempts_made == 1


@pytest.mark.parametrize(("opts", "outcome", "problem"), [
    ({"removeOnComplete": {"count": 2, "age": -1}}, "ok", "keep.age"),
    ({"attempts": 2, "removeOnFail": {"count": 1, "age": -1}}, "raise", "keep.age"),
    ({"attempts": 2, "backoff": 1e400}, "raise", "backoff.delay"),
])
async def test_stored_opts_that_do_not_decode_fail_the_job_and_emit_error(
    opts, outcome, problem, make_queue, make_worker, raw_redis, queue_name
):
    queue = make_queue()
    job = await queue.add({}, name="odd")
    following = await queue.add({}, name="next")
    # As another client could have written them (json writes 1e400 as Infinity).
    text = json.dumps(opts).replace("Infinity", "1e400")
    await raw_redis.hset(f"bull:{queue_name}:{job.id}", "opts", text)
    errors: list[BaseException] = []

    def odd(j):
        if outcome == "raise":
            raise ValueError("attempt failed")
        return "ok"

    worker = await make_worker({"odd": odd, "next": lambda j: "ok"}, start=False)
    worker.on("error", errors.append)
    await worker.start()
    with pytest.raises(JobFailedError, match=f"invalid job options: {problem}"):
        await job.finished(timeout=10)
    assert await following.finished(timeout=10) == "ok"
    assert len(errors) == 1
    assert isinstance(errors[0], InvalidOptionsError)
    assert await raw_redis.llen(f"bull:{queue_name}:active") == 0


async def test_an_error_pyqueue_did_not_expect_fails_the_job_and_emits_error(
    make_queue, make_worker, raw_redis, queue_name, monkeypatch
):
    # Chaining a repeat instance fails in a way the chain does not know (a bug of
    # ours, injected here): the safety net must settle the job.
    def broken(*args: object, **kwargs: object) -> None:
        raise OverflowError("cannot convert float infinity to integer")

    monkeypatch.setattr(_scheduling, "chain_from", broken)
    queue = make_queue()
    job = await queue.add({}, name="odd")
    following = await queue.add({}, name="next")
    await raw_redis.hset(f"bull:{queue_name}:{job.id}", "opts", '{"repeat":{"every":5000}}')
    errors: list[BaseException] = []
    worker = await make_worker({"odd": lambda j: "ran", "next": lambda j: "ok"}, start=False)
    worker.on("error", errors.append)
    await worker.start()
    with pytest.raises(JobFailedError, match=r"pyqueue could not process the job: .*infinity"):
        await job.finished(timeout=10)
    assert await following.finished(timeout=10) == "ok"
    assert len(errors) == 1
    assert isinstance(errors[0], OverflowError)
    assert await raw_redis.llen(f"bull:{queue_name}:active") == 0


async def test_a_stored_prev_millis_of_infinity_is_read_as_none(
    make_queue, make_worker, raw_redis, queue_name
):
    # json writes Infinity as 1e400 here, as another client could have stored it.
    queue = make_queue()
    job = await queue.add({}, name="odd")
    await raw_redis.hset(f"bull:{queue_name}:{job.id}", "opts",
                         '{"repeat":{"every":60000},"prevMillis":1e400}')
    errors: list[BaseException] = []
    worker = await make_worker({"odd": lambda j: "ran"}, start=False)
    worker.on("error", errors.append)
    await worker.start()
    assert await job.finished(timeout=10) == "ran"
    assert errors == []
