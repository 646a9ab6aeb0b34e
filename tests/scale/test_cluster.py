"""pyqueue on a real Redis Cluster: 3 masters + 3 replicas on loopback ports.

One cluster serves the whole module (forming it takes a couple of seconds);
every test uses its own hash tag, so tests never share a queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from redis.exceptions import ResponseError
from tests.scale.servers import Cluster

from pyqueue import BulkJob, JobOptions, Queue, QueueEvents, Repeat, Worker, WorkerOptions
from pyqueue.errors import InvalidOptionsError

pytestmark = pytest.mark.slow

FAST = WorkerOptions(
    lock_duration=1000, stalled_interval=500, guard_interval=200, drain_delay=0.2,
    shutdown_grace=2.0,
)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with Cluster() as c:
        yield c


@pytest.fixture
def tag() -> str:
    return f"{{t{uuid.uuid4().hex[:8]}}}"


@pytest.fixture
async def made(cluster: Cluster) -> AsyncIterator[list[Any]]:
    """Queues and workers a test made, closed afterwards (workers first)."""
    things: list[Any] = []
    yield things
    for thing in sorted(things, key=lambda t: not isinstance(t, Worker)):
        await thing.close()


async def _eventually(check: Any, timeout: float = 10.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not true within {timeout}s: last {value!r}")
        await asyncio.sleep(0.05)


def test_prefix_without_hash_tag_is_refused_at_start(cluster: Cluster) -> None:
    with pytest.raises(InvalidOptionsError, match="hash tag"):
        Queue("emails", cluster.url)
    with pytest.raises(InvalidOptionsError, match="hash tag"):
        Worker("emails", lambda job: None, redis_url=cluster.url)
    with pytest.raises(InvalidOptionsError, match="hash tag"):
        QueueEvents("emails", cluster.url)
    with pytest.raises(InvalidOptionsError, match="hash tag"):
        Queue("emails", cluster.url, prefix="{}")  # an empty tag hashes the whole key


def test_cluster_url_is_checked(cluster: Cluster) -> None:
    port = cluster.nodes[0].port
    with pytest.raises(InvalidOptionsError, match="only database 0"):
        Queue("q", f"redis+cluster://127.0.0.1:{port}/2", prefix="{x}")
    with pytest.raises(InvalidOptionsError, match="host:port"):
        Queue("q", "redis+cluster://127.0.0.1", prefix="{x}")
    with pytest.raises(InvalidOptionsError, match="unknown option 'bogus'"):
        Queue("q", f"redis+cluster://127.0.0.1:{port}?bogus=1", prefix="{x}")


async def test_plain_url_to_a_cluster_node_says_what_to_use(cluster: Cluster) -> None:
    # A tag whose slot another node serves: the node answers MOVED.
    node = cluster.nodes[0]
    tag = next(
        f"{{p{i}}}" for i in range(1000) if cluster.master_of(f"{{p{i}}}:x").port != node.port
    )
    queue: Queue[Any] = Queue("q", f"redis://127.0.0.1:{node.port}", prefix=tag)
    try:
        with pytest.raises(ResponseError, match="redis\\+cluster://"):
            await queue.add({"x": 1})
    finally:
        await queue.close()


async def test_add_bulk_delayed_process_and_events(
    cluster: Cluster, tag: str, made: list[Any]
) -> None:
    queue: Queue[Any] = Queue("orders", cluster.url, prefix=tag)
    events = QueueEvents("orders", cluster.url, prefix=tag)
    made += [queue, events]
    heard: list[str] = []
    events.on("completed", lambda job_id, *rest: heard.append(job_id))
    await events.start()
    seen: list[int] = []

    async def handler(job: Any) -> int:
        seen.append(job.data["n"])
        return int(job.data["n"])

    worker = Worker(queue, handler, options=FAST, concurrency=4)
    made.append(worker)
    await worker.start()
    await queue.add({"n": 0})
    await queue.add_bulk([BulkJob({"n": n}) for n in range(1, 50)])
    await queue.add({"n": 50}, delay=300)
    await _eventually(lambda: _completed(queue, 51))
    await _eventually(lambda: _true(len(heard) == 51))
    assert sorted(seen) == list(range(51))
    # Every key of the queue is on one master, the one its tag hashes to.
    master = cluster.master_of(f"{tag}:orders:id")
    with contextlib.closing(redis.Redis(port=master.port)) as c:
        assert c.exists(f"{tag}:orders:completed")
    metrics = await queue.get_metrics("completed")
    assert metrics["count"] >= 0  # readable on the slot's master (no CROSSSLOT)


async def test_repeat_on_cluster(cluster: Cluster, tag: str, made: list[Any]) -> None:
    queue: Queue[Any] = Queue("ticks", cluster.url, prefix=tag)
    made.append(queue)
    runs: list[str] = []
    worker = Worker(queue, lambda job: runs.append(job.id), options=FAST)
    made.append(worker)
    await worker.start()
    await queue.add({}, repeat=Repeat(every=200, limit=3))
    await _eventually(lambda: _true(len(runs) >= 3))
    assert len(set(runs)) == len(runs)


async def test_stalled_job_is_recovered_on_cluster(
    cluster: Cluster, tag: str, made: list[Any]
) -> None:
    queue: Queue[Any] = Queue("stall", cluster.url, prefix=tag)
    made.append(queue)
    job = await queue.add({"x": 1})
    # As if a worker took the job and died before it locked it: in active, no lock.
    admin = aioredis.RedisCluster(host="127.0.0.1", port=cluster.nodes[0].port)
    try:
        await admin.lmove(f"{tag}:stall:wait", f"{tag}:stall:active", "RIGHT", "LEFT")
    finally:
        await admin.aclose()
    done: list[str] = []
    stalled: list[str] = []
    worker = Worker(queue, lambda j: done.append(j.id), options=FAST)
    worker.on("stalled", stalled.append)
    made.append(worker)
    await worker.start()
    await _eventually(lambda: _true(done == [job.id]))
    assert stalled == [job.id]


async def test_queues_with_different_tags_spread_over_the_masters(
    cluster: Cluster, made: list[Any]
) -> None:
    # One tag per master, found by asking the cluster where each would go.
    tags: dict[int, str] = {}
    for _i in range(2000):
        candidate = f"{{s{uuid.uuid4().hex[:6]}}}"
        tags.setdefault(cluster.master_of(f"{candidate}:q:id").port, candidate)
        if len(tags) == 3:
            break
    assert len(tags) == 3
    done: list[str] = []
    for tag in tags.values():
        queue: Queue[Any] = Queue("q", cluster.url, prefix=tag)
        worker = Worker(queue, lambda job: done.append(job.id), options=FAST)
        made += [queue, worker]
        await worker.start()
        await queue.add_bulk([BulkJob({"n": n}) for n in range(10)])
    await _eventually(lambda: _true(len(done) == 30))
    for port, tag in tags.items():
        with contextlib.closing(redis.Redis(port=port)) as c:
            assert c.zcard(f"{tag}:q:completed") == 10


async def test_redis_cluster_client_as_connection(
    cluster: Cluster, tag: str, made: list[Any]
) -> None:
    client = aioredis.RedisCluster(host="127.0.0.1", port=cluster.nodes[1].port)
    try:
        queue: Queue[Any] = Queue("via-client", connection=client, prefix=tag)
        made.append(queue)
        worker = Worker(queue, lambda job: job.data["n"] + 1, options=FAST)
        made.append(worker)
        await worker.start()
        job = await queue.add({"n": 1}, **_opts(JobOptions(attempts=2)))
        await _eventually(lambda: _completed(queue, 1))
        fetched = await queue.get_job(job.id)
        assert fetched is not None
        assert fetched.return_value == 2
    finally:
        await client.aclose()


async def test_follows_the_slot_when_it_moves_to_another_master(
    cluster: Cluster, tag: str, made: list[Any]
) -> None:
    """Resharding the queue's slot while jobs flow: MOVED, ASK and TRYAGAIN are
    followed, and every added job is processed once."""
    queue: Queue[Any] = Queue("moving", cluster.url, prefix=tag)
    made.append(queue)
    done: list[int] = []
    worker = Worker(queue, lambda job: done.append(job.data["n"]), options=FAST, concurrency=4)
    made.append(worker)
    await worker.start()
    acked: list[int] = []

    async def produce() -> None:
        for n in range(300):
            for _ in range(50):
                try:
                    await queue.add({"n": n}, job_id=f"j{n}")
                    acked.append(n)
                    break
                except (redis.ConnectionError, ResponseError):
                    await asyncio.sleep(0.05)
            await asyncio.sleep(0.002)

    producer = asyncio.create_task(produce())
    await asyncio.sleep(0.2)
    source = cluster.master_of(f"{tag}:moving:id")
    target = next(
        n for n in cluster.nodes
        if n.port != source.port and n.running and _is_master(n)
    )
    await asyncio.to_thread(_migrate_slot, f"{tag}:moving:id", source.port, target.port)
    await producer
    await _eventually(lambda: _true(len(set(done)) == len(acked)), timeout=20)
    assert sorted(set(done)) == sorted(acked)
    assert cluster.master_of(f"{tag}:moving:id").port == target.port


# --- helpers -------------------------------------------------------------------


async def _completed(queue: Queue[Any], n: int) -> bool:
    return (await queue.get_job_counts())["completed"] == n


async def _true(value: bool) -> bool:
    return value


def _opts(options: JobOptions) -> dict[str, Any]:
    return {"attempts": options.attempts}


def _is_master(node: Any) -> bool:
    with contextlib.closing(redis.Redis(port=node.port)) as c:
        return c.info("replication")["role"] == "master"


def _migrate_slot(key: str, source: int, target: int) -> None:
    """Move ``key``'s slot from one master to another, keys and all (CLUSTER SETSLOT)."""
    src = redis.Redis(port=source)
    dst = redis.Redis(port=target)
    try:
        slot = int(src.execute_command("CLUSTER KEYSLOT", key))
        src_id = src.execute_command("CLUSTER MYID").decode()
        dst_id = dst.execute_command("CLUSTER MYID").decode()
        dst.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", src_id)
        src.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", dst_id)
        while True:
            keys = src.execute_command("CLUSTER GETKEYSINSLOT", slot, 20)
            if not keys:
                break
            src.execute_command("MIGRATE", "127.0.0.1", target, "", 0, 5000, "KEYS", *keys)
        for client in (dst, src):
            client.execute_command("CLUSTER SETSLOT", slot, "NODE", dst_id)
    finally:
        src.close()
        dst.close()


