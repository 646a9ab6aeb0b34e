"""Sandboxed processors: each handler call runs in a child process (Bull's sandboxed mode).

Shape::

    SandboxPool ── one _Child per slot ── Pipe ── _child_main (in the child process)
    parent → child   (ref, snapshot)           run the handler ``ref`` on this job
                     (ok, answer)              the answer to a "call"
    child → parent   ("ready", None)           imports done (a job's timeout starts after)
                     ("call", (kind, value))   progress/log/update, applied to the real Job;
                                               the child waits for the answer
                     ("done", json)            the result
                     ("error", {...})          type, message, traceback, unrecoverable

A child that dies (segfault, ``os._exit``, SIGKILL, OOM killer) fails only the job
it was running, and its slot gets a fresh child. ``ProcessPoolExecutor`` is not
used because one dead child breaks its whole pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import json
import multiprocessing
import os
import signal
import traceback
from collections.abc import Callable, Iterable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

from pyqueue._handlers import model_of
from pyqueue.errors import JobTimeoutError, SandboxError, UnrecoverableError, error_message
from pyqueue.handle import JobHandle

if TYPE_CHECKING:
    from pyqueue.job import Job

_CONTEXTS = ("spawn", "forkserver")


class _RemoteTraceback(Exception):
    """Carries the child's traceback text as ``__cause__``, so stored stacks show it."""

    def __str__(self) -> str:
        return str(self.args[0])


def handler_ref(handler: Callable[..., Any]) -> str:
    """``"module:qualname"`` of a module-level function, importable in a child process.

    Raises:
        TypeError: ``handler`` is a lambda, closure, partial, bound method or any
            object a child cannot import by name.
    """
    module = getattr(handler, "__module__", None)
    qualname = getattr(handler, "__qualname__", None)
    if not inspect.isfunction(handler) or not module or not qualname or "<" in qualname:
        raise TypeError(
            f"sandboxed handler {handler!r} must be a module-level function "
            "(no lambda, closure, partial or method), so a child process can import it"
        )
    try:
        found = _resolve(module, qualname)
    except (ImportError, AttributeError) as exc:
        raise TypeError(f"sandboxed handler {module}:{qualname} is not importable: {exc}") from None
    if found is not handler:
        raise TypeError(f"sandboxed handler {module}:{qualname} does not resolve to itself")
    return f"{module}:{qualname}"


def _resolve(module: str, qualname: str) -> Any:
    target: Any = importlib.import_module(module)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target


def job_snapshot(job: Job[Any]) -> dict[str, Any]:
    """The JSON-able view of ``job`` a child receives (``data`` before any model validation)."""
    record = job.record
    return {
        "id": job.id, "name": job.name, "data": record.data, "opts": record.raw_opts,
        "attempts_made": record.attempts_made, "timestamp": record.timestamp,
    }


# --- child side ------------------------------------------------------------------


class SandboxedJob(JobHandle[Any]):
    """The :class:`~pyqueue.JobHandle` a sandboxed handler receives, in its child process.

    ``progress``, ``log`` and ``update`` ask the parent process, which applies them to
    the real job and answers; each call blocks until then, so they are stored in
    order, before the result, and their errors reach the handler.
    """

    def __init__(self, conn: Connection, snapshot: dict[str, Any]) -> None:
        self._conn = conn
        self.id = snapshot["id"]
        self.name = snapshot["name"]
        self.data = snapshot["data"]
        self.raw_opts = snapshot["opts"]
        self.attempts_made = snapshot["attempts_made"]
        self.timestamp = snapshot["timestamp"]

    @property
    def context(self) -> dict[str, Any]:
        raise SandboxError(
            "the worker context lives in the worker's process; a sandboxed handler "
            "cannot reach it (build what it needs in the handler's module)"
        )

    @property
    def aborted(self) -> str | None:
        # An aborted sandboxed job's process is killed; it never sees a flag.
        return None

    def progress(self, value: Any) -> None:
        self._ask("progress", json.dumps(value))

    def log(self, line: str) -> int:
        return int(self._ask("log", str(line)))

    def update(self, data: Any) -> None:
        text = json.dumps(data)
        self._ask("update", text)
        self.data = json.loads(text)

    def _ask(self, kind: str, value: str) -> Any:
        self._conn.send(("call", (kind, value)))
        reply = self._conn.recv()
        if reply is None:  # the parent is closing the pool
            raise SandboxError(f"job {kind}: the worker is closing")
        ok, answer = reply
        if not ok:
            raise SandboxError(f"job {kind} failed in the worker: {answer}")
        return answer


class AsyncSandboxedJob:
    """What an ``async def`` sandboxed handler receives: a :class:`SandboxedJob` whose
    ``progress``/``log``/``update`` are coroutines, as on a :class:`pyqueue.Job`.

    The child's own loop runs only this handler, so the calls may block it.
    """

    def __init__(self, handle: SandboxedJob) -> None:
        self.handle = handle

    def __getattr__(self, name: str) -> Any:
        # Fields (id, name, data, opts, ...) are the handle's.
        return getattr(self.handle, name)

    def __repr__(self) -> str:
        return repr(self.handle)

    async def progress(self, value: Any) -> None:
        self.handle.progress(value)

    async def log(self, line: str) -> int:
        return self.handle.log(line)

    async def update(self, data: Any) -> None:
        self.handle.update(data)


