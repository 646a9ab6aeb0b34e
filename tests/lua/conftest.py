"""Fixtures for driving the Lua scripts directly: a Scripts object, a pub/sub recorder
and a small job factory."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator, Awaitable
from typing import Any, Protocol

import pytest
import redis.asyncio as aioredis

from pyqueue._protocol.bull.keys import QueueKeys
from pyqueue._protocol.bull.scripts import Scripts

TOKEN = "11111111-1111-4111-8111-111111111111"
OTHER = "22222222-2222-4222-8222-222222222222"
NOW = 1_795_815_728_323


class Events:
    """Collects every publish on the queue's channels (PSUBSCRIBE P:Q:*)."""

    def __init__(self, pubsub: Any) -> None:
        self._pubsub = pubsub

    async def collect(self, wait: float = 0.15) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        while True:
            msg = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=wait)
            if msg is None:
                return out
            out.append((msg["channel"].decode(), msg["data"].decode()))


class AddJob(Protocol):
    def __call__(
        self,
        job_id: str = "",
        *,
        name: str = "__default__",
        data: str = "{}",
        opts: dict[str, Any] | None = None,
        timestamp: int = NOW,
        delay: int = 0,
        priority: int = 0,
        lifo: bool = False,
        token: str = TOKEN,
    ) -> Awaitable[str]: ...


# The client's own traffic around a script call, not what the script ran.
_CLIENT_COMMANDS = {"info", "evalsha", "eval", "script|load", "script"}


async def _commands_so_far(raw: aioredis.Redis) -> Counter[str]:
    stats: dict[str, Any] = await raw.info("commandstats")
    return Counter({
        name.removeprefix("cmdstat_"): int(entry["calls"])
        for name, entry in stats.items()
        if name.removeprefix("cmdstat_") not in _CLIENT_COMMANDS
    })


class CommandCounter:
    """Commands the server ran (INFO commandstats ``calls``, which counts those
    run inside scripts) between ``start()`` and ``delta()``."""

    def __init__(self, raw: aioredis.Redis) -> None:
        self._raw = raw
        self._before: Counter[str] = Counter()

    async def start(self) -> None:
        self._before = await _commands_so_far(self._raw)

    async def delta(self) -> dict[str, int]:
        return dict(await _commands_so_far(self._raw) - self._before)


@pytest.fixture
def command_counter(raw_redis: aioredis.Redis) -> CommandCounter:
    return CommandCounter(raw_redis)


@pytest.fixture
def token() -> str:
    """The token the ``add`` factory publishes with; tests lock jobs with it too."""
    return TOKEN


@pytest.fixture
def other_token() -> str:
    return OTHER


@pytest.fixture
def now() -> int:
    """A fixed client clock (ms) in the same range as the spec's examples."""
    return NOW


@pytest.fixture
def keys(queue_name: str) -> QueueKeys:
    return QueueKeys("bull", queue_name)


@pytest.fixture
def scripts(raw_redis: aioredis.Redis, keys: QueueKeys) -> Scripts:
    return Scripts(raw_redis, keys)


@pytest.fixture
async def events(raw_redis: aioredis.Redis, keys: QueueKeys) -> AsyncIterator[Events]:
    pubsub = raw_redis.pubsub()
    await pubsub.psubscribe(keys.pattern)
    confirm = await pubsub.get_message(timeout=1.0)
    assert confirm is not None
    assert confirm["type"] == "psubscribe"
    try:
        yield Events(pubsub)
    finally:
        await pubsub.aclose()


@pytest.fixture
def add(scripts: Scripts) -> AddJob:
    async def _add(
        job_id: str = "",
        *,
        name: str = "__default__",
        data: str = "{}",
        opts: dict[str, Any] | None = None,
        timestamp: int = NOW,
        delay: int = 0,
        priority: int = 0,
        lifo: bool = False,
        token: str = TOKEN,
    ) -> str:
        full = {"attempts": 1, "delay": delay, "timestamp": timestamp, **(opts or {})}
        return await scripts.add_job(
            job_id=job_id,
            name=name,
            data=data,
            opts=json.dumps(full, separators=(",", ":")),
            timestamp=timestamp,
            delay=delay,
            priority=priority,
            lifo=lifo,
            token=token,
        )

    return _add

