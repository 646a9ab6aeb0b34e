"""Shared pieces of the chaos scenarios: worker processes, producers, invariants.

Every scenario ends with :func:`check_invariants`, which asserts what the README
promises: every acknowledged job is completed, or failed with a recorded reason;
none is missing; no job is in two states; no lock key or ``stalled`` entry is
left behind. Executions are counted from the ``<queue>:runs`` log that
``worker_proc.py`` writes before each handler runs.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from pyqueue import Queue

SCALE = int(os.environ.get("PYQUEUE_CHAOS_SCALE", "1"))
WORKER = Path(__file__).with_name("worker_proc.py")
_LISTS = ("wait", "active", "paused")
_ZSETS = ("delayed", "completed", "failed")


def spawn_worker(cfg: dict[str, Any], *, ready_pipe: bool = False) -> subprocess.Popen[bytes]:
    """Start ``worker_proc.py`` with ``cfg`` (see its docstring).

    With ``ready_pipe``, its stdout is a pipe whose first line, ``ready``, says the
    worker runs (and its SIGTERM handler is installed).
    """
    return subprocess.Popen(
        [sys.executable, str(WORKER), json.dumps(cfg)],
        stdout=subprocess.PIPE if ready_pipe else subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop_all(procs: Iterable[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


async def produce(
    url: str, queue: str, ids: list[str], acked: list[str], *, retry: bool = True,
    stop_after: float = 300.0,
) -> int:
    """Add one job per id (custom ``job_id``, so a retried add is idempotent).

    This is the producer contract the scenarios rely on: an add that raised a
    connection error may or may not have been written, so it is retried with the
    same ``job_id`` until Redis acknowledges it. Returns the number of retries.
    """
    retries = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + stop_after
    async with Queue(queue, url) as q:
        for job_id in ids:
            while True:
                try:
                    await asyncio.wait_for(q.add({"n": job_id}, job_id=job_id), 5)
                    acked.append(job_id)
                    break
                except (RedisError, OSError, TimeoutError):
                    if not retry or loop.time() > deadline:
                        raise
                    retries += 1
                    await asyncio.sleep(0.05)
    return retries


async def wait_finished(
    client: aioredis.Redis, queue: str, total: int, timeout: float
) -> None:
    """Wait until completed + failed holds ``total`` jobs."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            done = await client.zcard(f"bull:{queue}:completed")
            done += await client.zcard(f"bull:{queue}:failed")
        except (RedisError, OSError):
            done = -1
        if done >= total:
            return
        if loop.time() > deadline:
            counts = await state_counts(client, queue)
            raise AssertionError(f"only {done}/{total} jobs finished in {timeout}s: {counts}")
        await asyncio.sleep(0.2)


async def state_counts(client: aioredis.Redis, queue: str) -> dict[str, int]:
    out = {}
    for name in _LISTS:
        out[name] = int(await client.llen(f"bull:{queue}:{name}"))
    for name in _ZSETS:
        out[name] = int(await client.zcard(f"bull:{queue}:{name}"))
    return out


@dataclass
class Outcome:
    completed: int
    failed: int
    executions: int
    extra: int
    max_runs: int


async def check_invariants(
    client: aioredis.Redis, queue: str, acked: Iterable[str], *, lock_ttl_ms: int,
    prefix: str = "bull", logged: bool = True,
) -> Outcome:
    """Assert the end-of-run invariants for ``acked`` job ids; return the figures."""
    base = f"{prefix}:{queue}"
    members: dict[str, list[str]] = {}
    for name in _LISTS:
        for raw in await client.lrange(f"{base}:{name}", 0, -1):
            members.setdefault(raw.decode(), []).append(name)
    for name in _ZSETS:
        for raw in await client.zrange(f"{base}:{name}", 0, -1):
            members.setdefault(raw.decode(), []).append(name)
    acked_set = set(acked)
    twice = {i: s for i, s in members.items() if len(s) > 1}
    assert not twice, f"jobs in two states at once: {dict(list(twice.items())[:10])}"
    missing = sorted(acked_set - members.keys())
    assert not missing, f"{len(missing)} acknowledged jobs missing: {missing[:10]}"
    unfinished = {i: s[0] for i, s in members.items()
                  if i in acked_set and s[0] not in ("completed", "failed")}
    assert not unfinished, f"{len(unfinished)} jobs not finished: {list(unfinished.items())[:10]}"
    failed = [i for i, s in members.items() if s == ["failed"]]
    for job_id in failed:
        reason = await client.hget(f"{base}:{job_id}", "failedReason")
        assert reason, f"failed job {job_id} has no failedReason"
    # Locks of killed workers expire after lock_duration; anything older leaked.
    await asyncio.sleep(lock_ttl_ms / 1000 + 0.2)
    locks = [k async for k in client.scan_iter(f"{base}:*:lock")]
    assert not locks, f"leaked lock keys: {locks[:10]}"
    stalled = {m.decode() for m in await client.smembers(f"{base}:stalled")}
    assert stalled <= {i for i, s in members.items() if s == ["active"]}, (
        f"stalled entries for jobs not active: {sorted(stalled)[:10]}"
    )
    runs = Counter(r.decode() for r in await client.lrange(f"{queue}:runs", 0, -1))
    if logged:
        never_ran = [i for i in acked_set if runs[i] == 0 and i not in failed]
        assert not never_ran, f"completed without running: {never_ran[:10]}"
    executions = sum(runs[i] for i in acked_set)
    extra = sum(max(0, runs[i] - 1) for i in acked_set)
    return Outcome(
        completed=len(acked_set) - len(failed), failed=len(failed), executions=executions,
        extra=extra, max_runs=max((runs[i] for i in acked_set), default=0),
    )
