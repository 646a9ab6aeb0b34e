"""What a plain ``def`` handler receives: a job whose operations block instead of awaiting.

Three kinds of handler, three ways of running (docs/guides/handlers.md has the table):

* ``async def`` handlers run on the worker's event loop and get a :class:`pyqueue.Job`,
  whose ``progress``/``log``/``update`` are coroutines.
* Plain ``def`` handlers run in a thread and get a :class:`JobHandle`; its operations
  run on the worker's loop and block the handler's thread until Redis answered.
* Sandboxed handlers (``WorkerOptions(sandbox=True)``) run in a child process and get a
  :class:`JobHandle` too; its operations are carried out by the parent process.
"""

from __future__ import annotations

import abc
from typing import Any, Generic, TypeVar

from pyqueue._protocol.bull.wire import options_from_wire
from pyqueue.errors import JobAbortedError
from pyqueue.options import JobOptions

DataT = TypeVar("DataT")


class JobHandle(abc.ABC, Generic[DataT]):
    """A job as a synchronous handler sees it, in a worker thread or a sandbox process.

    Fields: ``id``, ``name``, ``data``, ``opts`` (a :class:`~pyqueue.JobOptions`),
    ``raw_opts`` (Bull's camelCase dict), ``attempts_made``, ``timestamp``.

    ``progress``, ``log`` and ``update`` block until the change is stored in Redis,
    and raise what the async :class:`~pyqueue.Job` operation would raise. Call them
    from the handler's own thread (or process), never from an event loop.
    """

    id: str
    name: str
    data: DataT
    raw_opts: dict[str, Any]
    attempts_made: int
    timestamp: int
    _opts: JobOptions | None = None

    @property
    def opts(self) -> JobOptions:
        """The job's options, decoded from ``raw_opts`` on first use."""
        if self._opts is None:
            self._opts = options_from_wire(self.raw_opts)
        return self._opts

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id!r} name={self.name!r}>"

    @abc.abstractmethod
    def progress(self, value: Any) -> None:
        """Store progress (a number or any JSON value) and publish a progress event."""

    @abc.abstractmethod
    def log(self, line: str) -> int:
        """Append a line to the job's log; returns the number of lines."""

    @abc.abstractmethod
    def update(self, data: Any) -> None:
        """Replace the job's data (``self.data`` too)."""

    @property
    @abc.abstractmethod
    def context(self) -> dict[str, Any]:
        """The worker's context (see ``Worker(context=..., on_startup=...)``)."""

    @property
    @abc.abstractmethod
    def aborted(self) -> str | None:
        """The reason given to ``queue.abort(job_id)`` once the job was aborted, else None."""

    def raise_if_aborted(self) -> None:
        """Raise :class:`~pyqueue.JobAbortedError` if the job was aborted; call it between steps.

        A thread cannot be interrupted, so a synchronous handler stops only where it
        checks. The job then fails for good (no retry) with the abort's reason.
        """
        reason = self.aborted
        if reason is not None:
            raise JobAbortedError(reason)
