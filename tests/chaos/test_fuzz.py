"""Scenario 9: bad input. The public API and the job-hash reader under fuzzing.

* ``Queue.add`` with random option values: a clear ``InvalidOptionsError`` (or a
  job), never another exception, and nothing written on error.
* Payloads that are not JSON: a clear error, nothing written.
* Payloads over the server's ``proto-max-bulk-len`` (1 MB here, so "huge" is
  cheap): an error, no partial write, and the queue keeps working.
* Job hashes written by hand (bad JSON in data/opts/stacktrace, missing fields,
  non-UTF-8 bytes, odd ids): a worker fails each with a reason or runs it; it
  never crashes and a good job queued behind them completes.
"""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyqueue import Queue, Worker, WorkerOptions
from pyqueue.embedded import RedisServer
from pyqueue.errors import InvalidOptionsError

SCALE = int(os.environ.get("PYQUEUE_CHAOS_SCALE", "1"))
LIMIT = 1024 * 1024
_ODD = st.one_of(
    st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True),
    st.text(max_size=20), st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)
_OPTION_NAMES = ["attempts", "delay", "priority", "job_id", "lifo", "timeout",
                 "remove_on_complete", "remove_on_fail", "backoff", "stack_trace_limit"]


@pytest.fixture(scope="module")
def small_server() -> Iterator[RedisServer]:
    with RedisServer(extra_args=["--proto-max-bulk-len", str(LIMIT)]) as server:
        yield server


@pytest.fixture
async def queue(small_server: RedisServer, queue_name: str) -> AsyncIterator[Queue[Any]]:
    async with Queue(queue_name, small_server.url) as q:
        yield q


async def _keys(q: Queue[Any]) -> set[bytes]:
    return {k async for k in q.client.scan_iter(f"bull:{q.name}:*")}


@settings(max_examples=60 * SCALE, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(opts=st.dictionaries(st.sampled_from(_OPTION_NAMES), _ODD, max_size=3))
async def test_random_options_are_accepted_or_rejected_clearly(
    queue: Queue[Any], opts: dict[str, Any]
) -> None:
    before = await _keys(queue)
    try:
        job = await queue.add({"x": 1}, **opts)
    except InvalidOptionsError as exc:
        assert str(exc)  # noqa: PT017 - the message itself is under test
        assert await _keys(queue) == before, "a rejected add wrote something"
    else:
        assert await queue.get_job(job.id) is not None
        await job.remove()


@pytest.mark.parametrize(
    "payload", [object(), {1, 2}, b"\xff\xfe", math.nan, {"k": math.inf}, {(1, 2): 3}],
    ids=["object", "set", "bytes", "nan", "inf", "tuple-key"],
)
async def test_non_json_payloads_are_rejected(queue: Queue[Any], payload: Any) -> None:
    with pytest.raises(InvalidOptionsError, match="data"):
        await queue.add(payload)
    assert await _keys(queue) == set()


async def test_huge_payload_is_rejected_without_partial_write(queue: Queue[Any]) -> None:
    await queue.add({"ok": 1}, job_id="before")
    before = await _keys(queue)
    with pytest.raises(InvalidOptionsError, match="proto-max-bulk-len") as caught:
        await queue.add({"blob": "x" * (LIMIT + 10)}, job_id="huge")
    print(f"\nfuzz: huge payload error: {type(caught.value).__name__}: {caught.value}")
    assert await _keys(queue) == before
    job = await queue.add({"ok": 2}, job_id="after")
    assert job.id == "after"


_CORRUPT: dict[str, dict[bytes, bytes]] = {
    "bad-data": {b"name": b"x", b"data": b"{not json", b"opts": b"{}", b"timestamp": b"1"},
    "bad-opts": {b"name": b"x", b"data": b"{}", b"opts": b"[1,", b"timestamp": b"1"},
    "bad-stack": {b"name": b"x", b"data": b"{}", b"opts": b'{"attempts":2}',
                  b"stacktrace": b"nope", b"timestamp": b"1"},
    "no-fields": {b"unrelated": b"1"},
    "non-utf8": {b"name": b"\xff\xfe", b"data": b'"\xff"', b"opts": b"\xc3", b"timestamp": b"z"},
    "odd id \u00e9:*?{}\x00": {b"name": b"x", b"data": b"{}", b"opts": b"{}"},
    "bad-numbers": {b"name": b"x", b"data": b"{}", b"opts": b'{"attempts":"many"}',
                    b"attemptsMade": b"lots", b"timestamp": b"-"},
}


async def test_corrupted_hashes_fail_with_reason_and_worker_carries_on(
    small_server: RedisServer, queue_name: str
) -> None:
    raw = aioredis.Redis.from_url(small_server.url)
    base = f"bull:{queue_name}"
    for job_id, fields in _CORRUPT.items():
        await raw.hset(f"{base}:{job_id}", mapping=fields)  # type: ignore[arg-type]
        await raw.lpush(f"{base}:wait", job_id)
    errors: list[BaseException] = []
    done = asyncio.Event()

    async def handler(job: Any) -> str:
        if job.id == "good":
            done.set()
        return "ran"

    async with Queue(queue_name, small_server.url) as q:
        worker = Worker(q, handler, options=WorkerOptions(stalled_interval=0, drain_delay=0.5))
        worker.on("error", errors.append)
        await worker.start()
        try:
            await q.add({"fine": True}, job_id="good")
            await asyncio.wait_for(done.wait(), 15)
            await asyncio.sleep(0.3)
        finally:
            await worker.close()
        outcomes = {}
        for job_id in _CORRUPT:
            state = await q.get_job_state(job_id)
            reason = await raw.hget(f"{base}:{job_id}", "failedReason")
            outcomes[job_id] = (state, reason)
            assert state in ("completed", "failed"), f"{job_id!r}: {state}"
            if state == "failed":
                assert reason, f"{job_id!r} failed without a reason"
        assert await q.get_job_state("good") == "completed"
        assert await raw.llen(f"{base}:active") == 0
    await raw.aclose()
    print("\nfuzz: corrupted hashes ->", {k: v[0] for k, v in outcomes.items()},
          f"worker errors={len(errors)}")
