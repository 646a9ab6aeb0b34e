"""``pyqueue migrate`` as a subprocess against real Redis."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from typing import Any

import redis
import redis.asyncio as aioredis
from tests.migrate.conftest import add_like_node_bull, key_dump
from tests.tools.test_cli import PYQUEUE, cli, cli_json, one_error_line

from pyqueue import Queue, Repeat


async def _bull_queue(url: str, name: str) -> None:
    async with Queue(name, url) as queue:
        for i in range(3):
            await queue.add({"n": i})
        await queue.add({"n": "p"}, priority=2)
        await queue.add({"n": "d"}, delay=3_600_000)
        await queue.add({"type": "daily"}, repeat=Repeat(cron="0 6 * * *"))
    raw = aioredis.Redis.from_url(url)
    try:
        await add_like_node_bull(raw, "bull", name, "12345", {"n": "c"})
    finally:
        await raw.aclose()


async def test_dry_run_prints_what_would_change_and_writes_nothing(
    redis_url: str, raw_redis: aioredis.Redis, queue_name: str,
) -> None:
    await _bull_queue(redis_url, queue_name)
    before = await key_dump(raw_redis, f"*{queue_name}*")
    done = cli(redis_url, "migrate", queue_name, "--from", "bull", "--to", "bullmq",
               "--to-prefix", "bmq", "--dry-run")
    assert done.returncode == 0, done.stderr
    for text in ("bull:" + queue_name, "bmq:" + queue_name, "12345", "bull-12345", "0 6 * * *",
                 queue_name):
        assert text in done.stdout, text
    (plan,) = cli_json(redis_url, "migrate", queue_name, "--to-prefix", "bmq", "--dry-run")
    assert plan["counts"]["wait"] == 5
    assert plan["counts"]["delayed"] == 2
    assert plan["counts"]["prioritized"] == 1
    assert plan["total"] == 7
    assert plan["renames"] == {"12345": "bull-12345"}
    assert [s["scheduler_id"] for s in plan["schedules"]] == [queue_name]
    assert await key_dump(raw_redis, f"*{queue_name}*") == before


async def test_migrate_confirms_moves_and_reports(
    redis_url: str, raw_redis: aioredis.Redis, queue_name: str,
) -> None:
    await _bull_queue(redis_url, queue_name)
    refused = cli(redis_url, "migrate", queue_name, "--to-prefix", "bmq")
    one_error_line(refused, 2, "confirm with --yes")
    (report,) = cli_json(redis_url, "migrate", queue_name, "--to-prefix", "bmq", "--yes")
    assert report["finished"]
    assert report["total"] == 6
    assert report["renames"] == {"12345": "bull-12345"}
    assert await raw_redis.llen(f"bull:{queue_name}:wait") == 0
    assert await raw_redis.zcard(f"bmq:{queue_name}:repeat") == 1
    (status,) = cli_json(redis_url, "migrate", queue_name, "--to-prefix", "bmq", "--status")
    assert status["renames"] == {"12345": "bull-12345"}
    assert status["total"] == 6
    text = cli(redis_url, "migrate", queue_name, "--to-prefix", "bmq", "--status")
    assert "6 job(s) moved in all" in text.stdout


async def test_in_place_refusal_is_one_line(redis_url: str, queue_name: str) -> None:
    await _bull_queue(redis_url, queue_name)
    async with Queue(queue_name, redis_url) as queue:
        name = queue.keys.worker_client_name
    worker = redis.Redis.from_url(redis_url, client_name=name)
    try:
        worker.ping()
        done = cli(redis_url, "migrate", queue_name, "--yes")
        one_error_line(done, 1, "worker connection(s) still use")
    finally:
        worker.close()


def test_plan_prints_the_cut_over_for_a_fleet() -> None:
    done = cli("redis://127.0.0.1:1/0", "migrate", "notifications", "order-digest",
               "--to-prefix", "bmq", "--plan", "--producer", "api", "--producer", "cron",
               "--node-worker", "node-1", "--python-worker", "py-1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("1. Check each queue with a dry run")
    assert "Switch api" in done.stdout
    assert "Switch cron" in done.stdout
    assert ("pyqueue migrate notifications order-digest --from bull --to bullmq --to-prefix bmq "
            "--follow") in done.stdout
    usage = cli("redis://127.0.0.1:1/0", "migrate", "a", "b", "--to-name", "x", "--plan")
    one_error_line(usage, 2, "--to-name: only with one queue")


async def test_follow_until_interrupted(redis_url: str, raw_redis: aioredis.Redis,
                                        queue_name: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        str(PYQUEUE), "migrate", queue_name, "--to-prefix", "bmq", "--follow", "--yes", "--json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "REDIS_URL": redis_url})
    try:
        async with Queue(queue_name, redis_url) as queue:
            ids = [(await queue.add({"n": i})).id for i in range(5)]
        deadline = time.monotonic() + 30
        while await raw_redis.llen(f"bmq:{queue_name}:wait") < 5:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        assert proc.returncode is None
        proc.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.communicate()
    assert proc.returncode == 0, err
    reports: list[dict[str, Any]] = json.loads(out)
    assert reports[0]["moved"] == {"wait": 5}
    assert not reports[0]["finished"]
    found = sorted(i.decode() for i in await raw_redis.lrange(f"bmq:{queue_name}:wait", 0, -1))
    assert found == sorted(ids)
