"""Starting adapter processes and speaking the JSON-lines protocol with them."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import IO, Any

from benchmarks.libs import ROOT


class HarnessError(RuntimeError):
    """An adapter failed, timed out or processed the wrong number of jobs."""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _tail(path: str, limit: int = 2000) -> str:
    try:
        with open(path, errors="replace") as f:
            return f.read()[-limit:]
    except OSError:
        return ""


def run_once(argv: list[str], timeout: float) -> dict[str, Any]:
    """Run an adapter to completion; return its result object."""
    try:
        proc = subprocess.run(
            argv, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise HarnessError(f"timed out after {timeout:.0f}s: {' '.join(argv[-6:])}") from exc
    if proc.returncode != 0:
        raise HarnessError(f"exit {proc.returncode}: {proc.stderr[-2000:]}")
    for line in reversed(proc.stdout.splitlines()):
        obj = json.loads(line)
        if obj.get("event") == "result":
            return dict(obj)
    raise HarnessError(f"no result line from {argv}: {proc.stdout[-500:]}")


@dataclass
class Child:
    """One adapter process in worker or produce mode, its stdout read by a thread."""

    index: int
    argv: list[str]
    events: queue.Queue[tuple[int, dict[str, Any]]]
    proc: subprocess.Popen[str] = field(init=False)
    stderr_path: str = field(init=False)
    result: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        fd, self.stderr_path = tempfile.mkstemp(prefix="bench-child-", suffix=".log")
        with os.fdopen(fd, "w") as err:
            self.proc = subprocess.Popen(
                self.argv, cwd=ROOT, env=_env(), stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=err, text=True, bufsize=1,
                start_new_session=True,
            )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        stdout: IO[str] | None = self.proc.stdout
        assert stdout is not None
        for raw in stdout:
            line = raw.strip()
            if line.startswith("{"):
                self.events.put((self.index, json.loads(line)))
        self.events.put((self.index, {"event": "eof"}))

    def send(self, word: str) -> None:
        stdin = self.proc.stdin
        assert stdin is not None
        try:
            stdin.write(word + "\n")
            stdin.flush()
        except BrokenPipeError:
            pass

    def stderr(self) -> str:
        return _tail(self.stderr_path)

    def close(self) -> None:
        """Kill the child's whole session (RQ forks a scheduler) and reap the child.

        stdout is left to the daemon reader thread: closing it under a blocked read
        would wait on the reader's lock.
        """
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        os.unlink(self.stderr_path)


class Group:
    """Several children sharing one event queue."""

    def __init__(self) -> None:
        self.events: queue.Queue[tuple[int, dict[str, Any]]] = queue.Queue()
        self.children: list[Child] = []

    def spawn(self, argv: list[str]) -> Child:
        child = Child(len(self.children), argv, self.events)
        self.children.append(child)
        return child

    def next_event(self, deadline: float, what: str) -> tuple[int, dict[str, Any]]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise HarnessError(f"timed out waiting for {what}")
        try:
            idx, obj = self.events.get(timeout=remaining)
        except queue.Empty as exc:
            raise HarnessError(f"timed out waiting for {what}") from exc
        if obj.get("event") == "eof" and self.children[idx].result is None:
            child = self.children[idx]
            child.proc.wait(5)
            raise HarnessError(
                f"child {idx} exited ({child.proc.returncode}) while waiting for {what}: "
                f"{child.stderr()}"
            )
        if obj.get("event") == "result":
            self.children[idx].result = obj
        return idx, obj

    def close(self) -> None:
        for child in self.children:
            child.close()
