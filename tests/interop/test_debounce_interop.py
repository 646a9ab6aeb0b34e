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
    njobs,
    py_worker,
    wait_counts,
    wait_until,
)

from pyqueue import Debounce, Job, Queue
from pyqueue.events import QueueEvents

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
        assert job.debounce_id == debounce["id"]
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


@pytest.mark.parametrize("bull_version", WITH_DEBOUNCE)
async def test_python_debounce_is_node_debounce(
    node_bull: NodeBull, bull_version: str, pq: Queue[Any], raw_redis: aioredis.Redis,
    redis_url: str,
) -> None:
    listener = node_bull.start({"queue": pq.name, "action": "listen",
                                "events": ["debounced"], "until": 2, "timeoutMs": 15000})
    heard: list[str] = []
    with listener:
        await listener.await_for("ready")
        async with QueueEvents(pq.name, redis_url) as events:
            events.on("debounced", heard.append)
            first = await pq.add({"n": 1}, name="sync", debounce=Debounce(id="store-7"))
            again = await pq.add({"n": 2}, name="sync", debounce=Debounce(id="store-7"))
            # Node's add sees the key pyqueue wrote, and publishes on the same channel.
            [from_node] = await nadd(node_bull, pq.name, [
                {"name": "sync", "data": {"n": 3}, "opts": {"debounce": {"id": "store-7"}}}])
            await wait_until(lambda: _value(len(heard) >= 2), 5, "debounced events")
        node_heard = [e["args"] for e in (await listener.await_exit(15))
                      if e["event"] == "global:debounced"]
    assert again.id == first.id
    assert from_node == first.id
    assert heard == [first.id, first.id]
    assert node_heard == [[first.id], [first.id]]
    [seen] = (await njobs(node_bull, pq.name, [first.id])).values()
    assert seen["json"]["debounceId"] == "store-7"
    assert seen["json"]["opts"]["debounce"] == {"id": "store-7"}
    # A 4.16 worker finishes it and releases the id; pyqueue's next add is a new job.
    await _node_work(node_bull, pq.name, until=1)
    assert not await raw_redis.exists(_de_key(pq, "store-7"))
    later = await pq.add({"n": 4}, name="sync", debounce=Debounce(id="store-7"))
    assert later.id != first.id


async def _value(value: Any) -> Any:
    return value


@pytest.mark.parametrize("bull_version", BEFORE_DEBOUNCE)
async def test_python_debounce_beside_older_node_worker(
    node_bull: NodeBull, bull_version: str, pq: Queue[Any], raw_redis: aioredis.Redis,
) -> None:
    # Bull before 4.16 knows nothing of deid: its worker completes the job and
    # leaves the key. pyqueue's next add takes the stale key over instead of
    # being dropped for good.
    first = await pq.add({"n": 1}, debounce=Debounce(id="old-fleet"))
    await _node_work(node_bull, pq.name, until=1)
    assert await raw_redis.get(_de_key(pq, "old-fleet")) == first.id.encode()
    later = await pq.add({"n": 2}, debounce=Debounce(id="old-fleet"))
    assert later.id != first.id
    again = await pq.add({"n": 3}, debounce=Debounce(id="old-fleet"))
    assert again.id == later.id  # a live holder still debounces
    counts = await pq.get_job_counts()
    assert counts["completed"] == 1
    assert counts["waiting"] == 1