def _handle_for(handler: Any, conn: Connection, snapshot: dict[str, Any]) -> Any:
    handle = SandboxedJob(conn, snapshot)
    return AsyncSandboxedJob(handle) if inspect.iscoroutinefunction(handler) else handle


def _load(ref: str) -> Any:
    module, qualname = ref.split(":", 1)
    return _resolve(module, qualname)


def _child_main(conn: Connection, refs: tuple[str, ...]) -> None:
    # Ctrl-C reaches the whole process group; the parent decides what the child does.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for ref in refs:
        # Import errors are reported per job, by the same call inside the loop.
        with contextlib.suppress(Exception):
            _load(ref)
    conn.send(("ready", None))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        ref, snapshot = message
        try:
            handler = _load(ref)
            handle = _handle_for(handler, conn, snapshot)
            model = model_of(handler)
            if model is not None:  # validated in the parent too; here it becomes the model
                handle.data = model.model_validate(handle.data)
            result = handler(handle)
            if inspect.isawaitable(result):
                result = asyncio.run(_await(result))
            if hasattr(result, "model_dump"):  # a pydantic model, as the threaded path allows
                result = result.model_dump(mode="json")
            reply: tuple[str, Any] = ("done", json.dumps(result))
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # every handler error goes back to the parent as data
            reply = ("error", {
                "type": type(exc).__name__, "message": error_message(exc),
                "traceback": "".join(traceback.format_exception(exc)).rstrip(),
                "unrecoverable": isinstance(exc, UnrecoverableError),
            })
        try:
            conn.send(reply)
        except BaseException:  # e.g. MemoryError: die, and the parent reports the exit code
            os._exit(70)


async def _await(awaitable: Any) -> Any:
    return await awaitable


# --- parent side -----------------------------------------------------------------


class _Child:
    """One child process, its pipe, and an inbox fed by the event loop's reader."""

    def __init__(self, ctx: Any, refs: tuple[str, ...]) -> None:
        self.conn, child_conn = ctx.Pipe(duplex=True)
        self.proc: BaseProcess = ctx.Process(
            target=_child_main, args=(child_conn, refs), name="pyqueue-sandbox", daemon=True
        )
        self.proc.start()
        # Our copy of the child's end must go, or we would never see EOF when it dies.
        child_conn.close()
        self.inbox: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.dead = False
        self.ready = False
        self._started = asyncio.Event()  # set by "ready" or by death, whichever comes first
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.conn.fileno(), self._readable)

    def _readable(self) -> None:
        try:
            while self.conn.poll():
                message = self.conn.recv()
                if message[0] == "ready":
                    self.ready = True
                    self._started.set()
                else:
                    self.inbox.put_nowait(message)
        except (EOFError, OSError):
            self._loop.remove_reader(self.conn.fileno())
            self.dead = True
            self._started.set()
            self.inbox.put_nowait(("eof", None))

    def kill(self) -> None:
        # The pipe stays open until the process is reaped: a send may still be in
        # flight in a thread, and closing its fd now could let a new pipe reuse it.
        if not self.dead and not self.conn.closed:
            self._loop.remove_reader(self.conn.fileno())
        self.dead = True
        if self.proc.exitcode is None:
            self.proc.kill()

    def reaped(self) -> bool:
        """Close our end once the process has exited; True if it has."""
        if self.proc.exitcode is None:
            return False
        self.conn.close()
        return True

    async def wait_ready(self) -> None:
        """Wait for the child's imports, so a slow start does not eat a job's timeout."""
        await self._started.wait()
        if not self.ready:
            code = await self.exitcode()
            raise SandboxError(f"sandboxed process exited with code {code} while starting")

    async def exitcode(self) -> int | None:
        await asyncio.to_thread(self.proc.join, 5)
        return self.proc.exitcode


