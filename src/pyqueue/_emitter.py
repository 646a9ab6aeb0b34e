"""Callbacks and async iterators over named events, shared by Queue, Worker and QueueEvents."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("pyqueue")

Listener = Callable[..., Awaitable[None] | None]


@dataclass(frozen=True, slots=True)
class Event:
    """One emitted event: its name and positional arguments."""

    name: str
    args: tuple[Any, ...]


class EventEmitter:
    """Register listeners with :meth:`on`, or iterate with :meth:`events`.

    A listener may be a plain function or a coroutine function; coroutines run
    as tasks so a slow listener never blocks the emitter. A failing listener is
    logged and, unless it was itself listening for ``error``, re-emitted as ``error``.
    """

    def __init__(self) -> None:
        self._listeners: dict[str, list[Listener]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def on(self, event: str, listener: Listener) -> Callable[[], None]:
        """Call ``listener(*args)`` on each ``event``; returns a function that unregisters it."""
        self._listeners.setdefault(event, []).append(listener)
        return lambda: self.off(event, listener)

    def off(self, event: str, listener: Listener) -> None:
        listeners = self._listeners.get(event, [])
        if listener in listeners:
            listeners.remove(listener)

    def has_listeners(self, event: str) -> bool:
        return bool(self._listeners.get(event)) or bool(self._listeners.get("*"))

    def emit(self, event: str, *args: Any) -> None:
        listeners = self._listeners.get(event)
        wildcard = self._listeners.get("*")
        if not listeners and not wildcard:
            return
        for listener in list(listeners or ()):
            self._call(event, listener, args)
        for listener in list(wildcard or ()):
            self._call(event, listener, (Event(event, args),))

    def _call(self, event: str, listener: Listener, args: tuple[Any, ...]) -> None:
        try:
            result = listener(*args)
        except Exception as exc:
            self._listener_failed(event, exc)
            return
        if inspect.isawaitable(result):
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
