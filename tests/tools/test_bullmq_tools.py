"""The operating tools on BullMQ queues (issue 31), beside Bull ones, on real Redis.

Queues are made by pyqueue's BullMQ mode through the public API, and once by
Node BullMQ; the tools must find them, count them by BullMQ's keys and run the
job commands through a Queue opened in BullMQ mode.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from tests.bullmq.nodebullmq import NodeBullMQ
from tests.tools.test_cli import FAST, cli, cli_json, one_error_line

from pyqueue import Queue, Worker
from pyqueue.tools import overview
from pyqueue.tools.dashboard import create_app


@pytest.fixture
def prefix() -> str:
    return f"mq{uuid.uuid4().hex[:10]}"


def run(redis_url: str, prefix: str, *args: str) -> Any:
    return cli_json(redis_url, *args, "--prefix", prefix)


async def _bullmq_queue(redis_url: str, prefix: str) -> None:
    """Queue "mq" in BullMQ mode: 1 completed, 1 failed, 2 waiting, 1 prioritized, 1 delayed."""
    async with Queue("mq", redis_url, prefix=prefix, protocol="bullmq") as queue:
        await queue.add({"n": 1}, name="ok", job_id="c1")
        await queue.add({"n": 2}, name="bad", job_id="f1")

        def handler(job: Any) -> str:
            if job.id == "f1":
                raise ValueError("broken f1")
            return "done"

        async with Worker(queue, handler, options=FAST) as worker:
            seen = 0
            async for _ in worker.events("completed", "failed"):
                seen += 1
                if seen == 2:
                    break
        await queue.add({"n": 3}, name="mail", job_id="w1")
        await queue.add({"n": 4}, name="mail", job_id="w2")
        await queue.add({"n": 5}, name="vip", job_id="p1", priority=3)
        await queue.add({"n": 6}, name="later", job_id="d1", delay=3_600_000)


async def test_queues_lists_bullmq_beside_bull(redis_url: str, prefix: str) -> None:
    await _bullmq_queue(redis_url, prefix)
    async with Queue("b4", redis_url, prefix=prefix, protocol="bull") as bull:
        await bull.add({"n": 1}, job_id="x1")

    listed = {q["name"]: q for q in run(redis_url, prefix, "queues")}
    assert set(listed) == {"mq", "b4"}
    assert listed["mq"]["format"] == "bullmq"
    assert listed["b4"]["format"] == "bull"
    assert listed["mq"]["counts"] == {
        "waiting": 2, "active": 0, "delayed": 1, "failed": 1, "completed": 1, "paused": 0,
        "prioritized": 1, "waiting-children": 0,
    }
    assert listed["mq"]["paused"] is False
    assert listed["mq"]["oldestWaitingAgeSeconds"] >= 0
    assert listed["b4"]["counts"]["waiting"] == 1
    assert listed["mq"]["error"] is None

    table = cli(redis_url, "queues", "--prefix", prefix)
    assert table.returncode == 0, table.stderr
    rows = {line.split()[0]: line.split() for line in table.stdout.splitlines() if line.strip()}
    # fmt, then wait = waiting + prioritized (3), act, delay, fail, done, psd.
    assert rows["mq"][1:8] == ["mq", "3", "0", "1", "1", "1", "0"]
    assert rows["b4"][1:3] == ["bull", "1"]


async def test_pause_shows_in_meta_and_counts(redis_url: str, prefix: str) -> None:
    await _bullmq_queue(redis_url, prefix)
    paused = cli(redis_url, "pause", "mq", "--prefix", prefix)
    assert paused.returncode == 0, paused.stderr
    async with Queue("mq", redis_url, prefix=prefix, protocol="bullmq") as queue:
        assert await queue.is_paused()
        stats = (await overview.queue_stats(queue.client, prefix, ["mq"]))[0]
    assert stats.paused is True
    assert stats.format == "bullmq"
    # BullMQ keeps a paused queue's jobs in wait: they still count as waiting.
    assert stats.counts["waiting"] == 2
    listed = {q["name"]: q for q in run(redis_url, prefix, "queues")}
    assert listed["mq"]["paused"] is True
    resumed = cli(redis_url, "resume", "mq", "--prefix", prefix)
    assert resumed.returncode == 0, resumed.stderr
    async with Queue("mq", redis_url, prefix=prefix, protocol="bullmq") as queue:
        assert not await queue.is_paused()


async def test_job_commands_on_bullmq(redis_url: str, prefix: str) -> None:
    await _bullmq_queue(redis_url, prefix)
    failed = run(redis_url, prefix, "jobs", "mq", "--state", "failed")
    assert [j["id"] for j in failed["jobs"]] == ["f1"]
    detail = run(redis_url, prefix, "job", "mq", "f1")
    assert detail["state"] == "failed"
    assert detail["failedReason"] == "broken f1"
    waiting = run(redis_url, prefix, "jobs", "mq", "--state", "waiting")
    assert sorted(j["id"] for j in waiting["jobs"]) == ["w1", "w2"]

    retried = cli(redis_url, "retry", "mq", "f1", "--prefix", prefix)
    assert retried.returncode == 0, retried.stderr
    removed = cli(redis_url, "remove", "mq", "w1", "--prefix", prefix)
    assert removed.returncode == 0, removed.stderr
    async with Queue("mq", redis_url, prefix=prefix, protocol="bullmq") as queue:
        assert await queue.get_job_state("f1") == "waiting"
        assert await queue.get_job("w1") is None

    found = run(redis_url, prefix, "search", "mq", "--name", "mail")
    assert [j["id"] for j in found["jobs"]] == ["w2"]
    # A search with no state walks BullMQ's prioritized set too.
    vip = run(redis_url, prefix, "search", "mq", "--name", "vip")
    assert [j["id"] for j in vip["jobs"]] == ["p1"]
    only = run(redis_url, prefix, "search", "mq", "--state", "prioritized")
    assert [j["id"] for j in only["jobs"]] == ["p1"]

    cleaned = cli(redis_url, "clean", "mq", "--state", "completed", "--older-than", "0s",
                  "--prefix", prefix)
    assert cleaned.returncode == 0, cleaned.stderr
    async with Queue("mq", redis_url, prefix=prefix, protocol="bullmq") as queue:
        assert await queue.get_job("c1") is None


async def test_missing_queue_is_one_line(redis_url: str, prefix: str) -> None:
    one_error_line(cli(redis_url, "jobs", "nope", "--prefix", prefix), 3, "unknown queue")


async def test_node_bullmq_queue_in_queues_and_jobs(
    redis_url: str, node_bullmq: NodeBullMQ, queue_name: str,
) -> None:
    # BullMQ's own Queue made it: no pyqueue code wrote a key of it.
    ids = await node_bullmq.add(queue_name, [
        {"name": "a", "data": {"n": 1}},
        {"name": "b", "data": {"n": 2}, "opts": {"priority": 5}},
        {"name": "c", "data": {"n": 3}, "opts": {"delay": 3_600_000}},
    ])
    paused = await node_bullmq.admin(queue_name, "pause")
    assert paused["ok"], paused
    listed = {q["name"]: q for q in cli_json(redis_url, "queues")}
    mine = listed[queue_name]
    assert mine["format"] == "bullmq"
    assert mine["paused"] is True
    assert mine["counts"] == {
        "waiting": 1, "active": 0, "delayed": 1, "failed": 0, "completed": 0, "paused": 0,
        "prioritized": 1, "waiting-children": 0,
    }
    prioritized = cli_json(redis_url, "jobs", queue_name, "--state", "prioritized")
    assert [j["id"] for j in prioritized["jobs"]] == [ids[1]]
    assert prioritized["total"] == 1
    detail = cli_json(redis_url, "job", queue_name, ids[2])
    assert detail["state"] == "delayed"
    assert detail["data"] == {"n": 3}
    resumed = cli(redis_url, "resume", queue_name)
    assert resumed.returncode == 0, resumed.stderr
    assert (await node_bullmq.state(queue_name))["isPaused"] is False


async def test_bullmq_state_on_bull_queue_is_one_line(redis_url: str, prefix: str) -> None:
    async with Queue("b4", redis_url, prefix=prefix, protocol="bull") as bull:
        await bull.add({"n": 1}, job_id="x1", priority=2)
    done = cli(redis_url, "jobs", "b4", "--state", "prioritized", "--prefix", prefix)
    one_error_line(done, 2, "BullMQ queues only")
    searched = cli(redis_url, "search", "b4", "--state", "waiting-children", "--prefix", prefix)
    one_error_line(searched, 2, "BullMQ queues only")


async def test_dashboard_shows_bullmq_queue_and_jobs(redis_url: str, prefix: str) -> None:
    await _bullmq_queue(redis_url, prefix)
    app = create_app(redis_url, prefix)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost:8765") as http:
        overview_json = (await http.get("/api/overview")).json()
        queues = {q["name"]: q for q in overview_json["queues"]}
        assert queues["mq"]["format"] == "bullmq"
        assert queues["mq"]["counts"]["prioritized"] == 1
        assert queues["mq"]["counts"]["failed"] == 1
        home = await http.get("/")
        assert home.status_code == 200
        assert 'href="/queue?name=mq' in home.text
        page = await http.get("/queue?name=mq&state=prioritized")
        assert page.status_code == 200, page.text
        assert 'id="format-badge">bullmq<' in page.text
        assert ">p1</a>" in page.text
        assert ">w1</a>" not in page.text
        failed = await http.get("/queue?name=mq&state=failed")
        assert ">f1</a>" in failed.text
        job = await http.get("/job?queue=mq&id=f1")
        assert job.status_code == 200
        assert "broken f1" in job.text
    await app.aclose()
