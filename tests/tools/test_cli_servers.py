"""`pyqueue dashboard` hands its options to pyqueue.tools.dashboard.serve; errors are one line."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import redis

from pyqueue.embedded import free_port

PYQUEUE = Path(sys.executable).parent / "pyqueue"
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _get(url: str) -> tuple[int, str]:
    try:
        with _OPENER.open(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def test_dashboard_serves_the_queues(redis_url: str, queue_name: str,
                                     sync_redis: redis.Redis) -> None:
    sync_redis.set(f"bull:{queue_name}:id", 0)
    port = free_port()
    proc = subprocess.Popen(
        [str(PYQUEUE), "dashboard", "--port", str(port), "--read-only"],
        env={**os.environ, "REDIS_URL": redis_url}, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                status, body = _get(f"http://127.0.0.1:{port}/")
                break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "dashboard never answered"
                time.sleep(0.2)
        assert status == 200, body[:2000]
        assert queue_name in body
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stderr is not None:
            proc.stderr.close()


def test_dashboard_bad_options_are_one_line(redis_url: str) -> None:
    for args, text in (
        (["--basic-auth", "no-colon"], "--basic-auth: expected user:password"),
        (["--host", "0.0.0.0"], "pyqueue: error: "),
    ):
        done = subprocess.run(
            [str(PYQUEUE), "dashboard", "--port", str(free_port()), *args],
            env={**os.environ, "REDIS_URL": redis_url}, capture_output=True, text=True,
            timeout=30, check=False,
        )
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert text in lines[0]
