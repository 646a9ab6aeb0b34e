"""Acting on what a search finds, and cleaning, in batches: `pyqueue search --retry/--remove`
and `pyqueue clean`, against real Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import redis

from pyqueue import BulkJob, Queue, Worker, WorkerOptions

PYQUEUE = Path(sys.executable).parent / "pyqueue"
FAST = WorkerOptions(drain_delay=1, guard_interval=200, stalled_interval=0, shutdown_grace=2)


def cli(redis_url: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PYQUEUE), *args], capture_output=True, text=True, timeout=60,
                          input=stdin, env={**os.environ, "REDIS_URL": redis_url}, check=False)


async def _fail_all(queue: Queue[Any], count: int) -> None:
    def handler(job: Any) -> None:
        raise RuntimeError(job.data["why"])

    async with Worker(queue, handler, options=FAST, concurrency=10) as worker:
        seen = 0
        async for _ in worker.events("failed"):
            seen += 1
            if seen == count:
                break


def _evalsha_calls(client: redis.Redis) -> int:
    stats: dict[str, Any] = client.info("commandstats")  # type: ignore[assignment]
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


async def test_retry_and_remove_what_a_search_finds(redis_url: str, queue_name: str) -> None:
    async with Queue(queue_name, redis_url) as queue:
        jobs = [BulkJob({"why": "upstream timeout", "user": {"id": n % 3}}) for n in range(30)]
        jobs += [BulkJob({"why": "card declined", "user": {"id": 9}}) for _ in range(7)]
        await queue.add_bulk(jobs)
        await _fail_all(queue, 37)
        # A dry run counts and changes nothing.
        dry = cli(redis_url, "search", queue_name, "--reason", "timeout", "--retry",
                  "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert f"30 job(s) of {queue_name} match" in dry.stdout
        assert (await queue.get_job_counts("failed"))["failed"] == 37
        # Without --yes it asks; "n" keeps everything.
        asked = cli(redis_url, "search", queue_name, "--reason", "timeout", "--retry",
                    stdin="n\n")
        assert asked.returncode == 1
        assert "Retry 30 matching job(s)" in asked.stderr
        assert (await queue.get_job_counts("failed"))["failed"] == 37
        done = cli(redis_url, "search", queue_name, "--reason", "timeout", "--retry", "--yes",
                   "--batch", "7", "--json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == {"matching": 30, "retried": 30, "skipped": {}}
        counts = await queue.get_job_counts("failed", "waiting")
        assert counts == {"failed": 7, "waiting": 30}
        # Remove by a data path: the 7 card-declined jobs.
        removed = cli(redis_url, "search", queue_name, "--path", "user.id", "--value", "9",
                      "--remove", "--yes", "--json")
        assert json.loads(removed.stdout)["removed"] == 7
        assert (await queue.get_job_counts("failed"))["failed"] == 0
        usage = cli(redis_url, "search", queue_name, "--state", "waiting", "--reason", "x",
                    "--retry")
        assert usage.returncode == 2
        assert "only failed jobs can be retried" in usage.stderr


async def test_clean_removes_in_batches(redis_url: str, queue_name: str) -> None:
    async with Queue(queue_name, redis_url) as queue:
        await queue.add_bulk(BulkJob({"n": n}) for n in range(1000))
        async with Worker(queue, lambda job: None, options=FAST, concurrency=50) as worker:
            seen = 0
            async for _ in worker.events("completed"):
                seen += 1
                if seen == 1000:
                    break
        await queue.add_bulk(BulkJob({"n": n}) for n in range(40))
    dry = cli(redis_url, "clean", queue_name, "--older-than", "0s", "--dry-run", "--json")
    assert json.loads(dry.stdout) == {"count": 1000, "dryRun": True}
    client = redis.Redis.from_url(redis_url)
    before = _evalsha_calls(client)
    done = cli(redis_url, "clean", queue_name, "--older-than", "0s", "--batch", "100", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["count"] == 1000
    # Each script call removed at most a batch: 1000 jobs took 10 calls (and one more to
    # find the set empty), never one call for all.
    assert result["calls"] == 11
    assert _evalsha_calls(client) - before >= 11
    assert client.zcard(f"bull:{queue_name}:completed") == 0
    # Waiting jobs go one script each, with a limit.
    waiting = cli(redis_url, "clean", queue_name, "--state", "waiting", "--older-than", "0s",
                  "--limit", "15", "--json")
    assert json.loads(waiting.stdout)["count"] == 15
    assert client.llen(f"bull:{queue_name}:wait") == 25
    client.close()
