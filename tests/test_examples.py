"""Every script in examples/ runs, so none of them rots."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import redis

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _run(script: str, redis_url: str, *args: str) -> str:
    env = {**os.environ, "REDIS_URL": redis_url}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_producer_then_worker(redis_url: str, sync_redis: redis.Redis) -> None:
    out = _run("producer.py", redis_url)
    assert "added job" in out
    assert sync_redis.llen("bull:emails:wait") == 4
    out = _run("worker.py", redis_url, "--demo")
    assert "'completed': 7" in out
    assert "'failed': 0" in out
    # The flaky address fails once, and the typed listener knows a retry follows.
    assert "failed attempt 1, will retry: job" in out
    assert "failed for good" not in out
    sync_redis.delete(*sync_redis.keys("bull:emails:*"))


def test_handler_kinds(redis_url: str) -> None:
    out = _run("handler_kinds.py", redis_url)
    assert "resize: {'width': 400}" in out
    assert "report: 3 pages" in out
    assert "crunch: 45" in out
    assert "abort: signalled" in out
    assert "aborted report: aborted: not needed any more" in out
    assert re.search(r"after_process: reports/\d+ failed \(aborted: not needed any more\)", out)
    assert out.strip().endswith("shutdown: the handlers used the shared counter 3 time(s)")


def test_worker_stops_on_ctrl_c(redis_url: str) -> None:
    # examples/worker.py uses pyqueue worker's signal handling (shutdown_signals).
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "worker.py")],
        env={**os.environ, "REDIS_URL": redis_url, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    assert "worker running on" in proc.stdout.readline()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
