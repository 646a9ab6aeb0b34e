"""Bull 4.16's debounce option with pyqueue alone: the key's life cycle.

See tests/interop/test_debounce_interop.py for the same against Node Bull.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest

from pyqueue import (
    BulkJob,
    Debounce,
    InvalidOptionsError,
    Job,
    JobOptions,
    QueueEvents,
    Repeat,
)
from pyqueue.job import now_ms


def _key(queue: Any, debounce_id: str) -> str:
    return queue.keys.debounce(debounce_id)


async def test_second_add_is_debounced_with_events(
    make_queue, raw_redis, redis_url, queue_name
):
    queue = make_queue()
    local: list[str] = []
    queue.on("debounced", local.append)
    heard: list[str] = []
    got = asyncio.Event()
    async with QueueEvents(queue_name, redis_url) as events:
        events.on("debounced", lambda job_id: (heard.append(job_id), got.set()))
        first = await queue.add({"n": 1}, debounce=Debounce(id="d1"))
        again = await queue.add({"n": 2}, debounce=Debounce(id="d1"))
        await asyncio.wait_for(got.wait(), 5)
    assert again.id == first.id
    assert local == [first.id]
    assert heard == [first.id]
    assert await raw_redis.get(_key(queue, "d1")) == first.id.encode()
    assert await raw_redis.hget(f"{queue.keys.base}{first.id}", "deid") == b"d1"
    assert await raw_redis.llen(queue.keys.wait) == 1
    stored = await queue.get_job(first.id)
    assert stored is not None
    assert stored.raw_opts["debounce"] == {"id": "d1"}
    assert stored.data == {"n": 1}


async def test_ttl_sets_an_expiring_key(make_queue, raw_redis):
    queue = make_queue()
    await queue.add({}, debounce=Debounce(id="t", ttl=5000))
    ttl = await raw_redis.pttl(_key(queue, "t"))
    assert 0 < ttl <= 5000


@pytest.mark.parametrize("fail", [False, True])
async def test_finishing_releases_the_id(make_queue, make_worker, eventually, raw_redis, fail):
    queue = make_queue()
    first = await queue.add({}, debounce=Debounce(id="f"))

    def handler(job: Job[Any]) -> str:
        if fail:
            raise RuntimeError("boom")
        return "ok"

    await make_worker(handler)
    state = "failed" if fail else "completed"
    await eventually(lambda: _state_is(first, state))
    assert not await raw_redis.exists(_key(queue, "f"))
    later = await queue.add({}, debounce=Debounce(id="f"))
    assert later.id != first.id


async def _state_is(job: Job[Any], state: str) -> bool:
    return await job.get_state() == state


async def test_retry_keeps_the_id(make_queue, make_worker, eventually, raw_redis):
    queue = make_queue()
    first = await queue.add({}, debounce=Debounce(id="r"), attempts=2, backoff=60_000)
    await make_worker(lambda job: 1 / 0)
    await eventually(lambda: _state_is(first, "delayed"))
    assert await raw_redis.get(_key(queue, "r")) == first.id.encode()
    assert (await queue.add({}, debounce=Debounce(id="r"))).id == first.id


async def test_ttl_outlives_the_job(make_queue, make_worker, eventually, raw_redis):
    queue = make_queue()
    first = await queue.add({}, debounce=Debounce(id="k", ttl=60_000), remove_on_complete=True)
    await make_worker(lambda job: "ok")
    await eventually(lambda: _gone(raw_redis, f"{queue.keys.base}{first.id}"))
    # As in Bull 4.16: the TTL, not the job, holds the id.
    assert (await queue.add({}, debounce=Debounce(id="k", ttl=60_000))).id == first.id


async def _gone(raw: Any, key: str) -> bool:
    return not await raw.exists(key)


async def test_remove_and_clean_release_the_id(make_queue, raw_redis):
    queue = make_queue()
    removed = await queue.add({}, debounce=Debounce(id="rm", ttl=60_000))
    await removed.remove()
    assert not await raw_redis.exists(_key(queue, "rm"))
    cleaned = await queue.add({}, debounce=Debounce(id="cl", ttl=60_000))
    await asyncio.sleep(0.01)
    assert await queue.clean(0, "wait") == [cleaned.id]
    assert not await raw_redis.exists(_key(queue, "cl"))


async def test_obliterate_releases_the_id(make_queue, raw_redis):
    queue = make_queue()
    await queue.add({}, debounce=Debounce(id="ob", ttl=60_000))
    await queue.obliterate()
    assert not await raw_redis.exists(_key(queue, "ob"))


async def test_stall_failure_releases_the_id(make_queue, make_worker, fast, eventually, raw_redis):
    queue = make_queue()
    job = await queue.add({}, debounce=Debounce(id="st"))
    reply = await queue.scripts.move_to_active(
        token="dead-worker-token", lock_duration=300, now=now_ms()
    )
    assert reply is not None
    await make_worker(lambda j: None, options=replace(fast, max_stalled_count=0))
    await eventually(lambda: _state_is(job, "failed"), timeout=20)
    assert not await raw_redis.exists(_key(queue, "st"))


async def test_stale_key_of_a_finished_job_is_taken_over(make_queue, raw_redis):
    # What a Bull 4.12-4.15 worker leaves behind: it ignores deid, so the key
    # of a job it completed stays forever.
    queue = make_queue()
    first = await queue.add({}, debounce=Debounce(id="old"))
    await raw_redis.lrem(queue.keys.wait, 0, first.id)
    await raw_redis.zadd(queue.keys.completed, {first.id: now_ms()})
    later = await queue.add({}, debounce=Debounce(id="old"))
    assert later.id != first.id
    assert await raw_redis.get(_key(queue, "old")) == later.id.encode()
    # ... and the key of a job deleted without it.
    await raw_redis.delete(f"{queue.keys.base}{later.id}")
    third = await queue.add({}, debounce=Debounce(id="old"))
    assert third.id not in (first.id, later.id)


async def test_bad_debounce_options_are_refused(make_queue):
    queue = make_queue()
    with pytest.raises(InvalidOptionsError, match=r"debounce\.id"):
        await queue.add({}, debounce=Debounce(id=""))
    with pytest.raises(InvalidOptionsError, match=r"debounce\.ttl"):
        Debounce(id="x", ttl=0)
    with pytest.raises(InvalidOptionsError, match=r"debounce: must be a pyqueue\.Debounce"):
        await queue.add({}, debounce={"id": "x"})
    with pytest.raises(InvalidOptionsError, match="add_bulk"):
        await queue.add_bulk([BulkJob({}, options=JobOptions(debounce=Debounce(id="x")))])
    with pytest.raises(InvalidOptionsError, match="repeat"):
        await queue.add({}, repeat=Repeat(every=1000), debounce=Debounce(id="x"))


def test_sync_queue_debounces(redis_url, queue_name):
    from pyqueue import SyncQueue

    with SyncQueue(queue_name, redis_url) as queue:
        first = queue.add({}, debounce=Debounce(id="s"))
        assert queue.add({}, debounce=Debounce(id="s")).id == first.id


async def test_debounce_id_on_the_job_and_manual_release(make_queue):
    queue = make_queue()
    first = await queue.add({}, debounce=Debounce(id="m", ttl=60_000))
    assert first.debounce_id == "m"
    fetched = await queue.get_job(first.id)
    assert fetched is not None
    assert fetched.debounce_id == "m"
    assert fetched.to_json()["debounceId"] == "m"
    plain = await queue.add({})
    assert plain.debounce_id is None
    assert (await queue.get_job(plain.id)).to_json()["debounceId"] is None
    assert await queue.remove_debounce_key("m") is True
    assert await queue.remove_debounce_key("m") is False
    assert (await queue.add({}, debounce=Debounce(id="m"))).id != first.id
