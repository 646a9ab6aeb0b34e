"""A blocking facade over :class:`~pyqueue.Queue`, for producers and admin code.

There is no second implementation here: each :class:`SyncQueue` owns a private
event loop in a daemon thread, runs an ordinary async :class:`Queue` on it and
forwards every call with :func:`asyncio.run_coroutine_threadsafe`. Exceptions
come back unchanged. Because the loop belongs to another thread, a SyncQueue
also works when called from inside a running event loop (the call blocks it).

After ``fork()`` (gunicorn ``--preload``, multiprocessing) the child has no loop
thread and shares the parent's sockets, so a SyncQueue notices the new process
id on its next call and opens its own loop and connections there, leaving the
parent's untouched. Its SyncJobs follow it.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Generic, Literal, Self, overload

import redis.asyncio as aioredis
from typing_extensions import TypeVar, Unpack

from pyqueue._protocol.connection import ConnectionSpec
from pyqueue._queue_admin import CleanState
from pyqueue._queue_reads import StateName
from pyqueue._queue_schedulers import JobScheduler
from pyqueue.errors import QueueClosedError
from pyqueue.job import AbortOutcome, Job, JobState
from pyqueue.options import BackoffStrategy, JobOptionFields, JobOptions
from pyqueue.queue import BulkJob, Queue
from pyqueue.repeat import Repeat

# Defaults to Any: a Queue made without a model holds any JSON payload.
DataT = TypeVar("DataT", default=Any)
T = TypeVar("T")

# What forked children inherited (loop threads, queues, clients), kept alive for
# good: collecting them would close transports of the parent's event loop, whose
# epoll instance the child shares, and so unregister the parent's sockets.
_INHERITED: list[object] = []


class _LoopThread:
    """An event loop running forever in a daemon thread, started on first use."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    @property
    def started(self) -> bool:
        return self._loop is not None

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and wait for its result (or exception)."""
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("a SyncQueue cannot be called from its own event loop")
        try:
            loop = self._ensure()
        except BaseException:
            coro.close()
            raise
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return future.result()
        except BaseException:
            # Interrupted (e.g. KeyboardInterrupt): don't leave the call running.
            future.cancel()
            raise

    def _ensure(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                ready = threading.Event()
                self._thread = threading.Thread(
                    target=self._main, args=(ready,), name=self._name, daemon=True
                )
                self._thread.start()
                ready.wait()
            assert self._loop is not None
            return self._loop

    def _main(self, ready: threading.Event) -> None:
        async def serve() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            ready.set()
            await self._stop.wait()

        # asyncio.run cancels leftover tasks and shuts down generators on exit.
        asyncio.run(serve())

    def stop(self) -> None:
        """Stop the loop and join its thread. Idempotent."""
        with self._lock:
            loop, stop, thread = self._loop, self._stop, self._thread
            self._loop = self._stop = self._thread = None
        if loop is None or stop is None or thread is None:
            return
        loop.call_soon_threadsafe(stop.set)
        thread.join()


class SyncJob(Generic[DataT]):
    """A blocking view of a :class:`~pyqueue.Job`; same fields, same operations.

    Operations raise :class:`~pyqueue.QueueClosedError` once its queue is closed.
    """

    __slots__ = ("_job", "_owner")

    def __init__(self, job: Job[DataT], owner: SyncQueue[DataT]) -> None:
        self._job = job
        self._owner = owner

    def _call(self, operation: Callable[[Job[DataT]], Coroutine[Any, Any, T]]) -> T:
        """Run ``operation(job)`` on the owner's loop, with its closed and fork checks."""
        queue = self._owner._queue
        if self._job.queue is not queue:
            # Made before a fork: rebind to the queue that owns this process's connections.
            self._job = Job(queue, self._job.record, self._job.data)
        return self._owner._run(operation(self._job))

    def __repr__(self) -> str:
        return f"<SyncJob {self.id!r} name={self.name!r} queue={self._job.queue.name!r}>"

    # --- fields -------------------------------------------------------------

    @property
    def id(self) -> str:
        """The job's id."""
        return self._job.id

    @property
    def name(self) -> str:
        """The job's name (``__default__`` when added without one)."""
        return self._job.name

    @property
    def data(self) -> DataT:
        """The payload (the model instance when the queue has a model)."""
        return self._job.data

    @property
    def opts(self) -> JobOptions:
        """The job's options, decoded from Bull's ``opts`` JSON."""
        return self._job.opts

    @property
    def raw_opts(self) -> dict[str, Any]:
        """The ``opts`` object exactly as stored (camelCase)."""
        return self._job.raw_opts

    @property
    def timestamp(self) -> int:
        """When the job was created, epoch ms."""
        return self._job.timestamp

    @property
    def delay(self) -> int:
        """ms after ``timestamp`` before the job may run (0 when not delayed)."""
        return self._job.delay

    @property
    def priority(self) -> int:
        """The job's priority, 1 the highest; 0 when it has none."""
        return self._job.priority

    @property
    def progress_value(self) -> Any:
        """The last progress stored (a number or any JSON value; 0 before any)."""
        return self._job.progress_value

    @property
    def attempts_made(self) -> int:
        """Failed attempts so far, as Bull counts them (see :attr:`pyqueue.Job.attempts_made`)."""
        return self._job.attempts_made

    @property
    def stalled_counter(self) -> int:
        """How many times the job was found stalled and recovered."""
        return self._job.stalled_counter

    @property
    def failed_reason(self) -> str | None:
        """The last failed attempt's error message; None before any."""
        return self._job.failed_reason

    @property
    def stacktrace(self) -> list[str]:
        """The stack traces of failed attempts, oldest first."""
        return self._job.stacktrace

    @property
    def return_value(self) -> Any:
        """What the handler returned, JSON-decoded; None before then."""
        return self._job.return_value

    @property
    def finished_on(self) -> int | None:
        """When the job completed or failed for good, epoch ms; None before then."""
        return self._job.finished_on

    @property
    def processed_on(self) -> int | None:
        """When the latest attempt started, epoch ms; None before any."""
        return self._job.processed_on

    @property
    def created(self) -> bool:
        """True when the ``add()`` that returned this job created it (see :class:`Job`)."""
        return self._job.created

    def to_json(self) -> dict[str, Any]:
        """The fields of Node's ``Job#toJSON()``, camelCase."""
        return self._job.to_json()

    # --- operations (see the same methods of Job) ----------------------------

    def progress(self, value: Any) -> None:
        """Store progress and publish a progress event."""
        self._call(lambda job: job.progress(value))

    def log(self, line: str) -> int:
        """Append a line to the job's log; returns the number of lines."""
        return self._call(lambda job: job.log(line))

    def update(self, data: Any) -> None:
        """Replace the job's data."""
        self._call(lambda job: job.update(data))

    def remove(self) -> None:
        """Raises :class:`~pyqueue.JobStateError` when the job is locked."""
        self._call(lambda job: job.remove())

    def retry(self) -> None:
        """Raises :class:`~pyqueue.JobStateError` unless the job failed and is unlocked."""
        self._call(lambda job: job.retry())

    def promote(self) -> None:
        """Move a delayed job to wait now."""
        self._call(lambda job: job.promote())

    def get_state(self) -> JobState:
        """The job's state now; raises :class:`~pyqueue.JobNotFound` once it is gone."""
        return self._call(lambda job: job.get_state())

    def is_completed(self) -> bool:
        """True if the job is in the completed set."""
        return self._call(lambda job: job.is_completed())

    def is_failed(self) -> bool:
        """True if the job is in the failed set."""
        return self._call(lambda job: job.is_failed())

    def reload(self) -> None:
        """Re-read the job hash from Redis."""
        self._call(lambda job: job.reload())

    def finished(self, timeout: float | timedelta | None = None) -> Any:
        """Block until the job completes; return its result.

        Args:
            timeout: Seconds (or a timedelta) to wait; None waits without limit.

        Raises:
            JobFailedError: the job failed for good.
            JobNotFound: the job does not exist, or is removed while waited for.
            TimeoutError: ``timeout`` passed first.
        """
        return self._call(lambda job: job.finished(timeout))


