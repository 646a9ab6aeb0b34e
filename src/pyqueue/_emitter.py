"""Callbacks and async iterators over named events, shared by Queue, Worker and QueueEvents."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from pyqueue.job import Job

log = logging.getLogger("pyqueue")

Listener = Callable[..., Awaitable[None] | None]


@dataclass(frozen=True, slots=True)
class Event:
    """One emitted event: its name and positional arguments (all of them)."""

    name: str
    args: tuple[Any, ...]

    @property
    def job(self) -> Job[Any] | None:
        """The job of a local job event (``active``, ``completed``, ``failed``...); else None.

        None for :class:`~pyqueue.QueueEvents`' events too: they carry job ids.
        """
        first = self.args[0] if self.args else None
        return first if isinstance(first, Job) else None

    @property
    def error(self) -> BaseException | None:
        """The exception of ``failed``, ``lock-extension-failed`` or ``error``; else None."""
        for value in self.args[:2]:
            if isinstance(value, BaseException):
                return value
        return None

    @property
    def final(self) -> bool | None:
        """For ``failed(job, exc, final)``: whether no retry follows; None for other events."""
        if self.name == "failed" and len(self.args) >= 3 and isinstance(self.args[2], bool):
            return self.args[2]
        return None

    @property
    def result(self) -> Any:
        """The return value of ``completed``; None for other events."""
        return self.args[1] if self.name == "completed" and len(self.args) > 1 else None




@dataclass(frozen=True, slots=True)
class _Arity:
    required: int  # positional parameters without a default
    total: int | None  # all positional parameters; None for *args


def _arity(listener: Listener) -> _Arity:
    try:
        parameters = inspect.signature(listener).parameters.values()
    except (TypeError, ValueError):  # some builtins have no signature
        return _Arity(0, None)
    required = total = 0
    for p in parameters:
        if p.kind is p.VAR_POSITIONAL:
            return _Arity(required, None)
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            total += 1
            required += p.default is p.empty
    return _Arity(required, total)


def _cut(arity: _Arity, old_count: int | None) -> int | None:
    """How many leading arguments a listener takes (see :class:`EventEmitter`); None: all.

    Found once when the listener is registered: slicing past an event's last
    argument is harmless, so the count need not know how many an emit carries.
    """
    if arity.total is None:
        return None
    total = arity.total if old_count is None else min(arity.total, old_count)
    return max(arity.required, total)


class EventEmitter:
    """Register listeners with :meth:`on`, or iterate with :meth:`events`.

    A listener may be a plain function or a coroutine function; coroutines run
    as tasks so a slow listener never blocks the emitter. A listener that takes
    fewer positional arguments than an event carries gets the leading ones, as a
    JavaScript listener would: ``failed(job, exc, final)`` reaches a
    ``(job, exc)`` listener, or ``(job, exc, name=name)``, unchanged; to get
    ``final``, declare it without a default. A failing listener is
    logged and, unless it was itself listening for ``error``, re-emitted as ``error``.
    """

    # Events that grew trailing arguments, with the argument count they had before.
    # A parameter with a default (``lambda job, exc, name=name: ...``, the usual way
    # to bind a loop variable) must not receive one of the new arguments.
    grown_events: ClassVar[Mapping[str, int]] = {}

    def __init__(self) -> None:
        # Each listener with how many arguments it takes, found once when it is
        # registered. Tuples, replaced on each change: emit iterates them without a
        # copy, and a listener that registers or removes listeners changes only later emits.
        self._listeners: dict[str, tuple[tuple[Listener, int | None], ...]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def on(self, event: str, listener: Listener) -> Callable[[], None]:
        """Call ``listener(*args)`` on each ``event``; returns a function that unregisters it."""
        entry = (listener, _cut(_arity(listener), self.grown_events.get(event)))
        self._listeners[event] = (*self._listeners.get(event, ()), entry)
        return lambda: self.off(event, listener)

    def off(self, event: str, listener: Listener) -> None:
        listeners = self._listeners.get(event, ())
        for i, entry in enumerate(listeners):
            if entry[0] == listener:
                self._listeners[event] = listeners[:i] + listeners[i + 1:]
                return

    def has_listeners(self, event: str) -> bool:
        return bool(self._listeners.get(event)) or bool(self._listeners.get("*"))

    def emit(self, event: str, *args: Any) -> None:
        listeners = self._listeners.get(event)
        wildcard = self._listeners.get("*")
        if not listeners and not wildcard:
            return
        if listeners:
            for listener, cut in listeners:
                self._call(event, listener, args if cut is None else args[:cut])
        for listener, _ in wildcard or ():
            self._call(event, listener, (Event(event, args),))

    def _call(self, event: str, listener: Listener, args: tuple[Any, ...]) -> None:
        try:
            result = listener(*args)
        except Exception as exc:
            self._listener_failed(event, exc)
            return
        if result is not None and inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._tasks.add(task)
            task.add_done_callback(lambda t: self._task_done(event, t))

    def _task_done(self, event: str, task: asyncio.Future[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._listener_failed(event, task.exception())  # type: ignore[arg-type]

    def _listener_failed(self, event: str, exc: BaseException) -> None:
        log.error("listener for %r failed", event, exc_info=exc)
        if event != "error":
            self.emit("error", exc)

    async def events(self, *names: str) -> AsyncIterator[Event]:
        """Iterate over events as they are emitted (all of them when no names are given)."""
        inbox: asyncio.Queue[Event] = asyncio.Queue()
        if names:
            undo = [self.on(name, _bind(inbox, name)) for name in names]
        else:
            undo = [self.on("*", inbox.put_nowait)]
        try:
            while True:
                yield await inbox.get()
        finally:
            for fn in undo:
                fn()


def _bind(inbox: asyncio.Queue[Event], name: str) -> Listener:
    def push(*args: Any) -> None:
        inbox.put_nowait(Event(name, args))

    return push
