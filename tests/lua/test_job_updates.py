"""updateProgress-2, updateData-1, addLog-2 (spec §3.16, §3.17, §3.20)."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from pyqueue._protocol.bull.keys import QueueKeys
from pyqueue._protocol.bull.scripts import Scripts
from pyqueue.errors import JobNotFound


async def test_update_progress(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, events
) -> None:
    await add("6")
    await events.collect()
    payload = '{"jobId":"6","progress":42}'
    await scripts.update_progress("6", progress_json="42", event_payload=payload)
    assert await raw_redis.hget(keys.job("6"), "progress") == b"42"
    assert await events.collect() == [(keys.channel("progress"), '{"jobId":"6","progress":42}')]
    with pytest.raises(JobNotFound, match="Missing key for job 7 updateProgress"):
        await scripts.update_progress("7", progress_json="1", event_payload="{}")
    assert await events.collect() == []


async def test_update_data(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys
) -> None:
    await add("1", data='{"a":1}')
    await scripts.update_data("1", data_json='{"a":2}')
    assert await raw_redis.hget(keys.job("1"), "data") == b'{"a":2}'
    with pytest.raises(JobNotFound, match="updateData"):
        await scripts.update_data("2", data_json="{}")
    assert await raw_redis.exists(keys.job("2")) == 0


async def test_add_log(add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys) -> None:
    await add("1")
    assert await scripts.add_log("1", line="first") == 1
    assert await scripts.add_log("1", line="second") == 2
    assert await scripts.add_log("1", line="third", keep_logs=2) == 2
    assert await raw_redis.lrange(keys.logs("1"), 0, -1) == [b"second", b"third"]
    assert await scripts.add_log("1", line="4th", keep_logs=10) == 3
    with pytest.raises(JobNotFound, match="addLog"):
        await scripts.add_log("2", line="x")
    assert await raw_redis.exists(keys.logs("2")) == 0