class SyncQueue(Generic[DataT]):
    """A blocking :class:`~pyqueue.Queue`: the same arguments and methods, no ``await``.

    Args:
        name: As for :class:`Queue`.
        redis_url: As for :class:`Queue`.
        prefix: As for :class:`Queue`.
        default_job_options: As for :class:`Queue`.
        model: As for :class:`Queue`.
        backoff_strategies: As for :class:`Queue`.
        protocol: As for :class:`Queue` (``"bull"``, ``"bullmq"``, None: detect).
        connection: A ``redis.asyncio.Redis`` client whose settings are copied (its
            connections belong to another event loop, so it is not used itself).

    Raises:
        InvalidOptionsError: for a bad name, prefix or URL (nothing is connected yet).
    """

    def __init__(
        self,
        name: str,
        redis_url: str | None = None,
        *,
        connection: aioredis.Redis | None = None,
        prefix: str = "bull",
        default_job_options: JobOptions | None = None,
        model: type[DataT] | None = None,
        backoff_strategies: Mapping[str, BackoffStrategy] | None = None,
        protocol: str | None = None,
    ) -> None:
        self._settings: dict[str, Any] = {
            "name": name, "redis_url": redis_url, "connection": connection, "prefix": prefix,
            "default_job_options": default_job_options, "model": model,
            "backoff_strategies": backoff_strategies, "protocol": protocol,
        }
        self._closed = False
        self._open()

    def _open(self) -> None:
        """Make the async queue and the (not yet started) loop thread for this process."""
        settings = self._settings
        connection: aioredis.Redis | None = settings["connection"]
        own: aioredis.Redis | None = None
        if connection is not None:
            if settings["redis_url"] is None:
                spec = ConnectionSpec.from_client(connection)
                own = spec.for_key(f"{settings['prefix']}:{settings['name']}:").async_client()
            else:
                own = connection  # let Queue reject the pair with its own message
        self._async_queue: Queue[DataT] = Queue(
            settings["name"], settings["redis_url"], connection=own, prefix=settings["prefix"],
            default_job_options=settings["default_job_options"], model=settings["model"],
            backoff_strategies=settings["backoff_strategies"], protocol=settings["protocol"],
        )
        self._own_client = own if own is not connection else None
        self._runner = _LoopThread(f"pyqueue-sync-{settings['name']}")
        self._pid = os.getpid()

    @property
    def _queue(self) -> Queue[DataT]:
        """The async queue of this process.

        Raises:
            QueueClosedError: the SyncQueue was closed.
        """
        if self._closed:
            raise QueueClosedError(f"queue {self.name!r} is closed")
        if self._pid != os.getpid():
            # A forked child: the loop thread is gone and the sockets are the
            # parent's. Never touch them; start afresh.
            _INHERITED.append((self._runner, self._async_queue, self._own_client))
            self._open()
        return self._async_queue

    @property
    def name(self) -> str:
        return self._async_queue.name

    @property
    def prefix(self) -> str:
        return self._async_queue.prefix

    @property
    def token(self) -> str:
        return self._async_queue.token

    def __repr__(self) -> str:
        return f"<SyncQueue {self.name!r} prefix={self.prefix!r}>"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the queue's connections and stop its loop thread. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._pid != os.getpid():
            return  # a forked child that never used it: what it holds is the parent's
        if self._runner.started:
            self._runner.run(self._close_async())
        self._runner.stop()

    async def _close_async(self) -> None:
        await self._async_queue.close()
        if self._own_client is not None:
            await self._own_client.aclose()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine of :attr:`_queue` (which made the closed and fork checks)."""
        if self._closed:
            coro.close()
            raise QueueClosedError(f"queue {self.name!r} is closed")
        return self._runner.run(coro)

    def _wrap(self, job: Job[DataT]) -> SyncJob[DataT]:
        return SyncJob(job, self)

    # --- adding ---------------------------------------------------------------

    @overload
    def add(
        self, data: DataT | Mapping[str, Any], *, name: str | None = None, repeat: Repeat,
        **options: Unpack[JobOptionFields],
    ) -> SyncJob[DataT] | None: ...

    @overload
    def add(
        self, data: DataT | Mapping[str, Any], *, name: str | None = None, repeat: None = None,
        **options: Unpack[JobOptionFields],
    ) -> SyncJob[DataT]: ...

    def add(
        self, data: DataT | Mapping[str, Any], *, name: str | None = None,
        repeat: Repeat | None = None,
        **options: Unpack[JobOptionFields],
    ) -> SyncJob[DataT] | None:
        """Add a job, or declare a repeatable one; see :meth:`Queue.add`.

        Raises:
            InvalidOptionsError: bad options or data; nothing is written.
        """
        if repeat is not None:
            job = self._run(self._queue.add(data, name=name, repeat=repeat, **options))
            return None if job is None else self._wrap(job)
        return self._wrap(self._run(self._queue.add(data, name=name, **options)))

    def get_repeatable_jobs(
        self, start: int = 0, end: int = -1, *, asc: bool = False
    ) -> list[dict[str, Any]]:
        """See :meth:`Queue.get_repeatable_jobs`."""
        return self._run(self._queue.get_repeatable_jobs(start, end, asc=asc))

    def get_repeatable_count(self) -> int:
        """See :meth:`Queue.get_repeatable_count`."""
        return self._run(self._queue.get_repeatable_count())

    def abort(self, job_id: str, reason: str | None = None) -> AbortOutcome:
        """See :meth:`Queue.abort`."""
        return self._run(self._queue.abort(job_id, reason))

    def remove_debounce_key(self, debounce_id: str) -> bool:
        """See :meth:`Queue.remove_debounce_key`."""
        return self._run(self._queue.remove_debounce_key(debounce_id))

    def remove_repeatable(self, repeat: Repeat, *, name: str | None = None) -> None:
        """See :meth:`Queue.remove_repeatable`."""
        self._run(self._queue.remove_repeatable(repeat, name=name))

    def remove_repeatable_by_key(self, key: str) -> None:
        """See :meth:`Queue.remove_repeatable_by_key`."""
        self._run(self._queue.remove_repeatable_by_key(key))

    def add_bulk(self, jobs: Iterable[BulkJob]) -> list[SyncJob[DataT]]:
        """Add many jobs atomically; see :meth:`Queue.add_bulk`."""
        return [self._wrap(j) for j in self._run(self._queue.add_bulk(list(jobs)))]

    # --- reading --------------------------------------------------------------

    def get_job(self, job_id: str) -> SyncJob[DataT] | None:
        job = self._run(self._queue.get_job(job_id))
        return None if job is None else self._wrap(job)

    def get_job_state(self, job_id: str) -> JobState:
        return self._run(self._queue.get_job_state(job_id))

    def get_job_counts(self, *states: StateName) -> dict[str, int]:
        return self._run(self._queue.get_job_counts(*states))

    def get_runnable_count(self) -> int:
        """See :meth:`Queue.get_runnable_count`."""
        return self._run(self._queue.get_runnable_count())

    def get_waiting_count(self) -> int:
        return self._run(self._queue.get_waiting_count())

    def get_active_count(self) -> int:
        return self._run(self._queue.get_active_count())

    def get_completed_count(self) -> int:
        return self._run(self._queue.get_completed_count())

    def get_failed_count(self) -> int:
        return self._run(self._queue.get_failed_count())

    def get_delayed_count(self) -> int:
        return self._run(self._queue.get_delayed_count())

    def get_paused_count(self) -> int:
        return self._run(self._queue.get_paused_count())

    def count(self) -> int:
        return self._run(self._queue.count())

    def get_job_ids(
        self, states: Sequence[StateName] | StateName, start: int = 0, end: int = -1,
        *, asc: bool = False,
    ) -> list[str]:
        return self._run(self._queue.get_job_ids(states, start, end, asc=asc))

    def get_jobs(
        self, states: Sequence[StateName] | StateName, start: int = 0, end: int = -1,
        *, asc: bool = False,
    ) -> list[SyncJob[DataT]]:
        jobs = self._run(self._queue.get_jobs(states, start, end, asc=asc))
        return [self._wrap(j) for j in jobs]

    def get_job_logs(
        self, job_id: str, start: int = 0, end: int = -1, *, asc: bool = True
    ) -> tuple[list[str], int]:
        return self._run(self._queue.get_job_logs(job_id, start, end, asc=asc))

    def get_counts_per_priority(self, priorities: Sequence[int]) -> dict[str, int]:
        return self._run(self._queue.get_counts_per_priority(priorities))

    def get_metrics(
        self, kind: Literal["completed", "failed"], start: int = 0, end: int = -1
    ) -> dict[str, Any]:
        return self._run(self._queue.get_metrics(kind, start, end))

    def get_workers(self) -> list[dict[str, str]]:
        return self._run(self._queue.get_workers())

    # --- management -----------------------------------------------------------

    def pause(self) -> None:
        self._run(self._queue.pause())

    def resume(self) -> None:
        self._run(self._queue.resume())

    def is_paused(self) -> bool:
        return self._run(self._queue.is_paused())

    def clean(
        self,
        grace: int | timedelta,
        state: CleanState = "completed",
        limit: int = 0,
    ) -> list[str]:
        """See :meth:`Queue.clean`."""
        return self._run(self._queue.clean(grace, state, limit))

    def empty(self) -> None:
        self._run(self._queue.empty())

    def obliterate(self, *, force: bool = False, count: int = 1000) -> None:
        """Raises :class:`~pyqueue.JobStateError` if jobs are active and not ``force``."""
        self._run(self._queue.obliterate(force=force, count=count))

    def remove_jobs(self, pattern: str) -> list[str]:
        return self._run(self._queue.remove_jobs(pattern))

    def retry_jobs(self, count: int = 1000) -> None:
        self._run(self._queue.retry_jobs(count))

    # --- job schedulers (BullMQ mode; a Bull queue raises InvalidOptionsError) ---

    def upsert_job_scheduler(
        self, scheduler_id: str, *, every: int | timedelta | None = None,
        pattern: str | None = None, tz: str | None = None, limit: int | None = None,
        start_date: datetime | int | None = None, end_date: datetime | int | None = None,
        offset: int | timedelta | None = None, immediately: bool = False,
        name: str | None = None, data: Any = None, options: JobOptions | None = None,
    ) -> SyncJob[DataT] | None:
        """See :meth:`Queue.upsert_job_scheduler`."""
        job = self._run(self._queue.upsert_job_scheduler(
            scheduler_id, every=every, pattern=pattern, tz=tz, limit=limit,
            start_date=start_date, end_date=end_date, offset=offset, immediately=immediately,
            name=name, data=data, options=options,
        ))
        return None if job is None else self._wrap(job)

    def remove_job_scheduler(self, scheduler_id: str) -> bool:
        return self._run(self._queue.remove_job_scheduler(scheduler_id))

    def get_job_scheduler(self, scheduler_id: str) -> JobScheduler | None:
        return self._run(self._queue.get_job_scheduler(scheduler_id))

    def get_job_schedulers(self, start: int = 0, end: int = -1, *,
                           asc: bool = False) -> list[JobScheduler]:
        return self._run(self._queue.get_job_schedulers(start, end, asc=asc))

    def wait_until_finished(
        self, job_id: str, timeout: float | timedelta | None = None
    ) -> Any:
        """Block until the job completes and return its result.

        Args:
            timeout: Seconds (or a timedelta) to wait; None waits without limit.

        See :meth:`Queue.wait_until_finished` for what it raises.
        """
        return self._run(self._queue.wait_until_finished(job_id, timeout))
