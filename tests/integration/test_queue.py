"""Adding jobs: hash fields, opts JSON, ids, ordering, delays, bulk adds, typed payloads."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from pydantic import BaseModel

from pyqueue import Backoff, BulkJob, InvalidOptionsError, JobOptions, KeepJobs
from pyqueue.job import now_ms


class Order(BaseModel):
    order_id: int
    email: str


async def test_add_writes_bulls_six_fields(make_queue, raw_redis, read_hash, queue_name):
    queue = make_queue()
    before = now_ms()
    job = await queue.add({"a": 1})
    after = now_ms()

    assert job.id == "1"
    stored = await read_hash(raw_redis, f"bull:{queue_name}:1")
    assert set(stored) == {"name", "data", "opts", "timestamp", "delay", "priority"}
    assert stored["name"] == "__default__"
    assert stored["data"] == '{"a":1}'
    assert stored["delay"] == "0"
    assert stored["priority"] == "0"
    assert before <= int(stored["timestamp"]) <= after
    opts = json.loads(stored["opts"])
    assert opts == {"attempts": 1, "delay": 0, "timestamp": int(stored["timestamp"])}
    assert await raw_redis.lrange(f"bull:{queue_name}:wait", 0, -1) == [b"1"]


async def test_add_opts_json_as_bull_writes_it(make_queue, raw_redis, read_hash, queue_name):
    queue = make_queue()
    job = await queue.add(
        {"b": "x"}, name="named", priority=3, attempts=3, backoff=1000,
        remove_on_complete=True, remove_on_fail=KeepJobs(age=60, count=10), timeout=1000,
        stack_trace_limit=5, lifo=True,
    )
    stored = await read_hash(raw_redis, f"bull:{queue_name}:{job.id}")
    assert stored["name"] == "named"
    assert stored["priority"] == "3"
    opts = json.loads(stored["opts"])
    assert opts == {
        "priority": 3,
        "attempts": 3,
        "backoff": {"type": "fixed", "delay": 1000},
        "removeOnComplete": True,
        "removeOnFail": {"age": 60, "count": 10},
        "timeout": 1000,
        "stackTraceLimit": 5,
        "lifo": True,
        "delay": 0,
        "timestamp": int(stored["timestamp"]),
    }
    assert "null" not in stored["opts"]


async def test_exponential_backoff_and_custom_timestamp_stored(make_queue, raw_redis, queue_name):
    queue = make_queue()
    job = await queue.add(
        {}, backoff=Backoff(type="exponential", delay=500), timestamp=1_795_815_728_323
    )
    raw = await raw_redis.hgetall(f"bull:{queue_name}:{job.id}")
    opts = json.loads(raw[b"opts"])
    assert opts["backoff"] == {"type": "exponential", "delay": 500}
    assert opts["timestamp"] == 1_795_815_728_323
    assert raw[b"timestamp"] == b"1795815728323"


async def test_auto_ids_count_up(make_queue):
    queue = make_queue()
    ids = [(await queue.add(i)).id for i in range(3)]
    assert ids == ["1", "2", "3"]


async def test_custom_id_dedupes_like_bull(make_queue, raw_redis, read_hash, queue_name):
    queue = make_queue()
    first = await queue.add({"v": 1}, job_id="custom-1", attempts=2)
    key = f"bull:{queue_name}:custom-1"
    before = await read_hash(raw_redis, key)

    again = await queue.add({"v": 2}, job_id="custom-1", attempts=5)

    assert first.id == again.id == "custom-1"
    assert await read_hash(raw_redis, key) == before
    assert await raw_redis.get(f"bull:{queue_name}:id") == b"2"
    assert await raw_redis.lrange(f"bull:{queue_name}:wait", 0, -1) == [b"custom-1"]


async def test_custom_id_can_be_reused_after_removal(make_queue, queue_name, raw_redis):
    queue = make_queue()
    job = await queue.add({"v": 1}, job_id="again")
    await job.remove()
    await queue.add({"v": 2}, job_id="again")
    assert json.loads(await raw_redis.hget(f"bull:{queue_name}:again", "data")) == {"v": 2}


async def test_integer_job_ids_are_refused(make_queue, raw_redis, queue_name):
    # The counter's ids are integers: 42 would be reached by the automatic ids.
    queue = make_queue()
    with pytest.raises(InvalidOptionsError, match="job_id"):
        await queue.add({}, job_id=42)
    assert await raw_redis.keys(f"bull:{queue_name}:*") == []


async def test_priority_and_lifo_positions_and_run_order(
    make_queue, make_worker, raw_redis, queue_name, eventually
):
    queue = make_queue()
    ids = {}
    for label, opts in [
        ("A", {}), ("B", {}), ("C", {"priority": 3}), ("D", {"priority": 1}),
        ("E", {"lifo": True}), ("F", {"priority": 1}),
    ]:
        ids[label] = (await queue.add(label, job_id=label, **opts)).id
    wait = [i.decode() for i in await raw_redis.lrange(f"bull:{queue_name}:wait", 0, -1)]
    assert wait == ["B", "A", "C", "D", "F", "E"]
    assert await raw_redis.zrange(f"bull:{queue_name}:priority", 0, -1, withscores=True) == [
        (b"D", 1.0), (b"F", 1.0), (b"C", 3.0)
    ]

    order: list[str] = []

    async def handler(job):
        order.append(job.data)

    await make_worker(handler)
    await eventually(lambda: len(order) == 6)
    assert order == ["E", "F", "D", "C", "A", "B"]
    assert await raw_redis.zcard(f"bull:{queue_name}:priority") == 0


async def test_priority_order_without_lifo(make_queue, make_worker, eventually):
    queue = make_queue()
    for label, opts in [
        ("A", {}), ("B", {}), ("C", {"priority": 3}), ("D", {"priority": 1}),
        ("F", {"priority": 1}),
    ]:
        await queue.add(label, **opts)
    order: list[str] = []
    await make_worker(lambda job: order.append(job.data))
    await eventually(lambda: len(order) == 5)
    assert order == ["D", "F", "C", "A", "B"]


async def test_delayed_job_score_and_promotion(
    make_queue, make_worker, raw_redis, queue_name, eventually
):
    queue = make_queue()
    await queue.add("filler")  # moves the id counter so the tie-breaker is visible
    job = await queue.add({"d": 1}, delay=700, job_id="later")
    key = f"bull:{queue_name}:later"
    stored = await raw_redis.hgetall(key)
    timestamp = int(stored[b"timestamp"])
    assert stored[b"delay"] == b"700"
    score = await raw_redis.zscore(f"bull:{queue_name}:delayed", "later")
    assert score == (timestamp + 700) * 4096 + 2
    assert json.loads(stored[b"opts"])["delay"] == 700
    assert await job.get_state() == "delayed"

    started: dict[str, int] = {}

    async def handler(j):
        started[j.id] = now_ms()

    await make_worker(handler)
    await eventually(lambda: "later" in started)
    assert started["later"] >= timestamp + 700
    await eventually(lambda: raw_redis.zscore(f"bull:{queue_name}:completed", "later"))
    assert await raw_redis.hget(key, "delay") == b"0"


async def test_delayed_job_added_while_worker_idles_runs_on_time(
    make_queue, make_worker, eventually
):
    queue = make_queue()
    started: list[int] = []
    await make_worker(lambda job: started.append(now_ms()))
    await asyncio.sleep(0.3)
    job = await queue.add({}, delay=600)
    await eventually(lambda: started)
    assert started[0] >= job.timestamp + 600
    # Well before the next guard tick would matter: the delayed publish wakes the worker.
    assert started[0] - (job.timestamp + 600) < 2000


async def test_add_bulk_one_round_trip(make_queue, raw_redis, queue_name, calls):
    queue = make_queue()
    # Load the script first: a fresh server answers NOSCRIPT once.
    await make_queue(name=f"{queue_name}-warm").add_bulk([BulkJob({})])
    exec_before = await calls(raw_redis, "exec")
    evalsha_before = await calls(raw_redis, "evalsha")
    jobs = await queue.add_bulk([
        BulkJob({"n": 1}),
        BulkJob({"n": 2}, name="two", options=JobOptions(priority=2)),
        BulkJob({"n": 3}, options=JobOptions(delay=5000)),
        BulkJob({"n": 4}, options=JobOptions(job_id="bulk-4")),
    ])
    # One atomic script call for the whole batch (addJobs), no MULTI needed.
    assert await calls(raw_redis, "exec") - exec_before == 0
    assert await calls(raw_redis, "evalsha") - evalsha_before == 1
    assert [j.id for j in jobs] == ["1", "2", "3", "bulk-4"]
    assert jobs[1].name == "two"
    assert await queue.get_job_counts("waiting", "delayed") == {"waiting": 3, "delayed": 1}
    assert await raw_redis.hget(f"bull:{queue_name}:2", "priority") == b"2"


async def test_add_bulk_from_a_generator_keeps_each_entrys_options(make_queue, raw_redis):
    """Bug: opts were memoised by ``id(options)``; a generator frees each entry's
    options as it goes, so a later entry at a reused address got an earlier one's."""
    queue = make_queue()
    n = 60

    def entries():
        for i in range(n):
            # Fresh, distinct options per entry, dropped once the next is made.
            yield BulkJob({"i": i}, options=JobOptions(
                attempts=i + 1,
                backoff=Backoff(type="fixed", delay=1000 + i),
                remove_on_complete=i + 1,
            ))

    jobs = await queue.add_bulk(entries())
    assert len(jobs) == n
    for i, job in enumerate(jobs):
        expected = {"attempts": i + 1, "backoff": {"type": "fixed", "delay": 1000 + i},
                    "removeOnComplete": i + 1}
        stored = json.loads(await raw_redis.hget(queue.keys.job(job.id), "opts"))
        assert {k: stored.get(k) for k in expected} == expected, f"entry {i}: {stored}"
        assert {k: job.raw_opts.get(k) for k in expected} == expected, f"entry {i}"


