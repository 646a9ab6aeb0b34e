"""`pyqueue worker module:settings` as a subprocess: several queues, burst, signals, logs."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from pyqueue import Queue

ROOT = Path(__file__).resolve().parents[2]
PYQUEUE = Path(sys.executable).parent / "pyqueue"
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _env(redis_url: str) -> dict[str, str]:
    return {**os.environ, "REDIS_URL": redis_url}


def run_worker(redis_url: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PYQUEUE), "worker", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=_env(redis_url), check=False)


def start_worker(redis_url: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([str(PYQUEUE), "worker", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT, env=_env(redis_url))


def _events(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


@pytest.fixture
def prefix() -> str:
    """A fresh key prefix: the settings module names its queues, so tests separate by prefix."""
    return f"p{uuid.uuid4().hex[:10]}"


async def test_burst_runs_every_queue_and_exits(redis_url: str, prefix: str) -> None:
    async with Queue("math", redis_url, prefix=prefix) as math, \
            Queue("words", redis_url, prefix=prefix) as words:
        for n in range(5):
            await math.add({"n": n})
        await words.add({"text": "hi"}, name="shout")
        await words.add({}, name="fail")
        done = await asyncio.to_thread(
            run_worker, redis_url, "tests.tools.worker_settings:settings", "--burst",
            "--log-format", "json", "--concurrency", "3", "--prefix", prefix,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert sorted(j.return_value for j in await math.get_jobs("completed")) == [0, 2, 4, 6, 8]
        assert [j.return_value for j in await words.get_jobs("completed")] == ["HI"]
        assert [j.failed_reason for j in await words.get_jobs("failed")] == ["no luck"]
    events = _events(done.stdout)
    kinds = [e.get("event") for e in events]
    # Each Worker.start() now checks Redis first (a round trip), so the first
    # queue's worker may finish jobs before the last one has started.
    started = next(e for e in events if e.get("event") == "started")
    assert started["queues"] == ["math", "words", "slow"]
    assert kinds.count("completed") == 6
    failed = [e for e in events if e.get("event") == "failed"]
    assert failed[0]["final"] is True
    assert failed[0]["reason"] == "no luck"
    assert kinds[-1] == "stopped"
    # It says how long the workers ran (jobs included), not only how long closing took.
    stopped = events[-1]
    assert stopped["ran_s"] > 0
    assert stopped["ran_s"] >= stopped["shutdown_s"]
    assert stopped["message"].startswith("stopped after running ")


@pytest.mark.parametrize("ref", ["tests.tools.worker_settings:ArqStyle",
                                 "tests.tools.worker_settings:factory"])
async def test_other_settings_shapes(redis_url: str, prefix: str, ref: str) -> None:
    async with Queue("math", redis_url, prefix=prefix) as math:
        job = await math.add({"n": 21})
        done = await asyncio.to_thread(run_worker, redis_url, ref, "--burst", "--prefix", prefix)
        assert done.returncode == 0, done.stdout + done.stderr
        await job.reload()
        assert job.return_value == 42
        assert "started 1 worker(s): math" in done.stdout


async def test_sigterm_lets_the_active_job_finish(redis_url: str, prefix: str) -> None:
    async with Queue("slow", redis_url, prefix=prefix) as queue:
        proc = await asyncio.to_thread(start_worker, redis_url,
                                       "tests.tools.worker_settings:settings",
                                       "--metrics-port", "0", "--prefix", prefix)
        try:
            assert proc.stdout is not None
            line = await asyncio.to_thread(proc.stdout.readline)
            assert "started 3 worker(s)" in line, line
            port = int(line.rsplit("metrics on port ", 1)[1])
            with _OPENER.open(f"http://127.0.0.1:{port}/readyz", timeout=5) as resp:
                assert resp.status == 200
            job = await queue.add({"sleep": 1.5})
            for _ in range(400):
                if await queue.get_job_state(job.id) == "active":
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the job never became active")
            proc.send_signal(signal.SIGTERM)
            out, err = await asyncio.to_thread(proc.communicate, timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0, err
        assert "received SIGTERM: closing gracefully" in out
        assert "Traceback" not in err
        await job.reload()
        assert await job.get_state() == "completed"
        assert job.return_value == "finished"


@pytest.mark.parametrize(
    ("ref", "text"),
    [
        ("no-colon", "expected package.module:attribute"),
        ("no_such_module_xyz:settings", "cannot import 'no_such_module_xyz'"),
        ("tests.tools.worker_settings:missing", "has no attribute 'missing'"),
        ("tests.tools.worker_settings:not_settings", "has no 'queues'"),
    ],
)
def test_bad_settings(redis_url: str, ref: str, text: str) -> None:
    done = run_worker(redis_url, ref)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert text in lines[0]


def test_unreachable_redis() -> None:
    from pyqueue.embedded import free_port

    done = run_worker(f"redis://127.0.0.1:{free_port()}/0", "tests.tools.worker_settings:settings")
    assert done.returncode == 4
    assert "cannot reach Redis" in done.stderr
    assert "Traceback" not in done.stderr


async def test_hooks_and_one_shared_context(
    redis_url: str, prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log_file = tmp_path / "hooks.log"
    monkeypatch.setenv("HOOKS_LOG", str(log_file))
    async with Queue("math", redis_url, prefix=prefix) as math, \
            Queue("words", redis_url, prefix=prefix) as words:
        first = await math.add({"n": 1})
        second = await words.add({})
        done = await asyncio.to_thread(
            run_worker, redis_url, "tests.tools.worker_settings:with_hooks", "--burst",
            "--prefix", prefix,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        await first.reload()
        await second.reload()
        assert first.return_value == "1 via pool-1"
        assert second.return_value == "sync via pool-1"
    lines = log_file.read_text().splitlines()
    # Startup once before any job, shutdown once after all, for both queues.
    assert lines[0] == "startup"
    assert lines[-1] == "shutdown pool-1"
    assert sorted(lines[1:-1]) == sorted([
        "before math", "after math 1 via pool-1", "before words", "after words sync via pool-1",
    ])


@pytest.mark.parametrize(
    ("args", "env", "loop"),
    [
        ((), {}, "uvloop"),  # auto, and the test install has uvloop
        (("--loop", "asyncio"), {}, "asyncio"),
        ((), {"PYQUEUE_LOOP": "asyncio"}, "asyncio"),
        (("--loop", "uvloop"), {"PYQUEUE_LOOP": "asyncio"}, "uvloop"),  # the flag wins
    ],
)
async def test_the_event_loop_is_chosen_and_told(
    redis_url: str, prefix: str, args: tuple[str, ...], env: dict[str, str], loop: str,
) -> None:
    async with Queue("math", redis_url, prefix=prefix) as math:
        await math.add({"n": 4})
        done = await asyncio.to_thread(
            subprocess.run,
            [str(PYQUEUE), "worker", "tests.tools.worker_settings:settings", "--burst",
             "--log-format", "json", "--prefix", prefix, *args],
            capture_output=True, text=True, timeout=60, cwd=ROOT,
            env={**_env(redis_url), **env}, check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert [j.return_value for j in await math.get_jobs("completed")] == [8]
    started = next(e for e in _events(done.stdout) if e.get("event") == "started")
    assert started["loop"] == loop


def test_an_unknown_loop_in_the_environment_is_a_usage_error(redis_url: str) -> None:
    done = subprocess.run(
        [str(PYQUEUE), "worker", "tests.tools.worker_settings:settings"],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
        env={**_env(redis_url), "PYQUEUE_LOOP": "tokio"}, check=False,
    )
    assert done.returncode == 2
    assert "$PYQUEUE_LOOP is 'tokio'" in done.stderr
    assert "Traceback" not in done.stderr