class SandboxPool:
    """``size`` child processes, each running one handler call at a time.

    Args:
        size: Number of children (the worker's concurrency).
        mp_context: ``"spawn"`` (default) or ``"forkserver"``; ``fork`` is refused
            because forking a process with an event loop and threads is unsafe.
        handlers: Handlers to check now with :func:`handler_ref`, so a bad one
            fails at ``Worker(...)`` rather than at the first job. Children import
            their modules before taking jobs.

    As with any spawned process, the program's main module is imported again in
    each child, so a worker script needs an ``if __name__ == "__main__":`` guard.

    Raises:
        TypeError: a handler in ``handlers`` cannot be imported by a child.
        ValueError: ``size`` < 1 or an unknown ``mp_context``.
    """

    def __init__(
        self, size: int, *, mp_context: str = "spawn", handlers: Iterable[Callable[..., Any]] = ()
    ) -> None:
        if size < 1:
            raise ValueError(f"size: must be >= 1, got {size!r}")
        if mp_context not in _CONTEXTS:
            raise ValueError(f"mp_context: must be one of {_CONTEXTS}, got {mp_context!r}")
        self._refs = tuple(handler_ref(handler) for handler in handlers)
        self.size = size
        self._ctx = multiprocessing.get_context(mp_context)
        self._idle: asyncio.Queue[_Child] = asyncio.Queue()
        self._children: set[_Child] = set()
        self._retired: list[_Child] = []

    async def start(self) -> None:
        """Start the children, so the first jobs do not wait for a process to spawn."""
        for _ in range(self.size - len(self._children)):
            self._idle.put_nowait(self._spawn())

    async def close(self) -> None:
        """Ask idle children to exit, kill the rest (and any still up after 5 s), reap all."""
        for child in self._children:
            if not child.ready:
                child.kill()  # still importing (e.g. a replacement spawned during shutdown)
            with contextlib.suppress(OSError):
                if not child.dead:
                    child.conn.send(None)
        for child in [*self._children, *self._retired]:
            if await child.exitcode() is None:
                child.kill()
                await child.exitcode()
            child.kill()
            child.reaped()
        self._children.clear()
        self._retired.clear()

    async def run_job(
        self, handler: Callable[..., Any], job: Job[Any], timeout_ms: int | None
    ) -> Any:
        """:meth:`run` for a real job, applying the child's progress and log lines to it."""

        async def apply(kind: str, value: Any) -> Any:
            if kind == "progress":
                return await job.progress(value)
            if kind == "update":
                return await job.update(value)
            return await job.log(value)

        return await self.run(handler, job_snapshot(job), timeout_ms, on_message=apply)

    async def run(
        self,
        handler: Callable[..., Any],
        job_snapshot: dict[str, Any],
        timeout_ms: int | None,
        *,
        on_message: Callable[[str, Any], Any] | None = None,
    ) -> Any:
        """Run ``handler(SandboxedJob)`` in a free child and return its JSON result.

        Args:
            on_message: ``await on_message("progress" | "log" | "update", value)`` per
                child call; what it returns (or the error it raises) goes back to the
                child. Without it, calls are answered with None.

        Raises:
            SandboxError: the handler raised, or the child died while running it.
            UnrecoverableError: the handler raised :class:`UnrecoverableError`.
            JobTimeoutError: ``timeout_ms`` passed; the child is killed and replaced.
        """
        ref = handler_ref(handler)
        child = await self._idle.get()
        try:
            if child.dead or child.proc.exitcode is not None:
                child = self._replace(child)
            await child.wait_ready()
            async with asyncio.timeout(None if timeout_ms is None else timeout_ms / 1000):
                kind, value = await self._exchange(child, ref, job_snapshot, on_message)
        except TimeoutError:
            child.kill()
            raise JobTimeoutError(timeout_ms or 0) from None
        except BaseException:
            child.kill()  # crashed, cancelled, or our side failed: never reuse it
            raise
        finally:
            # Replace a dead child now, so the next job need not wait for a spawn.
            self._idle.put_nowait(self._replace(child) if child.dead else child)
        if kind == "done":
            return json.loads(value)
        cause = _RemoteTraceback(value["traceback"])
        if value["unrecoverable"]:
            raise UnrecoverableError(value["message"]) from cause
        raise SandboxError(
            value["message"], remote_type=value["type"], remote_traceback=value["traceback"]
        ) from cause

    async def _exchange(
        self, child: _Child, ref: str, snapshot: dict[str, Any],
        on_message: Callable[[str, Any], Any] | None,
    ) -> tuple[str, Any]:
        # A failed send means the child is gone: its EOF is already on the way to the inbox.
        with contextlib.suppress(OSError):
            # In a thread: a large payload could fill the pipe while the child is busy.
            await asyncio.to_thread(child.conn.send, (ref, snapshot))
        while True:
            kind, value = await child.inbox.get()
            if kind in ("done", "error"):
                return kind, value
            if kind == "eof":
                code = await child.exitcode()
                raise SandboxError(
                    f"sandboxed process exited with code {code} while running job "
                    f"{snapshot.get('id')}"
                )
            await self._answer(child, value, on_message)

    async def _answer(
        self, child: _Child, call: tuple[str, str],
        on_message: Callable[[str, Any], Any] | None,
    ) -> None:
        kind, value = call
        try:
            result: Any = None
            if on_message is not None:
                result = on_message(kind, value if kind == "log" else json.loads(value))
                if inspect.isawaitable(result):
                    result = await result
            reply: tuple[bool, Any] = (True, result)
        except Exception as exc:  # the handler sees it, as a threaded handler would
            reply = (False, error_message(exc))
        # The child is waiting for this answer; if it died, its EOF is on the way.
        with contextlib.suppress(OSError):
            child.conn.send(reply)

    def _spawn(self) -> _Child:
        child = _Child(self._ctx, self._refs)
        self._children.add(child)
        return child

    def _replace(self, child: _Child) -> _Child:
        child.kill()
        self._children.discard(child)
        self._retired = [old for old in [*self._retired, child] if not old.reaped()]
        return self._spawn()