async def test_add_bulk_shares_one_options_object_between_entries(make_queue, raw_redis):
    queue = make_queue()
    shared = JobOptions(attempts=3)
    jobs = await queue.add_bulk([BulkJob({"i": i}, options=shared) for i in range(3)])
    for job in jobs:
        stored = json.loads(await raw_redis.hget(queue.keys.job(job.id), "opts"))
        assert stored["attempts"] == 3


async def test_add_bulk_all_or_nothing(make_queue, raw_redis, queue_name):
    queue = make_queue()
    with pytest.raises(InvalidOptionsError, match="data"):
        await queue.add_bulk([BulkJob({"ok": 1}), BulkJob({"bad": {1, 2}})])
    with pytest.raises(InvalidOptionsError, match="job_id"):
        await queue.add_bulk([BulkJob({"ok": 1}), BulkJob({}, options=JobOptions(job_id="wait"))])
    assert await raw_redis.keys(f"bull:{queue_name}:*") == []


async def test_default_job_options_merge(make_queue, raw_redis, queue_name):
    queue = make_queue(default_job_options=JobOptions(attempts=4, remove_on_complete=10))
    job = await queue.add({}, attempts=2)
    opts = json.loads(await raw_redis.hget(f"bull:{queue_name}:{job.id}", "opts"))
    assert opts["attempts"] == 2
    assert opts["removeOnComplete"] == 10


