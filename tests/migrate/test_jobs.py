"""Bull jobs of every state become BullMQ jobs with their history, into a new
prefix (the old queue left empty) and in place (the same keys, Bull's own
structures gone). Real Redis; the BullMQ side is read as BullMQ keeps it."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, cast

import pytest
import redis.asyncio as aioredis
from tests.migrate.conftest import Filled, bull_jobs, bullmq_jobs

from pyqueue import Debounce, MigrationRefused, Queue
from pyqueue._protocol.formats import detect_format
from pyqueue.migrate import migrate_queue, migration_status

Fill = Callable[..., Awaitable[Filled]]


def _data(fields: dict[str, str]) -> Any:
    return json.loads(fields["data"])


async def test_every_state_moves_with_its_history(
    redis_url: str, raw_redis: aioredis.Redis, queue_name: str, fill_bull: Fill,
) -> None:
    made = await fill_bull(queue_name)
    before = await bull_jobs(raw_redis, "bull", queue_name)

    report = await migrate_queue(queue_name, redis_url=redis_url, to_prefix="bmq")

    assert await bull_jobs(raw_redis, "bull", queue_name) == {}
    after = await bullmq_jobs(raw_redis, "bmq", queue_name)
    renames = report.renames
    assert renames == {"12345": "bull-12345", "a:b": "a-b"}
    assert sorted(renames.get(i, i) for i in before) == sorted(after)
    for old, (state, bull) in before.items():
        new_state, mq = after[renames.get(old, old)]
        assert _data(mq) == _data(bull), old
        assert mq["timestamp"] == bull["timestamp"]
        assert mq["name"] == bull["name"]
        expected = {"wait": "wait", "delayed": "delayed", "completed": "completed",
                    "failed": "failed"}[state]
        if old in made.prioritized:
            expected = "prioritized"
        assert new_state == expected, old
        for kept in ("processedOn", "finishedOn", "returnvalue", "failedReason", "stacktrace",
                     "progress"):
            assert mq.get(kept) == bull.get(kept), (old, kept)
        assert "attemptsMade" not in mq
        assert "stalledCounter" not in mq
    # BullMQ counts the successful attempt too; Bull counts failed ones only.
    for job_id in made.completed:
        assert after[job_id][1]["atm"] == "1"
        assert await raw_redis.lrange(f"bmq:{queue_name}:{job_id}:logs", 0, -1) == [
            f"log of {job_id}".encode()]
        fields = after[job_id][1]
        assert json.loads(fields["returnvalue"]) == {"result": _data(fields)["k"]}
    for job_id in made.failed:
        fields = after[job_id][1]
        assert fields["atm"] == "2"
        assert fields["ats"] == "2"
        assert len(json.loads(fields["stacktrace"])) == 2
        assert fields["failedReason"] == f"broke {job_id} try 2"
    assert report.moved == {"wait": 7 + 4, "delayed": 3, "completed": 3, "failed": 2}
    assert report.finished
    assert report.problems == []


async def test_priorities_take_bullmqs_order(
    redis_url: str, raw_redis: aioredis.Redis, queue_name: str, fill_bull: Fill,
) -> None:
    """Priority first, then the order Bull would have run them (equal ones FIFO)."""
    made = await fill_bull(queue_name)
    await migrate_queue(queue_name, redis_url=redis_url, to_prefix="bmq")
    members = cast("list[tuple[bytes, float]]", await raw_redis.zrange(
        f"bmq:{queue_name}:prioritized", 0, -1, withscores=True))
    order = [m.decode() for m, _ in members]
    by_priority = sorted(made.prioritized, key=lambda i: (made.prioritized[i], int(i)))
    assert order == by_priority
    for member, score in members:
        assert int(score) >> 32 == made.prioritized[member.decode()]
    assert int(await raw_redis.get(f"bmq:{queue_name}:pc") or 0) == len(made.prioritized)
    assert await raw_redis.zrange(f"bmq:{queue_name}:marker", 0, -1) != []


async def test_delayed_jobs_keep_their_due_times(
    redis_url: str, raw_redis: aioredis.Redis, queue_name: str, fill_bull: Fill,
) -> None:
    made = await fill_bull(queue_name)
    await migrate_queue(queue_name, redis_url=redis_url, to_prefix="bmq")
    found = dict(cast("list[tuple[bytes, float]]", await raw_redis.zrange(
        f"bmq:{queue_name}:delayed", 0, -1, withscores=True)))
    assert {k.decode(): int(v) // 4096 for k, v in found.items()} == made.delayed
    opts = json.loads(await raw_redis.hget(f"bmq:{queue_name}:{next(iter(made.delayed))}",
                                           "opts") or b"{}")
    assert opts["backoff"] == {"type": "exponential", "delay": 1000}
    assert opts["attempts"] == 3


async def test_in_place_converts_and_leaves_no_bull_structure(
    redis_url: str, raw_redis: aioredis.Redis, queue_name: str, fill_bull: Fill,
) -> None:
    made = await fill_bull(queue_name)
    before = await bull_jobs(raw_redis, "bull", queue_name)
    assert await detect_format(raw_redis, "bull", queue_name) == "bull"

    report = await migrate_queue(queue_name, redis_url=redis_url)

    assert report.finished
    assert report.in_place
    after = await bullmq_jobs(raw_redis, "bull", queue_name)
    assert sorted(report.renames.get(i, i) for i in before) == sorted(after)
    assert {after[i][0] for i in made.prioritized} == {"prioritized"}
    assert await detect_format(raw_redis, "bull", queue_name) == "bullmq"
    leftovers = [k.decode() for k in await raw_redis.keys(f"bull:{queue_name}:pq-migrate:src:*")]
    assert leftovers == []
    assert not await raw_redis.exists(f"bull:{queue_name}:priority")
    # A second run finds the queue BullMQ's and touches nothing.
    again = await migrate_queue(queue_name, redis_url=redis_url)
    assert again.finished
    assert again.total == report.total
    assert await bullmq_jobs(raw_redis, "bull", queue_name) == after


async def test_a_paused_queue_stays_paused(
    redis_url: str, raw_redis: aioredis.Redis, queue_name: str,
) -> None:
    async with Queue(queue_name, redis_url) as queue:
        await queue.pause()
        ids = [(await queue.add({"n": i})).id for i in range(3)]
    assert await raw_redis.llen(f"bull:{queue_name}:paused") == 3
    copy_name = f"{queue_name}-copy"
    async with Queue(copy_name, redis_url) as queue:
        await queue.pause()
        await queue.add({"n": 0})

    await migrate_queue(queue_name, redis_url=redis_url)
    await migrate_queue(copy_name, redis_url=redis_url, to_prefix="bmq")

    assert await raw_redis.hget(f"bull:{queue_name}:meta", "paused") == b"1"
    assert not await raw_redis.exists(f"bull:{queue_name}:meta-paused")
    # BullMQ keeps a paused queue's jobs in wait, in order; no ready marker.
    assert [i.decode() for i in await raw_redis.lrange(f"bull:{queue_name}:wait", 0, -1)] == \
        list(reversed(ids))
    assert await raw_redis.zrange(f"bull:{queue_name}:marker", 0, -1) == []
    assert await raw_redis.hget(f"bmq:{copy_name}:meta", "paused") == b"1"


async def test_counter_ids_the_target_has_take_its_next_counter_value(
    redis_url: str, raw_redis: aioredis.Redis, queue_name: str,
) -> None:
    """Into an existing BullMQ queue: Bull's counter ids that collide get the
    target's next ones, and the target's counter never hands a kept one out again."""
    async with Queue(queue_name, redis_url) as queue:
        bull_ids = [(await queue.add({"bull": i})).id for i in range(5)]
    assert bull_ids == ["1", "2", "3", "4", "5"]
    target = f"bmq:{queue_name}:"
    await raw_redis.hset(target + "2", mapping={"name": "x", "data": '{"mq":2}', "opts": "{}",
                                                  "timestamp": 1, "delay": 0, "priority": 0})
    await raw_redis.lpush(target + "wait", "2")
    await raw_redis.set(target + "id", 2)

    report = await migrate_queue(queue_name, redis_url=redis_url, to_prefix="bmq")

    assert report.renames == {"2": "6"}
    after = await bullmq_jobs(raw_redis, "bmq", queue_name)
    assert _data(after["2"][1]) == {"mq": 2}
    assert _data(after["6"][1]) == {"bull": 1}
    assert [_data(after[i][1]) for i in ("1", "3", "4", "5")] == [{"bull": i} for i in (0, 2, 3, 4)]
    assert int(await raw_redis.get(target + "id") or 0) >= 6
    assert (await migration_status(queue_name, redis_url=redis_url, to_prefix="bmq")).renames \
        == {"2": "6"}


async def test_custom_ids_the_target_has(
    redis_url: str, raw_redis: aioredis.Redis, queue_name: str,
) -> None:
    """A pending job whose custom id the target holds is a duplicate add (dropped);
    a finished one keeps its history under a free variant of its id."""
    target = f"bmq:{queue_name}:"
    for job_id in ("dup-pending", "dup-done"):
        await raw_redis.hset(target + job_id, mapping={
            "name": "x", "data": '{"mq":true}', "opts": "{}", "timestamp": 1, "delay": 0,
            "priority": 0})
        await raw_redis.lpush(target + "wait", job_id)
    async with Queue(queue_name, redis_url) as queue:
        await queue.add({"bull": "pending"}, job_id="dup-pending")
        done = await queue.add({"bull": "done"}, job_id="dup-done")
    await raw_redis.lrem(f"bull:{queue_name}:wait", 0, done.id)
    await raw_redis.zadd(f"bull:{queue_name}:completed", {done.id: 5})

    report = await migrate_queue(queue_name, redis_url=redis_url, to_prefix="bmq")

    assert report.duplicates == 1
    assert report.renames == {"dup-pending": "dup-pending", "dup-done": "dup-done-2"}
    after = await bullmq_jobs(raw_redis, "bmq", queue_name)
    assert _data(after["dup-pending"][1]) == {"mq": True}
    assert after["dup-done-2"] == ("completed", after["dup-done-2"][1])
    assert _data(after["dup-done-2"][1]) == {"bull": "done"}
    assert await bull_jobs(raw_redis, "bull", queue_name) == {}


async def test_in_place_refuses_while_a_worker_uses_the_queue(
    redis_url: str, raw_redis: aioredis.Redis, queue_name: str,
) -> None:
    async with Queue(queue_name, redis_url) as queue:
        await queue.add({"n": 1})
        worker_name = queue.keys.worker_client_name
    watcher = aioredis.Redis.from_url(redis_url, client_name=worker_name)
    try:
        await watcher.ping()
        with pytest.raises(MigrationRefused, match="worker connection"):
            await migrate_queue(queue_name, redis_url=redis_url)
        assert await raw_redis.llen(f"bull:{queue_name}:wait") == 1
        assert await raw_redis.keys(f"bull:{queue_name}:pq-migrate:*") == []
        # Into another prefix the old queue's workers may keep going.
        await migrate_queue(queue_name, redis_url=redis_url, to_prefix="bmq")
        forced = await migrate_queue(f"{queue_name}", redis_url=redis_url, force=True)
        assert forced.finished
    finally:
        await watcher.aclose()


async def test_refuses_a_bull_target_and_a_second_source(
    redis_url: str, raw_redis: aioredis.Redis, queue_name: str,
) -> None:
    async with Queue(queue_name, redis_url) as queue:
        await queue.add({"n": 1}, priority=2)
    async with Queue(queue_name, redis_url, prefix="old2") as queue:
        await queue.add({"n": 2})
    async with Queue("bullq", redis_url, prefix="bmq") as queue:
        await queue.add({"n": 3}, priority=2)
    with pytest.raises(MigrationRefused, match="is a Bull queue"):
        await migrate_queue(queue_name, redis_url=redis_url, to_prefix="bmq", to_name="bullq")
    await migrate_queue(queue_name, redis_url=redis_url, to_prefix="bmq")
    with pytest.raises(MigrationRefused, match="already receives the jobs of bull:"):
        await migrate_queue(queue_name, redis_url=redis_url, prefix="old2", to_prefix="bmq")
    assert await raw_redis.llen(f"old2:{queue_name}:wait") == 1


async def test_bad_arguments_name_the_problem(redis_url: str, queue_name: str) -> None:
    from pyqueue import InvalidOptionsError
    with pytest.raises(InvalidOptionsError, match="follow"):
        await migrate_queue(queue_name, redis_url=redis_url, follow=True)
    with pytest.raises(InvalidOptionsError, match="to_name: BullMQ refuses"):
        await migrate_queue("a:b", redis_url=redis_url)
    with pytest.raises(InvalidOptionsError, match="batch_size"):
        await migrate_queue(queue_name, redis_url=redis_url, to_prefix="x", batch_size=0)


async def test_metrics_debounce_and_raw_data_follow(
    redis_url: str, raw_redis: aioredis.Redis, queue_name: str,
) -> None:
    """Per-minute metrics are copied; a debounce id (Bull 4.16) becomes BullMQ's
    deduplication key with its TTL; data Bull kept unparsed becomes a JSON
    string; a timeout is dropped and reported."""
    src = f"bull:{queue_name}:"
    await raw_redis.hset(src + "metrics:completed", mapping={
        "count": 7, "prevTS": 1_700_000_000_000, "prevCount": 5})
    await raw_redis.rpush(src + "metrics:completed:data", 2, 0, 3)
    async with Queue(queue_name, redis_url) as queue:
        debounced = await queue.add({"n": 1}, debounce=Debounce(id="d1", ttl=600_000))
        timed = await queue.add({"n": 2}, timeout=60_000)
    raw = await queue_with_raw_data(raw_redis, src)

    report = await migrate_queue(queue_name, redis_url=redis_url, to_prefix="bmq")

    dst = f"bmq:{queue_name}:"
    assert await raw_redis.hgetall(dst + "metrics:completed") == {
        b"count": b"7", b"prevTS": b"1700000000000", b"prevCount": b"5"}
    assert await raw_redis.lrange(dst + "metrics:completed:data", 0, -1) == [b"2", b"0", b"3"]
    assert await raw_redis.get(dst + "de:d1") == debounced.id.encode()
    assert 0 < await raw_redis.pttl(dst + "de:d1") <= 600_000
    assert not await raw_redis.exists(src + "de:d1")
    fields = await raw_redis.hgetall(dst + debounced.id)
    assert fields[b"deid"] == b"d1"
    assert json.loads(fields[b"opts"])["de"] == {"id": "d1", "ttl": 600_000}
    assert "timeout" not in json.loads(await raw_redis.hget(dst + timed.id, "opts") or b"{}")
    assert json.loads(await raw_redis.hget(dst + raw, "data") or b"") == "not {json"
    assert report.notes == {
        "timeout dropped (BullMQ has no job timeout)": 1,
        "preventParsingData dropped (the data is kept as a JSON string)": 1,
    }


async def queue_with_raw_data(raw: aioredis.Redis, base: str) -> str:
    """A job a Node producer added with ``preventParsingData``: its data is not JSON."""
    await raw.hset(base + "raw-1", mapping={
        "name": "raw", "data": "not {json", "timestamp": 5, "delay": 0, "priority": 0,
        "opts": json.dumps({"preventParsingData": True, "jobId": "raw-1", "attempts": 1})})
    await raw.lpush(base + "wait", "raw-1")
    return "raw-1"
