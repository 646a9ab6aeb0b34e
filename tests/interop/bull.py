"""Drive real Node Bull (``tests/interop/node/driver.js``) from Python tests.

No pytest dependency: the fixtures in ``conftest.py`` build :class:`NodeBull`
objects, and scripts can use it directly.  Every driver call takes one JSON
config (see the header of ``driver.js``) and yields one JSON object per stdout
line; :class:`NodeBull` fills in ``bull`` (the npm alias, one of
:data:`BULL_VERSIONS`), ``redisUrl`` and ``prefix``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    from types import TracebackType

NODE_DIR = Path(__file__).resolve().parent / "node"
DRIVER = NODE_DIR / "driver.js"
# npm aliases in node/package.json, oldest first: 4.12.9, 4.14.0, 4.15.1 and 4.16.5
# ("bull", the version a plain `require('bull')` gets).
BULL_VERSIONS = ("bull412", "bull414", "bull415", "bull")
BULL_RELEASES = {"bull412": (4, 12, 9), "bull414": (4, 14, 0), "bull415": (4, 15, 1),
                 "bull": (4, 16, 5)}
# The first release with each feature the tests branch on.
FEATURES = {
    "getCountsPerPriority": (4, 13, 0),
    "saveStacktrace": (4, 15, 0),  # and the newest-`limit` stack trace trimming
    "duplicatedToken": (4, 15, 0),  # duplicated@<token> instead of a bare channel
    "debounce": (4, 16, 0),
}
INSTALL_HINT = "npm ci --prefix tests/interop/node"

Event = dict[str, Any]
Predicate = Callable[[Event], bool]


class NodeUnavailableError(RuntimeError):
    """Node or the interop node_modules are missing."""


class NodeDriverError(RuntimeError):
    """The driver exited non-zero, printed garbage, or timed out."""


def find_node() -> str:
    """Path of the ``node`` binary (``$PYQUEUE_NODE`` overrides PATH)."""
    node = os.environ.get("PYQUEUE_NODE") or shutil.which("node")
    if not node:
        raise NodeUnavailableError(
            "`node` is not on PATH: install Node.js >= 18 and run "
            f"`{INSTALL_HINT}` (or set PYQUEUE_SKIP_INTEROP=1 to skip interop tests)"
        )
    return node


def check_node_modules(versions: tuple[str, ...] = BULL_VERSIONS) -> None:
    """Raise :class:`NodeUnavailableError` unless every Bull alias is installed."""
    missing = [v for v in versions if not (NODE_DIR / "node_modules" / v / "package.json").exists()]
    if missing:
        raise NodeUnavailableError(
            f"{NODE_DIR / 'node_modules'} lacks {', '.join(missing)}: run `{INSTALL_HINT}` "
            "(or set PYQUEUE_SKIP_INTEROP=1 to skip interop tests)"
        )


def _parse_line(line: str) -> Event:
    try:
        event = json.loads(line)
    except json.JSONDecodeError as exc:
        raise NodeDriverError(f"driver printed a non-JSON line: {line!r}") from exc
    if not isinstance(event, dict):
        raise NodeDriverError(f"driver printed a non-object line: {line!r}")
    return event


def _parse_output(stdout: str) -> list[Event]:
    return [_parse_line(line) for line in stdout.splitlines() if line.strip()]


def _matches(event: Event, name: str | None, fields: Mapping[str, Any]) -> bool:
    if name is not None and event.get("event") != name:
        return False
    return all(event.get(k) == v for k, v in fields.items())


class NodeBull:
    """One Bull version against one Redis server.

    Args:
        version: One of :data:`BULL_VERSIONS` (``"bull"`` is 4.16.5).
        redis_url: The private test server, e.g. ``redis_url`` fixture.
        prefix: The Bull key prefix (``"bull"`` like Bull's default).
    """

    def __init__(self, version: str, redis_url: str, *, prefix: str = "bull") -> None:
        if version not in BULL_VERSIONS:
            raise ValueError(f"unknown Bull alias {version!r}; expected one of {BULL_VERSIONS}")
        self.version = version
        self.redis_url = redis_url
        self.prefix = prefix
        self.node = find_node()
        check_node_modules((version,))

    @property
    def release(self) -> tuple[int, int, int]:
        """The Bull release this alias installs, e.g. ``(4, 16, 5)``."""
        return BULL_RELEASES[self.version]

    def has(self, feature: str) -> bool:
        """Whether this Bull release has ``feature`` (see :data:`FEATURES`)."""
        return self.release >= FEATURES[feature]

    def __repr__(self) -> str:
        return f"NodeBull({self.version!r}, {self.redis_url!r}, prefix={self.prefix!r})"

    def config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The full driver config: defaults from this object, overridden by ``config``."""
        return {"bull": self.version, "redisUrl": self.redis_url, "prefix": self.prefix, **config}

    def _argv(self) -> list[str]:
        return [self.node, str(DRIVER)]

    def run(self, config: Mapping[str, Any], timeout: float = 30.0) -> list[Event]:
        """Run the driver to completion (blocking) and return its events.

        Raises:
            NodeDriverError: non-zero exit (e.g. a ``fatal`` event) or timeout.
        """
        payload = json.dumps(self.config(config))
        try:
            proc = subprocess.run(
                self._argv(),
                input=payload,
                capture_output=True,
                text=True,
                timeout=timeout,
                cwd=NODE_DIR,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise NodeDriverError(
                f"driver timed out after {timeout}s; config={payload}\n"
                f"stdout={exc.stdout!r}\nstderr={exc.stderr!r}"
            ) from exc
        if proc.returncode != 0:
            raise NodeDriverError(
                f"driver exited {proc.returncode}; config={payload}\n"
                f"stdout={proc.stdout}\nstderr={proc.stderr}"
            )
        return _parse_output(proc.stdout)

    async def arun(
        self,
        config: Mapping[str, Any],
        timeout: float = 30.0,  # same signature as run()
    ) -> list[Event]:
        """:meth:`run` for async tests: does not block the event loop."""
        payload = json.dumps(self.config(config))
        proc = await asyncio.create_subprocess_exec(
            *self._argv(),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=NODE_DIR,
        )
        try:
            stdout, stderr = await asyncio.wait_for(proc.communicate(payload.encode()), timeout)
        except TimeoutError as exc:
            proc.kill()
            await proc.wait()
            raise NodeDriverError(f"driver timed out after {timeout}s; config={payload}") from exc
        if proc.returncode != 0:
            raise NodeDriverError(
                f"driver exited {proc.returncode}; config={payload}\n"
                f"stdout={stdout.decode()}\nstderr={stderr.decode()}"
            )
        return _parse_output(stdout.decode())

    def start(self, config: Mapping[str, Any]) -> NodeProcess:
        """Start the driver in the background (``process``/``listen`` actions)."""
        return NodeProcess(self._argv(), self.config(config))

    # -- thin conveniences over run() --------------------------------------------------

    def add(self, queue: str, jobs: list[Mapping[str, Any]], *, bulk: bool = False) -> list[str]:
        """Add ``[{name?, data, opts?}]`` in order; return the job ids."""
        events = self.run({"queue": queue, "action": "addBulk" if bulk else "add", "jobs": jobs})
        ids: list[str] = single(events, "added")["ids"]
        return ids

    def counts(self, queue: str) -> Event:
        """``{counts: getJobCounts(), completed, failed, ..., isPaused}``."""
        return single(self.run({"queue": queue, "action": "counts"}), "counts")

    def get_jobs(self, queue: str, ids: list[str]) -> list[Event]:
        """``[{id, json: job.toJSON() | None, state}]`` per id."""
        return [
            e
            for e in self.run({"queue": queue, "action": "getJob", "ids": ids})
            if e["event"] == "job"
        ]

    def admin(self, queue: str, op: str, **args: Any) -> Event:
        """One management call: ``{op, ok, value}`` or ``{op, ok: False, error}``."""
        return single(self.run({"queue": queue, "action": "admin", "op": op, **args}), "result")


def single(events: list[Event], name: str) -> Event:
    """The only event called ``name``."""
    found = [e for e in events if e.get("event") == name]
    if len(found) != 1:
        raise NodeDriverError(f"expected exactly one {name!r} event, got {len(found)}: {events}")
    return found[0]


class NodeProcess:
    """A background driver whose stdout events can be awaited.

    Use as a context manager (the process is killed on exit if still running).
    """

    def __init__(self, argv: list[str], config: Mapping[str, Any]) -> None:
        self.config = dict(config)
        self._cond = threading.Condition()
        self._events: list[Event] = []
        self._bad_lines: list[str] = []
        self._stderr: list[str] = []
        self._eof = False
        self.proc = subprocess.Popen(
            [*argv, json.dumps(self.config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=NODE_DIR,
        )
        self._readers = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if not line.strip():
                continue
            with self._cond:
                try:
                    self._events.append(_parse_line(line))
                except NodeDriverError:
                    self._bad_lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._stderr.append(line)

    @property
    def events(self) -> list[Event]:
        """A snapshot of every event printed so far."""
        with self._cond:
            return list(self._events)

    def named(self, name: str) -> list[Event]:
        """Every event so far whose ``event`` is ``name``."""
        return [e for e in self.events if e.get("event") == name]

    @property
    def stderr(self) -> str:
        return "".join(self._stderr)

    def _describe(self) -> str:
        return (
            f"config={json.dumps(self.config)}\nevents={self._events}\n"
            f"bad lines={self._bad_lines}\nstderr={self.stderr}"
        )

    def _find(self, predicate: Predicate, start: int) -> Event | None:
        for event in self._events[start:]:
            if predicate(event):
                return event
        return None

    def wait_for(self, predicate: Predicate | str, timeout: float = 10.0, **fields: Any) -> Event:
        """Block until an event (since start) matches; return the first match.

        ``predicate`` is a callable, or an event name optionally refined by
        ``fields`` equalities: ``wait_for("completed", id="1")``.

        Raises:
            NodeDriverError: on timeout, or if the process ends without a match.
        """
        pred = self._predicate(predicate, fields)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = self._find(pred, 0)
                if found is not None:
                    return found
                remaining = deadline - time.monotonic()
                if self._eof or remaining <= 0:
                    why = "process ended" if self._eof else f"timed out after {timeout}s"
                    raise NodeDriverError(f"wait_for: {why} without a match\n{self._describe()}")
                self._cond.wait(remaining)

    async def await_for(
        self,
        predicate: Predicate | str,
        timeout: float = 10.0,  # same signature as wait_for()
        **fields: Any,
    ) -> Event:
        """:meth:`wait_for` for async tests: polls without blocking the event loop."""
        pred = self._predicate(predicate, fields)
        deadline = time.monotonic() + timeout
        while True:
            with self._cond:
                found = self._find(pred, 0)
                eof = self._eof
            if found is not None:
                return found
            if eof or time.monotonic() >= deadline:
                why = "process ended" if eof else f"timed out after {timeout}s"
                raise NodeDriverError(f"await_for: {why} without a match\n{self._describe()}")
            await asyncio.sleep(0.01)

    @staticmethod
    def _predicate(predicate: Predicate | str, fields: Mapping[str, Any]) -> Predicate:
        if isinstance(predicate, str):
            name = predicate
            return lambda e: _matches(e, name, fields)
        if fields:
            raise TypeError("field filters are only allowed with an event name")
        return predicate

    def wait(self, timeout: float = 30.0, *, check: bool = True) -> list[Event]:
        """Wait for the process to exit; return all events (raise on non-zero if ``check``)."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired as exc:
            self.kill()
            raise NodeDriverError(
                f"driver did not exit within {timeout}s\n{self._describe()}"
            ) from exc
        for reader in self._readers:
            reader.join(5)
        if check and self.proc.returncode != 0:
            raise NodeDriverError(f"driver exited {self.proc.returncode}\n{self._describe()}")
        return self.events

    async def await_exit(
        self,
        timeout: float = 30.0,  # same signature as wait()
        *,
        check: bool = True,
    ) -> list[Event]:
        """:meth:`wait` for async tests (waits in a thread)."""
        return await asyncio.to_thread(self.wait, timeout, check=check)

    def kill(self) -> None:
        """SIGKILL: no cleanup at all (its active jobs stay locked until the lock expires)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def terminate(self, timeout: float = 15.0) -> list[Event]:
        """SIGTERM: the driver closes its queue and prints ``done``; returns all events."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout, check=False)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.kill()
        with contextlib.suppress(Exception):
            for reader in self._readers:
                reader.join(2)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
