"""Typed ``on()`` for a worker's local events: one signature per Bull event name.

The emitter itself takes any name and any listener; these overloads let mypy
check both against what pyqueue emits. A listener may return an awaitable (it
runs as a task) and may take fewer trailing arguments than the event carries
(``failed`` reaches a ``(job, exc)`` listener too; see :class:`EventEmitter`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Generic, Literal, overload

from typing_extensions import TypeVar

from pyqueue._emitter import Event, EventEmitter

if TYPE_CHECKING:
    from pyqueue.job import Job

DataT = TypeVar("DataT", default=Any)

Unsubscribe = Callable[[], None]

# Events whose listeners take nothing, a job id, a job, or a job and an error.
NoArgEvent = Literal["drained", "paused", "resumed"]
JobIdEvent = Literal["stalled", "stalled-failed", "debounced", "duplicated"]
JobEvent = Literal["waiting", "delayed", "active", "removed", "lock-lost"]


class LocalEvents(Generic[DataT]):
    """``on``/``events`` of a :class:`~pyqueue.Queue` and a :class:`~pyqueue.Worker`, typed.

    A worker's events are its queue's: both register on the queue's emitter.

    ========================  ============================================================
    event                     listener
    ========================  ============================================================
    ``waiting``, ``delayed``  ``(job)`` a job was added here (``delayed``: with a delay)
    ``active``                ``(job)`` this worker started a job
    ``progress``              ``(job, value)``
    ``completed``             ``(job, result)``
    ``failed``                ``(job, exc, final)`` after every failed attempt; ``final``
                              is True when no retry follows (attempts used up, discard(),
                              UnrecoverableError, a backoff of -1); ``(job, exc)`` works too
    ``lock-lost``             ``(job)``; ``lock-extension-failed``: ``(job, exc)``
    ``stalled``               ``(job_id)``; also ``stalled-failed``, and ``debounced`` and
                              ``duplicated`` (an add that created nothing; see ``add``)
    ``removed``               ``(job)``
    ``cleaned``               ``(job_ids, state)``
    ``drained``, ``paused``,  ``()``
    ``resumed``
    ``error``                 ``(exc)``
    ``*``                     ``(event)``: an :class:`~pyqueue.Event` for every event
    ========================  ============================================================
    """

    def _event_emitter(self) -> EventEmitter:
        raise NotImplementedError

    @overload
    def on(self, event: NoArgEvent, listener: Callable[[], object]) -> Unsubscribe: ...
    @overload
    def on(self, event: JobIdEvent, listener: Callable[[str], object]) -> Unsubscribe: ...
    @overload
    def on(self, event: JobEvent, listener: Callable[[Job[DataT]], object]) -> Unsubscribe: ...
    @overload
    def on(
        self, event: Literal["progress", "completed"],
        listener: Callable[[Job[DataT], Any], object],
    ) -> Unsubscribe: ...
    @overload
    def on(
        self, event: Literal["failed"],
        listener: Callable[[Job[DataT], BaseException, bool], object]
        | Callable[[Job[DataT], BaseException], object],
    ) -> Unsubscribe: ...
    @overload
    def on(
        self, event: Literal["lock-extension-failed"],
        listener: Callable[[Job[DataT], BaseException], object],
    ) -> Unsubscribe: ...
    @overload
    def on(
        self, event: Literal["cleaned"], listener: Callable[[list[str], str], object],
    ) -> Unsubscribe: ...
    @overload
    def on(
        self, event: Literal["error"], listener: Callable[[BaseException], object],
    ) -> Unsubscribe: ...
    @overload
    def on(self, event: Literal["*"], listener: Callable[[Event], object]) -> Unsubscribe: ...

    def on(self, event: str, listener: Callable[..., object]) -> Unsubscribe:
        """Call ``listener`` on each ``event``; returns a function that unregisters it."""
        # EventEmitter's own on(): untyped, so the overloads above are the only check.
        return EventEmitter.on(self._event_emitter(), event, listener)  # type: ignore[arg-type]

    def events(self, *names: str) -> AsyncIterator[Event]:
        """Iterate over local events (all of them when no names are given).

        Each is an :class:`~pyqueue.Event` with ``name``, ``args`` (every argument,
        ``final`` included) and, for ``failed``, ``final``.
        """
        return EventEmitter.events(self._event_emitter(), *names)
