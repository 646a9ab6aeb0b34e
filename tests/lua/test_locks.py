"""extendLock-2, takeLock-1, releaseLock-1 (spec §3.7-§3.9)."""

from __future__ import annotations

import redis
import redis.asyncio as aioredis

from pyqueue._engine.locks import sync_renewer
from pyqueue._protocol.bull.keys import QueueKeys
from pyqueue._protocol.bull.scripts import Scripts
from pyqueue._protocol.connection import ConnectionSpec


async def test_extend_lock(
    scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, token: str, other_token: str
) -> None:
    assert await scripts.extend_lock("1", token=token, duration=5000) is False
    assert await raw_redis.exists(keys.lock("1")) == 0
    await raw_redis.set(keys.lock("1"), token, px=100)
    await raw_redis.sadd(keys.stalled, "1")
    assert await scripts.extend_lock("1", token=token, duration=5000) is True
    assert 4000 < await raw_redis.pttl(keys.lock("1")) <= 5000
    assert await raw_redis.sismember(keys.stalled, "1") == 0
    await raw_redis.sadd(keys.stalled, "1")
    assert await scripts.extend_lock("1", token=other_token, duration=9000) is False
    assert await raw_redis.get(keys.lock("1")) == token.encode()
    assert await raw_redis.sismember(keys.stalled, "1") == 1


def test_lock_renewer_connection_renews_in_one_pipeline(
    sync_redis: redis.Redis, redis_url: str, keys: QueueKeys, token: str
) -> None:
    renew, close, list_active = sync_renewer(
        ConnectionSpec.from_url(redis_url), keys, token, 5000
    )
    try:
        # Short of the 5 s renewal, long enough to outlast connecting under load.
        sync_redis.set(keys.lock("1"), token, px=2000)
        sync_redis.set(keys.lock("3"), token, px=2000)
        assert renew(["1", "2", "3"]) == [True, False, True]
        assert 4000 < sync_redis.pttl(keys.lock("3")) <= 5000
        # A flushed script cache (failover, SCRIPT FLUSH) is reloaded, not an error.
        sync_redis.script_flush()
        assert renew(["1", "2"]) == [True, False]
        assert renew([]) == []
        sync_redis.rpush(keys.active, "3", "1")
        assert list_active() == ["3", "1"]
    finally:
        close()


def test_lock_renewer_reports_an_error_reply_for_its_job_alone(
    sync_redis: redis.Redis, redis_url: str, keys: QueueKeys, token: str
) -> None:
    renew, close, _ = sync_renewer(ConnectionSpec.from_url(redis_url), keys, token, 5000)
    try:
        sync_redis.set(keys.lock("1"), token, px=2000)
        sync_redis.hset(keys.lock("2"), "not", "a lock")
        sync_redis.set(keys.lock("3"), token, px=2000)
        first, second, third = renew(["1", "2", "3"])
        assert first is True
        assert isinstance(second, redis.ResponseError)
        assert "WRONGTYPE" in str(second)
        assert third is True
        assert 4000 < sync_redis.pttl(keys.lock("3")) <= 5000
    finally:
        close()


async def test_take_and_release_lock(
    scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, token: str, other_token: str
) -> None:
    assert await scripts.take_lock("1", token=token, duration=5000) is True
    assert 4000 < await raw_redis.pttl(keys.lock("1")) <= 5000
    assert await scripts.take_lock("1", token=other_token, duration=5000) is False
    assert await scripts.release_lock("1", token=other_token) is False
    assert await raw_redis.get(keys.lock("1")) == token.encode()
    assert await scripts.release_lock("1", token=token) is True
    assert await raw_redis.exists(keys.lock("1")) == 0
    assert await scripts.release_lock("1", token=token) is False
