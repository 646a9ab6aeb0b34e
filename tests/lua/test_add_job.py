"""addJob-6 driven directly (spec §3.1, §3.0.1, §9 item 4)."""

from __future__ import annotations

import json

import redis.asyncio as aioredis

from pyqueue._protocol.bull.keys import QueueKeys
from pyqueue._protocol.bull.script_args import AddJobSpec
from pyqueue._protocol.bull.scripts import Scripts


async def test_auto_ids_increment_and_hash_fields(
    add, raw_redis: aioredis.Redis, keys: QueueKeys, events, token: str, now: int
) -> None:
    assert await add(data='{"a":1}') == "1"
    assert await add() == "2"
    job = await raw_redis.hgetall(keys.job("1"))
    assert job == {
        b"name": b"__default__",
        b"data": b'{"a":1}',
        b"opts": json.dumps({"attempts": 1, "delay": 0, "timestamp": now},
                            separators=(",", ":")).encode(),
        b"timestamp": str(now).encode(),
        b"delay": b"0",
        b"priority": b"0",
    }
    assert await raw_redis.lrange(keys.wait, 0, -1) == [b"2", b"1"]
    assert await raw_redis.get(keys.id) == b"2"
    assert await events.collect() == [
        (keys.waiting_channel(token), "1"),
        (keys.waiting_channel(token), "2"),
    ]


async def test_custom_id_duplicate_publishes_and_still_increments(
    add, raw_redis: aioredis.Redis, keys: QueueKeys, events, token: str
) -> None:
    assert await add("custom-1", data='{"v":1}') == "custom-1"
    assert await add("custom-1", data='{"v":2}') == "custom-1"
    assert await raw_redis.get(keys.id) == b"2"
    assert await raw_redis.hget(keys.job("custom-1"), "data") == b'{"v":1}'
    assert await raw_redis.lrange(keys.wait, 0, -1) == [b"custom-1"]
    assert await events.collect() == [
        (keys.waiting_channel(token), "custom-1"),
        (keys.duplicated_channel(token), "custom-1"),
    ]


async def test_delayed_add_scores_with_counter_and_publishes_due_time(
    add, raw_redis: aioredis.Redis, keys: QueueKeys, events, now: int
) -> None:
    await add()
    await add()
    assert await add("custom-1", delay=5000) == "custom-1"
    # The tie-breaker is this call's INCR result (3), even for a custom id.
    assert await raw_redis.zscore(keys.delayed, "custom-1") == (now + 5000) * 4096 + 3
    assert await raw_redis.hget(keys.job("custom-1"), "delay") == b"5000"
    assert await raw_redis.lrange(keys.wait, 0, -1) == [b"2", b"1"]
    published = await events.collect()
    assert published[-1] == (keys.channel("delayed"), str(now + 5000))
    assert all(not ch.startswith(keys.base + "waiting") or data != "custom-1"
               for ch, data in published)


async def test_delayed_tiebreaker_masks_counter(
    add, raw_redis: aioredis.Redis, keys: QueueKeys, now: int
) -> None:
    await raw_redis.set(keys.id, 4095 + 4096)
    job_id = await add(delay=10)
    assert job_id == "8192"
    assert await raw_redis.zscore(keys.delayed, job_id) == (now + 10) * 4096 + (8192 & 0xFFF)


async def test_negative_delay_is_not_delayed(
    add, raw_redis: aioredis.Redis, keys: QueueKeys
) -> None:
    job_id = await add(delay=-5)
    assert await raw_redis.zcard(keys.delayed) == 0
    assert await raw_redis.lrange(keys.wait, 0, -1) == [job_id.encode()]
    assert await raw_redis.hget(keys.job(job_id), "delay") == b"0"


async def test_lifo_pushes_right(add, raw_redis: aioredis.Redis, keys: QueueKeys) -> None:
    await add("a")
    await add("b")
    await add("c", lifo=True)
    assert await raw_redis.lrange(keys.wait, 0, -1) == [b"b", b"a", b"c"]


async def test_priority_ordering_scenario(
    add, raw_redis: aioredis.Redis, keys: QueueKeys, scripts: Scripts, token: str, now: int
) -> None:
    steps = [
        ("A", {}, [b"A"]),
        ("B", {}, [b"B", b"A"]),
        ("C", {"priority": 3}, [b"B", b"A", b"C"]),
        ("D", {"priority": 1}, [b"B", b"A", b"C", b"D"]),
        ("E", {"lifo": True}, [b"B", b"A", b"C", b"D", b"E"]),
        ("F", {"priority": 1}, [b"B", b"A", b"C", b"D", b"F", b"E"]),
    ]
    for job_id, kw, expected in steps:
        await add(job_id, **kw)
        assert await raw_redis.lrange(keys.wait, 0, -1) == expected
    order = []
    while (got := await scripts.move_to_active(token=token, lock_duration=30000, now=now)):
        order.append(got[1])
        await raw_redis.lrem(keys.active, 0, got[1])
    assert order == ["E", "F", "D", "C", "A", "B"]
    assert await raw_redis.zcard(keys.priority) == 0


async def test_priority_ordering_without_lifo(
    add, raw_redis: aioredis.Redis, keys: QueueKeys, scripts: Scripts, token: str, now: int
) -> None:
    await add("A")
    await add("B")
    await add("C", priority=3)
    await add("D", priority=1)
    await add("F", priority=1)
    order = []
    while (got := await scripts.move_to_active(token=token, lock_duration=30000, now=now)):
        order.append(got[1])
    assert order == ["D", "F", "C", "A", "B"]


async def test_paused_target(
    add, raw_redis: aioredis.Redis, keys: QueueKeys, events, token: str
) -> None:
    await raw_redis.set(keys.meta_paused, 1)
    await add("1")
    await add("2", priority=2)
    await add("3", priority=1)
    assert await raw_redis.exists(keys.wait) == 0
    assert await raw_redis.lrange(keys.paused, 0, -1) == [b"1", b"2", b"3"]
    assert [c for c, _ in await events.collect()] == [keys.waiting_channel(token)] * 3


async def test_add_jobs_one_transaction(
    scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, token: str, now: int
) -> None:
    specs = [
        AddJobSpec(job_id="", name="n", data="{}", opts="{}", timestamp=now, delay=0,
                   priority=0, lifo=False),
        AddJobSpec(job_id="x", name="n", data="{}", opts="{}", timestamp=now, delay=100,
                   priority=0, lifo=False),
        AddJobSpec(job_id="", name="n", data="{}", opts="{}", timestamp=now, delay=0,
                   priority=0, lifo=True),
    ]
    assert await scripts.add_jobs(specs, token) == ["1", "x", "3"]
    assert await raw_redis.lrange(keys.wait, 0, -1) == [b"1", b"3"]
    assert await raw_redis.zscore(keys.delayed, "x") == (now + 100) * 4096 + 2
    assert await scripts.add_jobs([], token) == []


async def test_add_jobs_reloads_after_script_flush(
    scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, token: str, now: int
) -> None:
    spec = AddJobSpec(job_id="", name="n", data="{}", opts="{}", timestamp=now, delay=0,
                      priority=0, lifo=False)
    assert await scripts.add_jobs([spec], token) == ["1"]
    await raw_redis.script_flush()
    assert await scripts.add_jobs([spec, spec], token) == ["2", "3"]
    await raw_redis.script_flush()
    assert await scripts.add_job(job_id="", name="n", data="{}", opts="{}", timestamp=now,
                                 delay=0, priority=0, lifo=False, token=token) == "4"
    assert await raw_redis.llen(keys.wait) == 4
