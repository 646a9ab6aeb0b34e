"""The job a plain ``def`` handler gets in its worker thread: blocking operations on the loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from pyqueue.handle import JobHandle
from pyqueue.job import Job

T = TypeVar("T")


class ThreadJob(JobHandle[Any]):
    """A :class:`~pyqueue.JobHandle` over the worker's :class:`~pyqueue.Job`.

    Each operation runs the Job's coroutine on the worker's event loop (the one
    that owns the Redis connections) and waits for it, so the handler's thread
    never touches a connection itself.
    """

    def __init__(self, job: Job[Any], loop: asyncio.AbstractEventLoop) -> None:
        self._job = job
        self.id = job.id
        self.name = job.name
        self.data = job.data
        self.raw_opts = job.raw_opts
        self.attempts_made = job.attempts_made
        self.timestamp = job.timestamp
        self._loop = loop
        self._loop_thread = threading.get_ident()

    def __getattr__(self, name: str) -> Any:
        # Sync handlers got the Job itself before: its other fields (queue, record,
        # stacktrace, ...) still read through. Only progress/log/update changed.
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._job, name)

    @property
    def job(self) -> Job[Any]:
        """The async :class:`~pyqueue.Job` underneath, for code running on the loop."""
        return self._job

    @property
    def context(self) -> dict[str, Any]:
        return self._job.context

    @property
    def aborted(self) -> str | None:
        return self._job.aborted

    def progress(self, value: Any) -> None:
        self._run(self._job.progress(value))

    def log(self, line: str) -> int:
        return self._run(self._job.log(line))

    def update(self, data: Any) -> None:
        self._run(self._job.update(data))
        self.data = self._job.data

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if threading.get_ident() == self._loop_thread:
            coro.close()
            # Blocking here would wait for the very loop it blocks.
            raise RuntimeError(
                "JobHandle operations block; on the event loop, await handle.job.progress() "
                "(or log/update) instead"
            )
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()
