"""pyqueue.testing: drain() on real Redis, and the copyable example test run by pytest."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis

from pyqueue import Backoff, Queue
from pyqueue.testing import DrainResult, drain, redis_server

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "test_with_pyqueue.py"


async def test_drain_runs_everything_including_retries(redis_url: str, queue_name: str) -> None:
    async def handler(job: Any) -> int:
        if job.data["n"] == 3 and job.attempts_made == 0:
            raise RuntimeError("once")
        if job.data["n"] == 4:
            raise RuntimeError("always")
        return int(job.data["n"]) * 10

    async with Queue(queue_name, redis_url) as queue:
        for n in range(5):
            await queue.add({"n": n}, job_id=f"j{n}", attempts=2,
                            backoff=Backoff(type="fixed", delay=300))
        result = await drain(queue, handler)
        assert isinstance(result, DrainResult)
        assert sorted(result.completed) == ["j0", "j1", "j2", "j3"]
        assert result.failed == ["j4"]
        assert sorted(result.retried) == ["j3", "j4"]
        assert result.results["j2"] == 20
        assert str(result.errors["j4"]) == "always"
        counts = await queue.get_job_counts()
        assert counts["waiting"] == counts["active"] == counts["delayed"] == 0


async def test_drain_leaves_future_jobs_when_asked(redis_url: str, queue_name: str) -> None:
    async with Queue(queue_name, redis_url) as queue:
        await queue.add({}, job_id="now")
        await queue.add({}, job_id="later", delay=3_600_000)
        result = await drain(queue, lambda job: None, include_delayed=False)
        assert result.completed == ["now"]
        with pytest.raises(TimeoutError, match="not drained within"):
            await drain(queue, lambda job: None, timeout=0.5)


async def test_drain_refuses_a_paused_queue(redis_url: str, queue_name: str) -> None:
    async with Queue(queue_name, redis_url) as queue:
        await queue.add({})
        await queue.pause()
        with pytest.raises(RuntimeError, match="is paused"):
            await drain(queue, lambda job: None)


def test_redis_server_is_private_and_goes_away() -> None:
    with redis_server() as url:
        client = redis.Redis.from_url(url)
        assert client.ping()
        client.close()
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()


def test_the_example_test_passes() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE)],
        capture_output=True, text=True, timeout=120, check=False,
        cwd=EXAMPLE.parent, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
