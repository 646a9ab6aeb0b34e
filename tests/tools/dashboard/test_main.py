"""``python -m pyqueue.tools.dashboard`` as a real process: uvicorn on a port, auth from the env."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

from pyqueue import SyncQueue

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _get(url: str, token: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with _OPENER.open(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_serves_with_a_token_from_the_environment(redis_url: str) -> None:
    prefix = f"dash{uuid.uuid4().hex[:8]}"
    with SyncQueue("inbox", redis_url, prefix=prefix) as queue:
        queue.add({"n": 1})
    port = _free_port()
    env = {**os.environ, "PYQUEUE_DASHBOARD_TOKEN": "env-token-123"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pyqueue.tools.dashboard", "--redis-url", redis_url,
         "--prefix", prefix, "--port", str(port), "--host", "0.0.0.0"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/api/overview"
        deadline = time.monotonic() + 20
        while True:
            try:
                status, body = _get(url, "env-token-123")
                break
            except OSError:
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "the dashboard did not start"
                time.sleep(0.1)
        assert status == 200
        assert '"name":"inbox"' in body
        assert _get(url)[0] == 401
        assert _get(url, "wrong-token-1")[0] == 401
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert f"http://0.0.0.0:{port}/ (prefix '{prefix}')" in err


def test_refuses_a_public_address_without_auth(redis_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYQUEUE_DASHBOARD_")}
    done = subprocess.run(
        [sys.executable, "-m", "pyqueue.tools.dashboard", "--redis-url", redis_url,
         "--host", "0.0.0.0", "--port", str(_free_port())],
        env=env, capture_output=True, text=True, timeout=30, check=False,
    )
    assert done.returncode == 2
    assert "refusing to listen on '0.0.0.0' without authentication" in done.stderr
