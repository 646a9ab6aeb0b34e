"""The `pyqueue` command as a subprocess against real Redis, on pyqueue- and Node-made queues."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis
from tests.interop.bull import NodeBull

from pyqueue import Queue, Repeat, Worker, WorkerOptions
from pyqueue.embedded import RedisServer

FAST = WorkerOptions(drain_delay=1, guard_interval=200, stalled_interval=0, shutdown_grace=5)
PYQUEUE = Path(sys.executable).parent / "pyqueue"


def cli(redis_url: str, *args: str, stdin: str | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PYQUEUE), *args], capture_output=True, text=True, timeout=30, input=stdin,
        env={**os.environ, "REDIS_URL": redis_url, **(env or {})}, check=False,
    )


def cli_json(redis_url: str, *args: str) -> Any:
    done = cli(redis_url, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def one_error_line(done: subprocess.CompletedProcess[str], code: int, text: str) -> None:
    assert done.returncode == code, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("pyqueue: error: ")
    assert text in lines[0]
    assert "Traceback" not in done.stderr


async def _fail_some(queue: Queue[Any], failing: set[str], total: int) -> None:
    def handler(job: Any) -> str:
        if job.id in failing:
            raise ValueError(f"bad input {job.id}")
        return "ok"

    async with Worker(queue, handler, options=FAST) as worker:
        seen = 0
        async for _ in worker.events("completed", "failed"):
            seen += 1
            if seen == total:
                break


async def test_queues_jobs_and_job(redis_url: str, queue_name: str) -> None:
    async with Queue(queue_name, redis_url) as queue:
        for n in range(3):
            await queue.add({"n": n}, name="mail", job_id=f"m{n}")
        await _fail_some(queue, {"m1"}, 3)
        await queue.add({"n": 9}, name="later", job_id="d1", delay=3_600_000)
        await queue.add({"n": 10}, name="mail", job_id="w1")
        found = await queue.get_job("w1")
        assert found is not None
        await found.log("first line")
        await found.progress(40)

    listed = {q["name"]: q for q in cli_json(redis_url, "queues")}
    mine = listed[queue_name]
    assert mine["counts"] == {"waiting": 1, "active": 0, "delayed": 1, "failed": 1,
                              "completed": 2, "paused": 0}
    assert mine["paused"] is False
    assert mine["oldestWaitingAgeSeconds"] >= 0

    failed = cli_json(redis_url, "jobs", queue_name, "--state", "failed")
    assert [j["id"] for j in failed["jobs"]] == ["m1"]
    assert failed["total"] == 1
    page2 = cli_json(redis_url, "jobs", queue_name, "--state", "completed", "--page", "2",
                     "--page-size", "1")
    assert len(page2["jobs"]) == 1
    assert page2["pages"] == 2

    detail = cli_json(redis_url, "job", queue_name, "m1")
    assert detail["state"] == "failed"
    assert detail["failedReason"] == "bad input m1"
    assert any("ValueError" in t for t in detail["stacktrace"])
    assert detail["attemptsMade"] == 1
    waiting = cli_json(redis_url, "job", queue_name, "w1")
    assert waiting["logs"] == ["first line"]
    assert waiting["progress"] == 40
    assert waiting["data"] == {"n": 10}

    human = cli(redis_url, "job", queue_name, "m1")
    assert human.returncode == 0
    assert "bad input m1" in human.stdout
    assert "ValueError" in human.stdout
    table = cli(redis_url, "queues")
    assert queue_name in table.stdout


async def test_retry_remove_promote_pause_clean(redis_url: str, queue_name: str) -> None:
    async with Queue(queue_name, redis_url) as queue:
        for n in range(4):
            await queue.add({"n": n}, job_id=f"j{n}")
        await _fail_some(queue, {"j0", "j1", "j2"}, 4)
        await queue.add({}, job_id="d1", delay=3_600_000)

        one = cli(redis_url, "retry", queue_name, "j0")
        assert one.returncode == 0, one.stderr
        assert await queue.get_job_state("j0") == "waiting"

        declined = cli(redis_url, "retry", queue_name, "--all-failed", stdin="n\n")
        assert declined.returncode == 1
        assert "Retry 2 failed jobs" in declined.stderr
        assert await queue.get_failed_count() == 2

        confirmed = cli(redis_url, "retry", queue_name, "--all-failed", stdin="y\n")
        assert confirmed.returncode == 0, confirmed.stderr
        assert "retried 2" in confirmed.stdout
        assert await queue.get_failed_count() == 0
        assert cli_json(redis_url, "retry", queue_name, "--all-failed", "--yes") == {"retried": 0}

        promoted = cli(redis_url, "promote", queue_name, "d1")
        assert promoted.returncode == 0, promoted.stderr
        assert await queue.get_job_state("d1") == "waiting"
        assert cli(redis_url, "promote", queue_name, "d1").returncode == 1  # not delayed now

        assert cli(redis_url, "remove", queue_name, "j3").returncode == 0
        assert await queue.get_job("j3") is None
        assert cli(redis_url, "remove", queue_name, "j3").returncode == 3

        assert cli(redis_url, "pause", queue_name).returncode == 0
        assert await queue.is_paused()
        listed = {q["name"]: q for q in cli_json(redis_url, "queues")}
        assert listed[queue_name]["paused"] is True
        assert cli(redis_url, "resume", queue_name).returncode == 0
        assert not await queue.is_paused()

        await queue.add({}, job_id="c1")
        await _fail_some(queue, set(), 4)  # j0, j1, j2, d1 and c1: at least 4 finish
        completed = await queue.get_completed_count()
        assert completed >= 4
        kept = cli_json(redis_url, "clean", queue_name, "--state", "completed",
                        "--older-than", "1h")
        assert kept["count"] == 0
        cleaned = cli_json(redis_url, "clean", queue_name, "--state", "completed",
                           "--older-than", "0s")
        assert cleaned["count"] == completed
        assert await queue.get_completed_count() == 0


async def test_repeat_list_and_remove(redis_url: str, queue_name: str) -> None:
    async with Queue(queue_name, redis_url) as queue:
        await queue.add({}, name="nightly", repeat=Repeat(cron="0 3 * * *"))
        listed = cli_json(redis_url, "repeat", "list", queue_name)
        assert [e["cron"] for e in listed] == ["0 3 * * *"]
        missing = cli(redis_url, "repeat", "remove", queue_name, "nope")
        one_error_line(missing, 3, "no schedule 'nope'")
        assert cli(redis_url, "repeat", "remove", queue_name, listed[0]["key"]).returncode == 0
        assert await queue.get_repeatable_count() == 0
        assert await queue.get_delayed_count() == 0


async def test_search_command(redis_url: str, queue_name: str) -> None:
    async with Queue(queue_name, redis_url) as queue:
        await queue.add({"user": {"id": 5}, "email": "kim@example.com"}, name="a", job_id="x1")
        await queue.add({"user": {"id": 6}}, name="b", job_id="x2")
        await _fail_some(queue, {"x2"}, 2)
    by_path = cli_json(redis_url, "search", queue_name, "--path", "user.id", "--value", "5")
    assert [j["id"] for j in by_path["jobs"]] == ["x1"]
    assert by_path["cursor"] == "0"
    by_reason = cli_json(redis_url, "search", queue_name, "--reason", "BAD INPUT")
    assert [(j["id"], j["state"]) for j in by_reason["jobs"]] == [("x2", "failed")]
    assert [j["id"] for j in cli_json(redis_url, "search", queue_name, "--text", "KIM@")
            ["jobs"]] == ["x1"]
    assert [j["id"] for j in cli_json(redis_url, "search", queue_name, "--id", "x2")
            ["jobs"]] == ["x2"]
    assert [j["id"] for j in cli_json(redis_url, "search", queue_name, "--name", "a")
            ["jobs"]] == ["x1"]
    limited = cli_json(redis_url, "search", queue_name, "--state", "completed", "--limit", "1")
    assert len(limited["jobs"]) == 1
    one_error_line(cli(redis_url, "search", queue_name), 2, "give at least one of")


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (("jobs", "no-such-queue"), 3, "unknown queue 'no-such-queue'"),
        (("jobs",), 2, "Missing argument"),
        (("jobs", "q", "--state", "done"), 2, "--state"),
        (("frobnicate",), 2, "No such command"),
        (("clean", "q", "--older-than", "5"), 2, "--older-than: give a duration"),
        (("retry", "q"), 2, "give job ids or --all-failed"),
        (("queues", "--redis-url", "http://host"), 2, "--redis-url: scheme"),
        (("queues", "--prefix", ""), 2, "--prefix"),
    ],
)
def test_bad_arguments(redis_url: str, args: tuple[str, ...], code: int, text: str) -> None:
    one_error_line(cli(redis_url, *args), code, text)


def test_unknown_job(redis_url: str, queue_name: str, sync_redis: Any) -> None:
    sync_redis.set(f"bull:{queue_name}:id", 1)
    one_error_line(cli(redis_url, "job", queue_name, "42"), 3, "job '42' not found")


def test_unreachable_redis() -> None:
    from pyqueue.embedded import free_port

    url = f"redis://127.0.0.1:{free_port()}/0"
    one_error_line(cli(url, "queues"), 4, "cannot reach Redis at")


def test_wrong_password() -> None:
    with RedisServer() as server:
        base = server.url
        # Set after start: the server's own readiness check pings without a password.
        redis.Redis.from_url(base).config_set("requirepass", "s3cret")
        one_error_line(cli(base, "queues"), 4, "refused the credentials")
        wrong = base.replace("redis://", "redis://:nope@")
        done = cli(wrong, "queues")
        one_error_line(done, 4, "refused the credentials")
        assert "nope" not in done.stderr  # the password is never printed
        right = base.replace("redis://", "redis://:s3cret@")
        assert cli(right, "queues").returncode == 0


async def test_node_bull_queue(node_bull: NodeBull, redis_url: str, queue_name: str) -> None:
    node_bull.add(queue_name, [
        {"name": "ship", "data": {"order": 1}},
        {"name": "ship", "data": {"order": 2}, "opts": {"jobId": "bad-2"}},
        {"name": "ship", "data": {"order": 3}, "opts": {"delay": 3_600_000, "jobId": "later"}},
    ])
    await node_bull.arun({
        "queue": queue_name, "action": "process", "until": 2,
        "behaviour": {"*": {"failTimes": 99, "message": "warehouse closed"}},
        "settings": {"stalledInterval": 5000, "guardInterval": 200, "drainDelay": 1},
    })
    counts = {q["name"]: q["counts"] for q in cli_json(redis_url, "queues")}[queue_name]
    assert counts["failed"] == 2
    assert counts["delayed"] == 1
    detail = cli_json(redis_url, "job", queue_name, "bad-2")
    assert detail["failedReason"] == "warehouse closed"
    assert detail["data"] == {"order": 2}
    found = cli_json(redis_url, "search", queue_name, "--path", "order", "--value", "2")
    assert [j["id"] for j in found["jobs"]] == ["bad-2"]
    assert cli(redis_url, "promote", queue_name, "later").returncode == 0
    assert cli(redis_url, "retry", queue_name, "--all-failed", "--yes").returncode == 0
    # Node Bull sees what the CLI did.
    after = node_bull.counts(queue_name)
    assert after["counts"]["failed"] == 0
    assert after["counts"]["waiting"] == 3


def test_queues_marks_an_unreadable_queue_and_lists_the_others(
    redis_url: str, queue_name: str, sync_redis: redis.Redis
) -> None:
    sync_redis.set(f"bull:{queue_name}:id", 0)
    sync_redis.set(f"bull:{queue_name}-broken:id", 0)
    sync_redis.set(f"bull:{queue_name}-broken:wait", "not a list")
    listed = {q["name"]: q for q in cli_json(redis_url, "queues")}
    assert listed[queue_name]["error"] is None
    assert "WRONGTYPE" in listed[f"{queue_name}-broken"]["error"]
