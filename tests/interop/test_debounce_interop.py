"""Bull 4.16's ``debounce`` option across pyqueue and Node Bull (one Redis).

A debounced add sets ``<prefix>:<queue>:de:<id>`` to the job's id (with the TTL
when given) and stores ``deid`` on the job; while the key exists, adds with the
same debounce id return the existing id and publish ``debounced@<token>``. Bull
4.16 removes a key without TTL when the job finishes (completed, failed for
good, failed by the stall limit) and any such key when the job is removed,
cleaned from a live state or obliterated.
"""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as aioredis
from tests.interop.bull import BULL_RELEASES, BULL_VERSIONS, FEATURES, NodeBull
from tests.interop.test_python_node import (
    FAST,
    nadd,
    py_worker,
    wait_counts,
)

from pyqueue import Job, Queue

WITH_DEBOUNCE = [v for v in BULL_VERSIONS if BULL_RELEASES[v] >= FEATURES["debounce"]]
BEFORE_DEBOUNCE = [v for v in BULL_VERSIONS if BULL_RELEASES[v] < FEATURES["debounce"]]


@pytest.fixture
async def pq(redis_url: str, queue_name: str) -> Any:
    async with Queue[Any](queue_name, redis_url) as q:
        yield q


def _de_key(pq: Queue[Any], debounce_id: str) -> str:
    return f"{pq.keys.base}de:{debounce_id}"


async def _node_work(nb: NodeBull, queue: str, until: int, behaviour: Any = None) -> None:
    config = {
        "queue": queue, "action": "process", "until": until, "timeoutMs": 15000,
        "settings": FAST, "behaviour": behaviour or {"*": {"return": "node"}},
    }
    with nb.start(config) as proc:
        await proc.await_for("done", timeout=15)


async def _run_node_debounced(
    nb: NodeBull, pq: Queue[Any], raw: aioredis.Redis, redis_url: str, worker: str,
    debounce: dict[str, Any],
) -> dict[str, Any]:
    """Node 4.16 adds twice with one debounce id, a worker runs the job, Node adds again."""
    opts = {"debounce": debounce}
    first, again = await nadd(nb, pq.name, [{"data": {"n": 1}, "opts": opts},
                                            {"data": {"n": 2}, "opts": opts}])
    seen: list[Any] = []

    async def handler(job: Job[Any]) -> str:
        seen.append(job.data)
        return "py"

    if worker == "py":
        async with py_worker(redis_url, pq.name, handler):
            await wait_counts(pq, completed=1)
    else:
        await _node_work(nb, pq.name, until=1)
    key_left = bool(await raw.exists(_de_key(pq, debounce["id"])))
    [later] = await nadd(nb, pq.name, [{"data": {"n": 3}, "opts": opts}])
    deid = await raw.hget(f"{pq.keys.base}{first}", "deid")
    return {"again_is_first": again == first, "key_left": key_left,
            "later_is_first": later == first, "deid": deid, "seen": seen}


@pytest.mark.parametrize("bull_version", WITH_DEBOUNCE)
@pytest.mark.parametrize("ttl", [None, 60_000])
async def test_python_worker_finishes_node_debounced_job_like_node(
    node_bull: NodeBull, bull_version: str, pq: Queue[Any], raw_redis: aioredis.Redis,
    redis_url: str, queue_name: str, ttl: int | None,
) -> None:
    debounce: dict[str, Any] = {"id": "store-42"}
    if ttl is not None:
        debounce["ttl"] = ttl
    py = await _run_node_debounced(node_bull, pq, raw_redis, redis_url, "py", debounce)
    async with Queue[Any](queue_name + "-node", redis_url) as other:
        node = await _run_node_debounced(node_bull, other, raw_redis, redis_url, "node", debounce)
    assert py["seen"] == [{"n": 1}]
    assert py["deid"] == b"store-42"
    # Without a TTL the key goes with the job, so the next add makes a new job;
    # with one, it stays until it expires and the next add is still debounced.
    assert py["again_is_first"] is True
    assert py["key_left"] is (ttl is not None)
    assert py["later_is_first"] is (ttl is not None)
    assert {k: v for k, v in py.items() if k != "seen"} == {
        k: v for k, v in node.items() if k != "seen"
    }
