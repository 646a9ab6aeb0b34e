"""Wire changes between Bull 4.12 and 4.16 that pyqueue must read from every release."""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis
from tests.interop.bull import NodeBull
from tests.interop.test_python_node import nadd, nadmin, wait_until

from pyqueue import Queue
from pyqueue.events import QueueEvents


async def test_python_hears_node_duplicated_from_every_release(
    node_bull: NodeBull, bull_version: str, redis_url: str, queue_name: str
) -> None:
    # 4.12 publishes nothing, 4.14 a bare `duplicated` channel, 4.15+ `duplicated@<token>`.
    heard: list[str] = []
    async with QueueEvents(queue_name, redis_url) as events:
        events.on("duplicated", heard.append)
        await nadd(node_bull, queue_name, [{"data": {}, "opts": {"jobId": "same"}},
                                           {"data": {}, "opts": {"jobId": "same"}}])
        if node_bull.release >= (4, 14, 0):
            await wait_until(lambda: _value(heard), 5, "duplicated")
        else:
            await asyncio.sleep(0.3)
    assert heard == (["same"] if node_bull.release >= (4, 14, 0) else [])


async def _value(value: Any) -> Any:
    return value


async def test_counts_per_priority_match_node(
    node_bull: NodeBull, bull_version: str, redis_url: str, queue_name: str,
    raw_redis: aioredis.Redis,
) -> None:
    async with Queue[Any](queue_name, redis_url) as pq:
        await nadd(node_bull, queue_name, [
            {"data": {}, "opts": {"priority": 1}}, {"data": {}, "opts": {"priority": 3}},
            {"data": {}}, {"data": {}, "opts": {"priority": 3}},
        ])
        await pq.add({}, priority=3)
        await pq.add({})
        priorities = [0, 1, 2, 3]
        want = {"0": 2, "1": 1, "2": 0, "3": 3}
        assert await pq.get_counts_per_priority(priorities) == want
        await pq.pause()  # counted in the paused list then
        assert await pq.get_counts_per_priority(priorities) == want
        node = await nadmin(node_bull, queue_name, "getCountsPerPriority", priorities=priorities)
    if node_bull.has("getCountsPerPriority"):
        assert node["value"] == want
    else:  # Bull 4.12 has no such call; pyqueue's works on its queues all the same
        assert node["ok"] is False
