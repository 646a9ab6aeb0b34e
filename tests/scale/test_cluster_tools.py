"""The `pyqueue` CLI and the metrics on a real Redis Cluster (3 masters + 3 replicas).

The queues are placed on purpose on *different* masters, so a tool that looks at
one node only (SCAN, CLIENT LIST on a random node) misses some and fails here.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.scale.servers import Cluster

from pyqueue import Queue, Repeat, Worker, WorkerOptions
from pyqueue.embedded import free_port
from pyqueue.tools import overview
from pyqueue.tools.cli_support import Settings
from pyqueue.tools.metrics import QueueCollector

pytestmark = pytest.mark.slow

PYQUEUE = Path(sys.executable).parent / "pyqueue"
FAST = WorkerOptions(drain_delay=0.5, guard_interval=200, stalled_interval=0, shutdown_grace=2)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with Cluster() as c:
        yield c


def _tags_on_every_master(cluster: Cluster, key: str) -> list[str]:
    """One hash tag per master (``key`` formats the tag into a key of the queue)."""
    tags: dict[int, str] = {}
    while len(tags) < cluster.masters_count:
        tag = f"{{m{uuid.uuid4().hex[:6]}}}"
        tags.setdefault(cluster.master_of(key.format(tag=tag)).port, tag)
    return list(tags.values())


@pytest.fixture
async def spread(cluster: Cluster) -> tuple[str, list[str]]:
    """Queues ``<tag>q`` under a plain prefix, one per master, each with some jobs."""
    prefix = f"p{uuid.uuid4().hex[:6]}"
    names = [f"{tag}q" for tag in _tags_on_every_master(cluster, f"{prefix}:{{tag}}q:id")]
    for i, name in enumerate(names):
        async with Queue(name, cluster.url, prefix=prefix) as queue:
            for n in range(i + 1):
                await queue.add({"n": n})
    return prefix, names


def cli(cluster: Cluster, prefix: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PYQUEUE), *args, "--prefix", prefix], capture_output=True, text=True, timeout=60,
        env={**os.environ, "REDIS_URL": cluster.url, "COLUMNS": "200"}, check=False,
    )


def cli_json(cluster: Cluster, prefix: str, *args: str) -> Any:
    done = cli(cluster, prefix, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


async def test_queues_on_every_master_are_listed(
    cluster: Cluster, spread: tuple[str, list[str]]
) -> None:
    prefix, names = spread
    listed = cli_json(cluster, prefix, "queues")
    assert [q["name"] for q in listed] == sorted(names)
    waiting = {q["name"]: q["counts"]["waiting"] for q in listed}
    assert waiting == {name: i + 1 for i, name in enumerate(names)}


async def test_hash_tag_prefix_jobs_job_and_retry(cluster: Cluster) -> None:
    prefix = f"{{bw{uuid.uuid4().hex[:6]}}}"
    async with Queue("emails", cluster.url, prefix=prefix) as queue:
        good = await queue.add({"to": "a@example.com"})
        bad = await queue.add({"to": "nobody"}, name="bounce")

        def handler(job: Any) -> str:
            if job.name == "bounce":
                raise ValueError("no such mailbox")
            return "sent"

        async with Worker(queue, handler, options=FAST) as worker:
            async for _ in worker.events("completed", "failed"):
                if sum((await queue.get_job_counts("completed", "failed")).values()) == 2:
                    break
        listed = cli_json(cluster, prefix, "queues")
        assert [(q["name"], q["counts"]["completed"], q["counts"]["failed"]) for q in listed] == [
            ("emails", 1, 1)
        ]
        failed = cli_json(cluster, prefix, "jobs", "emails", "--state", "failed")
        assert [j["id"] for j in failed["jobs"]] == [bad.id]
        info = cli_json(cluster, prefix, "job", "emails", good.id)
        assert (info["state"], info["returnvalue"]) == ("completed", "sent")
        assert cli_json(cluster, prefix, "retry", "emails", bad.id) == {bad.id: "retried"}
        assert await queue.get_job_state(bad.id) == "waiting"
        found = cli_json(cluster, prefix, "search", "emails", "--text", "example.com")
        assert [j["id"] for j in found["jobs"]] == [good.id]
        cleaned = cli(cluster, prefix, "clean", "emails", "--older-than", "0s")
        assert cleaned.returncode == 0, cleaned.stderr
        assert await queue.get_job(good.id) is None
        done = cli(cluster, prefix, "pause", "emails")
        assert done.returncode == 0, done.stderr
        assert await queue.is_paused()
        frame = cli(cluster, prefix, "watch", "--once")
        assert frame.returncode == 0, frame.stderr
        assert "emails" in frame.stdout
        assert "paused" in frame.stdout
        await queue.add({}, name="digest", repeat=Repeat(every=60_000))
        schedules = cli_json(cluster, prefix, "repeat", "list", "emails")
        assert [r["name"] for r in schedules] == ["digest"]
        done = cli(cluster, prefix, "resume", "emails")
        assert done.returncode == 0, done.stderr
        assert not await queue.is_paused()
        done = cli(cluster, prefix, "job", "nope", "1")
        assert done.returncode == 3, done.stderr  # unknown queue, as on one server


async def test_workers_are_counted_on_every_master(
    cluster: Cluster, spread: tuple[str, list[str]]
) -> None:
    prefix, names = spread
    workers = [
        Worker(name, lambda job: None, redis_url=cluster.url, prefix=prefix, options=FAST)
        for name in names
    ]
    try:
        for worker in workers:
            await worker.start()
        deadline = time.monotonic() + 20
        while True:
            listed = cli_json(cluster, prefix, "queues")
            if all(q["workers"] == 1 for q in listed) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert {q["name"]: q["workers"] for q in listed} == dict.fromkeys(names, 1)
    finally:
        for worker in workers:
            await worker.close()


async def test_collector_on_a_cluster_client(
    cluster: Cluster, spread: tuple[str, list[str]]
) -> None:
    prefix, names = spread
    client = Settings(cluster.url, prefix, False).client()
    try:
        assert await overview.discover_queues(client, prefix) == sorted(names)
        collector = QueueCollector(client, prefix)
        await collector.refresh()
        got = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in collector.collect() for s in family.samples
        }
    finally:
        await client.aclose()
    for i, name in enumerate(names):
        assert got[("pyqueue_queue_jobs", (("queue", name), ("state", "waiting")))] == i + 1
    assert got[("pyqueue_queue_up", ())] == 1


async def test_exporter_serves_a_cluster(
    cluster: Cluster, spread: tuple[str, list[str]]
) -> None:
    import urllib.request

    prefix, names = spread
    port = free_port()
    proc = await asyncio.to_thread(
        subprocess.Popen,
        [str(PYQUEUE), "exporter", "--port", str(port), "--interval", "0.5", "--prefix", prefix],
        env={**os.environ, "REDIS_URL": cluster.url}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stderr is not None
        line = await asyncio.to_thread(proc.stdout.readline)
        assert "serving" in line, proc.stderr.read() if proc.poll() is not None else line
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
            text = resp.read().decode()
        with opener.open(f"http://127.0.0.1:{port}/readyz", timeout=10) as resp:
            assert resp.status == 200
    finally:
        proc.terminate()
        proc.wait(10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    jobs = {
        s.labels["queue"]: s.value
        for family in text_string_to_metric_families(text) for s in family.samples
        if s.name == "pyqueue_queue_jobs" and s.labels.get("state") == "waiting"
    }
    assert jobs == {name: i + 1 for i, name in enumerate(names)}


def test_a_bad_cluster_url_is_a_usage_error(cluster: Cluster) -> None:
    # A bad cluster URL is a usage error naming the problem, not a traceback.
    done = subprocess.run(
        [str(PYQUEUE), "queues", "--prefix", "{x}"], capture_output=True, text=True,
        timeout=30, env={**os.environ, "REDIS_URL": "redis+cluster://127.0.0.1"}, check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "host:port" in done.stderr
    assert "Traceback" not in done.stderr


async def test_dashboard_on_a_cluster(cluster: Cluster, spread: tuple[str, list[str]]) -> None:
    import httpx

    from pyqueue.tools.dashboard import create_app

    prefix, names = spread
    app = create_app(cluster.url, prefix)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as web:
            deadline = time.monotonic() + 20
            while True:
                shown = await web.get("/api/overview")
                assert shown.status_code == 200, shown.text
                if not shown.json().get("scanning"):
                    break
                assert time.monotonic() < deadline
                await asyncio.sleep(0.1)
            assert sorted(q["name"] for q in shown.json()["queues"]) == sorted(names)
            for name in names:
                page = await web.get("/queue", params={"name": name})
                assert page.status_code == 200, (name, page.text[:300])
    finally:
        await app.aclose()