@pytest.mark.interop
async def test_node_bull_and_pyqueue_share_a_clustered_queue(
    cluster: Cluster, tag: str, made: list[Any]
) -> None:
    """Node Bull (ioredis Cluster) adds, pyqueue processes; pyqueue adds, Node processes."""
    from tests.interop.bull import NodeBull, check_node_modules

    if os.environ.get("PYQUEUE_SKIP_INTEROP") == "1":  # as tests/interop/conftest.py does
        pytest.skip("PYQUEUE_SKIP_INTEROP=1: Node Bull interop tests skipped")
    check_node_modules()
    nodes = [{"host": "127.0.0.1", "port": n.port} for n in cluster.nodes[:3]]
    node = NodeBull("bull", "redis://unused", prefix=tag)
    ids = await asyncio.to_thread(node.run, {
        "queue": "shared", "action": "addBulk", "clusterNodes": nodes,
        "jobs": [{"data": {"n": n}} for n in range(5)],
    })
    added = next(e for e in ids if e["event"] == "added")["ids"]
    queue: Queue[Any] = Queue("shared", cluster.url, prefix=tag)
    made.append(queue)
    seen: list[int] = []
    worker = Worker(queue, lambda job: seen.append(job.data["n"]) or job.data["n"], options=FAST)
    made.append(worker)
    await worker.start()
    await _eventually(lambda: _completed(queue, 5))
    await worker.close()
    assert sorted(seen) == list(range(5))
    for n in range(3):
        await queue.add({"n": 100 + n}, name="from-python")
    events = await asyncio.to_thread(node.run, {
        "queue": "shared", "action": "process", "clusterNodes": nodes, "until": 3,
        "timeoutMs": 20000, "behaviour": {"*": {"return": "ok"}},
    }, 40.0)
    done = [e for e in events if e["event"] == "completed"]
    assert sorted(e["id"] for e in done) == ["6", "7", "8"]
    assert len(added) == 5
    assert (await queue.get_job_counts())["completed"] == 8


def test_sync_queue_on_cluster(cluster: Cluster, tag: str) -> None:
    from pyqueue import SyncQueue

    by_url: SyncQueue[Any] = SyncQueue("sync", cluster.url, prefix=tag)
    try:
        by_url.add({"n": 1})
    finally:
        by_url.close()
    client = aioredis.RedisCluster(host="127.0.0.1", port=cluster.nodes[2].port)
    by_client: SyncQueue[Any] = SyncQueue("sync", connection=client, prefix=tag)
    try:
        by_client.add({"n": 2})
        assert by_client.get_job_counts()["waiting"] == 2
    finally:
        by_client.close()