async def test_add_to_paused_queue_goes_to_paused(make_queue, raw_redis, queue_name):
    queue = make_queue()
    await queue.pause()
    job = await queue.add({})
    assert await raw_redis.lrange(f"bull:{queue_name}:paused", 0, -1) == [job.id.encode()]
    assert await raw_redis.exists(f"bull:{queue_name}:wait") == 0
    assert await job.get_state() == "paused"


async def test_waiting_event_published(make_queue, raw_redis, queue_name):
    queue = make_queue()
    pubsub = raw_redis.pubsub()
    await pubsub.psubscribe(f"bull:{queue_name}:*")
    try:
        await queue.add({}, job_id="k")
        delayed = await queue.add({}, delay=10_000)
        await queue.add({}, job_id="k")  # job "k" exists: a duplicate
        seen: list[tuple[str, str]] = []
        deadline = asyncio.get_running_loop().time() + 1.0
        while len(seen) < 3 and asyncio.get_running_loop().time() < deadline:
            msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
            if msg is not None:
                seen.append((msg["channel"].decode(), msg["data"].decode()))
    finally:
        await pubsub.aclose()
    base = f"bull:{queue_name}:"
    assert seen[0] == (f"{base}waiting@{queue.token}", "k")
    assert seen[1] == (f"{base}delayed", str(delayed.timestamp + 10_000))
    assert seen[2] == (f"{base}duplicated@{queue.token}", "k")


# --- typed payloads -------------------------------------------------------------


async def test_typed_queue_validates_on_add(make_queue, raw_redis, queue_name):
    queue = make_queue(model=Order)
    with pytest.raises(InvalidOptionsError, match="email") as info:
        await queue.add({"order_id": 7})
    assert "Order" in str(info.value)
    with pytest.raises(InvalidOptionsError, match="order_id"):
        await queue.add({"order_id": "not a number", "email": "a@b"})
    assert await raw_redis.keys(f"bull:{queue_name}:*") == []

    job = await queue.add(Order(order_id=7, email="a@b"))
    stored = json.loads(await raw_redis.hget(f"bull:{queue_name}:{job.id}", "data"))
    assert stored == {"order_id": 7, "email": "a@b"}
    await queue.add({"order_id": 8, "email": "c@d"})


async def test_typed_worker_gets_model_and_fails_bad_stored_data(
    make_queue, make_worker, raw_redis, queue_name, eventually
):
    queue = make_queue(model=Order)
    good = await queue.add({"order_id": 1, "email": "x@y"})
    bad = await queue.add({"order_id": 2, "email": "z@y"}, attempts=3)
    await raw_redis.hset(f"bull:{queue_name}:{bad.id}", "data", '{"order_id": "two"}')
    broken = await queue.add({"order_id": 3, "email": "q@y"})
    await raw_redis.hset(f"bull:{queue_name}:{broken.id}", "data", "{not json")

    seen: list[Any] = []

    async def handler(job):
        seen.append(job.data)
        return job.data.order_id

    await make_worker(handler, queue=queue)
    await eventually(lambda: _done(queue, 1, 2))
    assert seen == [Order(order_id=1, email="x@y")]
    assert (await queue.get_job(good.id)).return_value == 1
    failed = await queue.get_job(bad.id)
    assert failed.failed_reason.startswith("invalid payload for Order")
    assert "order_id" in failed.failed_reason
    # An invalid payload is not retried: it would fail the same way.
    assert failed.attempts_made == 1
    assert await failed.get_state() == "failed"
    not_json = await queue.get_job(broken.id)
    assert "not valid JSON" in not_json.failed_reason


async def _done(queue, completed: int, failed: int) -> bool:
    counts = await queue.get_job_counts("completed", "failed")
    return counts == {"completed": completed, "failed": failed}
