"""`pyqueue doctor`, `workers` and `queues` on a stuck queue: a Node Bull worker killed with
jobs active, a paused queue with jobs waiting, a rate-limited queue, an overdue schedule."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis
from tests.interop.bull import NodeBull
from tests.tools.test_cli_watch import ANSI, Terminal

from pyqueue import Queue, Repeat

PYQUEUE = Path(sys.executable).parent / "pyqueue"
NODE_SETTINGS = {"stalledInterval": 60_000, "lockDuration": 3000, "drainDelay": 1}


def cli(redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PYQUEUE), *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "REDIS_URL": redis_url}, check=False)


def doctor(redis_url: str, prefix: str, *queues: str) -> tuple[int, dict[str, Any]]:
    done = cli(redis_url, "doctor", *queues, "--prefix", prefix, "--json")
    assert done.returncode in (0, 1), done.stderr
    found = json.loads(done.stdout)
    return done.returncode, {q["name"]: q for q in found["queues"]}


def _codes(queue: dict[str, Any]) -> list[str]:
    return [f["code"] for f in queue["findings"]]


def _wait(check: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"never true; last {value!r}")
        time.sleep(0.1)


async def test_doctor_explains_a_node_worker_killed_with_jobs_active(
    node_available: None, redis_url: str, queue_name: str
) -> None:
    prefix = f"doc{queue_name[2:10]}"
    node = NodeBull("bull", redis_url, prefix=prefix)
    node.add("orders", [{"name": "ship", "data": {"n": n}} for n in range(5)])
    with node.start({"queue": "orders", "action": "process", "concurrency": 3,
                     "behaviour": {"*": {"hang": True}}, "settings": NODE_SETTINGS,
                     "timeoutMs": 120_000}) as proc:
        _wait(lambda: len(proc.named("processing")) == 3)
        code, found = doctor(redis_url, prefix, "orders")
        orders = found["orders"]
        # Alive: a Node worker holds its jobs, nothing is stuck.
        assert [w["kind"] for w in orders["workerList"]] == ["node"]
        assert orders["stuckActive"] == 0
        workers = cli(redis_url, "workers", "orders", "--prefix", prefix)
        assert workers.returncode == 0
        assert "node" in workers.stdout
        proc.kill()
    code, found = doctor(redis_url, prefix, "orders")
    orders = found["orders"]
    assert code == 1
    assert orders["workerList"] == []
    assert _codes(orders)[:2] == ["no-workers", "stuck-active"]
    assert sorted(orders["orphaned"] + orders["lockGone"]) == ["1", "2", "3"]
    # Once the dead worker's locks lapse, the cause says so.
    _wait(lambda: len(doctor(redis_url, prefix, "orders")[1]["orders"]["lockGone"]) == 3)
    text = cli(redis_url, "doctor", "orders", "--prefix", prefix)
    assert text.returncode == 1
    assert "CRITICAL no live worker, with 3 active and 2 waiting jobs" in text.stdout
    assert "3 have no lock" in text.stdout
    assert "fix: start a worker for this queue" in text.stdout
    listed = json.loads(cli(redis_url, "queues", "--prefix", prefix, "--json").stdout)
    assert listed[0]["flags"][:2] == ["no workers", "stuck"]


async def test_doctor_finds_paused_limited_and_overdue_queues(
    redis_url: str, queue_name: str
) -> None:
    prefix = f"doc{queue_name[2:10]}"
    client = redis.Redis.from_url(redis_url)
    async with Queue("reports", redis_url, prefix=prefix) as reports, \
            Queue("mail", redis_url, prefix=prefix) as mail, \
            Queue("ticks", redis_url, prefix=prefix) as ticks:
        await mail.pause()
        await mail.add({"to": "a"})
        await ticks.add({}, name="tick", repeat=Repeat(every=60_000))
        # A schedule whose next run passed an hour ago (no worker promoted its job).
        key = (await ticks.get_repeatable_jobs())[0]["key"]
        client.zadd(ticks.keys.repeat, {key: int(time.time() * 1000) - 3_600_000})
        job = await reports.add({"n": 1}, delay=60_000)
        # What a Node limiter leaves behind: the job parked in delayed and indexed.
        client.hset(reports.keys.limiter_index, job.id, reports.keys.key("limiter:limited"))
        await reports.add({"n": 2}, delay=60_000)
        code, found = doctor(redis_url, prefix)
    client.close()
    assert code == 1
    assert _codes(found["mail"]) == ["paused-waiting"]
    assert "pyqueue resume mail --prefix" in found["mail"]["findings"][0]["fix"]
    assert _codes(found["reports"]) == ["rate-limited"]
    assert found["reports"]["rateLimited"]["count"] == 1
    assert "overdue-repeat" in _codes(found["ticks"])
    overdue = next(f for f in found["ticks"]["findings"] if f["code"] == "overdue-repeat")
    assert "its job is gone" in overdue["detail"]


def test_queues_fit_80_columns_and_never_cut_a_number(
    redis_url: str, queue_name: str
) -> None:
    prefix = f"wide{queue_name[2:10]}"
    client = redis.Redis.from_url(redis_url)
    client.set(f"{prefix}:orders:id", 1)
    client.set(f"{prefix}:{queue_name}-reports:id", 1)
    for start in range(0, 177_777, 20_000):
        client.zadd(f"{prefix}:orders:completed",
                    {f"j{i}": i for i in range(start, min(start + 20_000, 177_777))})
    client.zadd(f"{prefix}:{queue_name}-reports:failed", {f"f{i}": i for i in range(17_777)})
    client.close()
    env = {**os.environ, "REDIS_URL": redis_url, "TERM": "xterm-256color"}
    for argv in (["queues"], ["watch", "--once"]):
        term = Terminal([str(PYQUEUE), *argv, "--prefix", prefix], env, columns=80)
        try:
            term.wait_for(b"orders")
            assert term.proc.wait(20) == 0
            term.read_for(0.5)
        finally:
            term.close()
        text = ANSI.sub(b"", term.output).decode()
        lines = [line.rstrip() for line in text.splitlines()]
        assert all(len(line) <= 80 for line in lines), max(lines, key=len)
        assert "…" not in text
        orders = next(line for line in lines if line.lstrip().startswith("orders"))
        assert "177k" in orders.split()
        reports = [line for line in lines if "reports" in line or "17777" in line]
        assert any("17777" in line.split() for line in reports), text
