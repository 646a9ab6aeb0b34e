"""Runs the BookWish Node app's job code (``node/app.js`` on real Node Bull) for tests.

Missing ``node`` or ``tests/bookwish_jobs/node/node_modules`` FAILS the test with what
to run (``./scripts/test`` runs ``npm ci`` there), unless PYQUEUE_SKIP_INTEROP=1.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

NODE_DIR = Path(__file__).parent / "node"
CLI = NODE_DIR / "cli.js"


def node_binary() -> str:
    if os.environ.get("PYQUEUE_SKIP_INTEROP") == "1":
        pytest.skip("PYQUEUE_SKIP_INTEROP=1")
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH: install Node.js >= 18 (or PYQUEUE_SKIP_INTEROP=1)",
                    pytrace=False)
    if not (NODE_DIR / "node_modules" / "bull" / "package.json").exists():
        pytest.fail(f"Node Bull is not installed: npm ci --prefix {NODE_DIR} "
                    "(./scripts/test does it)", pytrace=False)
    return node


def _events(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def run_node(config: dict[str, Any], timeout: float = 60.0) -> list[dict[str, Any]]:
    """Run one ``cli.js`` action to its end; returns its events."""
    done = subprocess.run([node_binary(), str(CLI), json.dumps(config)], capture_output=True,
                          text=True, timeout=timeout, check=False)
    events = _events(done.stdout)
    if done.returncode != 0:
        fatal = [e for e in events if e["event"] == "fatal"]
        raise AssertionError(f"node {config['action']} failed ({done.returncode}): "
                             f"{fatal or done.stderr}")
    return events


def node_database(url: str, schema_prisma: Path) -> dict[str, str]:
    """The Node app's database settings: Prisma's DATABASE_URL, and the schema.prisma its
    client was generated from (``node/prisma.js`` writes SQL as that client would)."""
    return {"databaseUrl": url, "prismaSchema": str(schema_prisma)}


def repeat_keys(redis_url: str) -> dict[str, list[str]]:
    """What Node's ``getRepeatableJobs()`` lists, per queue."""
    return {e["queue"]: e["keys"] for e in run_node({"action": "repeatables",
                                                     "redisUrl": redis_url})
            if e["event"] == "repeatables"}


class NodeWorker:
    """A Node process running the Node app's processors (``queue.process(fn)``)."""

    def __init__(self, redis_url: str, **options: Any) -> None:
        config = {"action": "work", "redisUrl": redis_url, **options}
        self.proc = subprocess.Popen([node_binary(), str(CLI), json.dumps(config)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.events: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("{"):
                self.events.append(json.loads(line))

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in list(self.events) if e["event"] == kind]

    def wait_for(self, kind: str, count: int = 1, timeout: float = 30.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.of(kind)) < count:
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        found = self.of(kind)
        assert len(found) >= count, (
            f"node worker: {len(found)} {kind!r} events, wanted {count}; "
            f"fatal: {self.of('fatal')}; stderr: {self._stderr()}")
        return found

    def _stderr(self) -> str:
        if self.proc.poll() is None or self.proc.stderr is None or self.proc.stderr.closed:
            return "(running or closed)"
        return self.proc.stderr.read()[-2000:]

    def stop(self, timeout: float = 30.0) -> list[dict[str, Any]]:
        """SIGTERM (Bull's close() waits for active jobs), then the events."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(5)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()
        return list(self.events)
