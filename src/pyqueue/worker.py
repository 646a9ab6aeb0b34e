"""The worker: fetch, dispatch, finish, and fetch the next job in the same call.

Shape of a running worker::

    fetch loop ──(free slot)──► BLMOVE/moveToActive ──► chain task
    chain task: run handler ─► moveToFinished(fetch next) ─► run next handler ─► ...
    lock renewer thread, delayed promoter, stalled checker run beside them.

One chain per concurrency slot at most. A chain ends when finishing finds no
next job; its slot then goes back to the fetch loop, which blocks on the wait
list (never polls).

The fetch loop and its chains live in :mod:`pyqueue._engine.fetching`, finishing in
:mod:`pyqueue._engine.finishing`, lock renewal in :mod:`pyqueue._engine.locks` and the
background duties in :mod:`pyqueue._engine.maintenance`. This module wires them
together and runs each job's handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Generator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any, Self, TypeAlias

import redis.asyncio as aioredis
from pydantic import ValidationError
from redis.exceptions import RedisError
from typing_extensions import TypeVar

from pyqueue import _scheduling
from pyqueue._emitter import EventEmitter
from pyqueue._engine.backoff import BackoffStrategy
from pyqueue._engine.context import WorkerContext
from pyqueue._engine.fetching import Fetcher
from pyqueue._engine.finishing import Finisher
from pyqueue._engine.locks import LockRenewer, sync_release, sync_renewer
from pyqueue._engine.maintenance import AbortListener, DelayedPromoter, StalledChecker
from pyqueue._engine.presence import Presence
from pyqueue._engine.processing import (
    find_handler,
    is_async_handler,
    normalise_processors,
    run_handler,
)
from pyqueue._engine.sandbox import SandboxPool
from pyqueue._local_events import LocalEvents
from pyqueue._protocol.bull import wire
from pyqueue._protocol.bull.scripts import JobReply
from pyqueue.errors import JobAbortedError, PyQueueError, ScriptError, UnrecoverableError
from pyqueue.handle import JobHandle
from pyqueue.hooks import (
    AfterProcess,
    BeforeProcess,
    Context,
    JobOutcome,
    LifecycleHook,
    call_hook,
)
from pyqueue.job import Job, now_ms
from pyqueue.options import WorkerOptions
from pyqueue.queue import Queue

log = logging.getLogger("pyqueue.worker")
_ABORT_FIELD = wire.ABORT_FIELD.encode()
_UNCLAIMED_ABORTS = 256
_UNCLAIMED_FOR = 5.0  # seconds

# The payload type of the queue's jobs; Any for a worker made from a queue name.
DataT = TypeVar("DataT", default=Any)
# An ``async def`` handler gets the Job; a plain ``def`` or sandboxed one a JobHandle.
TypedHandler: TypeAlias = Callable[[Job[DataT]], Any] | Callable[[JobHandle[DataT]], Any]


class Worker(LocalEvents[DataT]):
    """Processes jobs of one queue.

    Args:
        queue: Queue name, or a :class:`Queue` to process. A given Queue is shared,
            not copied: the worker's events fire on it (``queue.on("completed", ...)``
            works as in Bull, and so does ``worker.on``), and :meth:`close` leaves it
            open for its owner to close (after the worker).
        processor: ``handler(job)`` for every job name, or ``{name: handler}``
            with ``"*"`` as the fallback. Handlers are ``async def`` or plain
            functions (run in a thread pool of ``concurrency`` threads).
        redis_url, connection, prefix: As for :class:`Queue` (when ``queue`` is a name).
        options: :class:`WorkerOptions`; ``concurrency`` may be given directly.
        backoff_strategies: Custom backoff functions by ``backoff.type``.
        context: The dict handlers reach as ``job.context`` (default: a new empty
            dict), for what they share: database pools, HTTP clients. Also
            :attr:`context`.
        on_startup: ``hook(context)``, awaited by :meth:`start` before the first
            fetch (fill the context here); if it raises, :meth:`start` raises.
        on_shutdown: ``hook(context)``, awaited by :meth:`close` once active jobs
            are finished or released, before the connections close. A plain ``def``
            handler still running past the grace period (a thread cannot be
            stopped) may still be using the context then.
        before_process: ``hook(job)`` before each attempt's handler; if it raises,
            the attempt fails with that error and the handler is not called.
        after_process: ``hook(job, outcome)`` once each attempt's outcome is stored
            (a :class:`pyqueue.hooks.JobOutcome`); an error there is reported as
            an ``error`` event and changes nothing.

    Hooks may be ``async def`` or plain functions (which run on the event loop and
    must not block); they add no Redis round trip. Sandboxed handlers run in
    another process and cannot reach the context.

    Local events (typed: see :class:`~pyqueue._local_events.LocalEvents`):
    ``active(job)``, ``completed(job, result)``, ``failed(job, exc, final)`` after
    every failed attempt (``final``: no retry follows; ``(job, exc)`` listeners
    work too), ``progress(job, value)``, ``drained()``, ``stalled(job_id)``,
    ``paused()``, ``resumed()``, ``error(exc)``, and for locks:

    * ``lock-extension-failed(job, exc)``: as in Bull, Redis failed while the
      lock was being extended (the lock may still be ours; renewal goes on, and
      ``error(exc)`` fires once per renewal pass that met errors).
    * ``lock-lost(job)``: pyqueue only: the renewer found the lock gone or
      held by another worker (expired, taken over, deleted); this attempt's
      outcome will not be saved.
    """

    def __init__(
        self,
        queue: str | Queue[DataT],
        processor: TypedHandler[DataT] | Mapping[str, TypedHandler[DataT]],
        *,
        redis_url: str | None = None,
        connection: aioredis.Redis | None = None,
        prefix: str = "bull",
        options: WorkerOptions | None = None,
        concurrency: int | None = None,
        backoff_strategies: Mapping[str, BackoffStrategy] | None = None,
        context: Context | None = None,
        on_startup: LifecycleHook | None = None,
        on_shutdown: LifecycleHook | None = None,
        before_process: BeforeProcess | None = None,
        after_process: AfterProcess | None = None,
    ) -> None:
        opts = options or WorkerOptions()
        if concurrency is not None:
            opts = WorkerOptions(**{**_fields(opts), "concurrency": concurrency})
        self.options = opts
        self.context: Context = {} if context is None else context
        self._on_startup = on_startup
        self._on_shutdown = on_shutdown
        self._before_process = before_process
        self._after_process = after_process
        self._processors = normalise_processors(processor)
        handlers = self._processors.values()
        # Asked per job otherwise; the handlers live as long as the worker, so do their ids.
        self._async_handlers = {id(h): is_async_handler(h) for h in handlers}
        # One async handler for every name, run in-process: what most workers have,
        # called by _call_abortable without a lookup per job.
        only = self._processors.get("*") if len(self._processors) == 1 else None
        self._sole_async = (
            only if only is not None and self._async_handlers[id(only)] and not opts.sandbox
            else None
        )
        self._sandbox = SandboxPool(opts.concurrency, handlers=handlers) if opts.sandbox else None
        # A Queue handed in is used as it is, not copied: it is the one emitter, so
        # Bull-style ``queue.on("completed", ...)`` hears this worker, and its jobs'
        # ``job.queue`` is that object. Its owner closes it, after the worker.
        self._owns_queue = not isinstance(queue, Queue)
        if isinstance(queue, Queue):
            self.queue: Queue[DataT] = queue
        else:
            self.queue = Queue(queue, redis_url, connection=connection, prefix=prefix)
        self.token = str(uuid.uuid4())
        self._executor = ThreadPoolExecutor(opts.concurrency, thread_name_prefix="pyqueue-job")
        # A read timeout past the BLMOVE wait, so a silent socket cannot stall
        # fetching for ever; none on pub/sub, which is idle by nature and is
        # checked by PING instead (pyqueue._protocol.pubsub).
        self._bclient = self.queue.connection_spec.async_client(
            max_connections=1, socket_timeout=opts.drain_delay + 10
        )
        self._pubsub_client = self.queue.connection_spec.async_client(socket_timeout=None)
        self._active: dict[str, asyncio.Task[Any]] = {}
        self._jobs: dict[str, Job[Any]] = {}
        # Sync handler calls that have not returned, by job id (see close()).
        self._threads: dict[str, Future[Any]] = {}
        # Jobs whose handler is running now, and those of them cancelled by an abort.
        self._calling: set[str] = set()
        self._abort_cancelled: set[str] = set()
        # Aborts heard for jobs this worker does not run (yet): the message can
        # arrive before the reply that hands us the job. Most are other workers'.
        self._unclaimed_aborts: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = asyncio.Event()
        self._running = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._renewer: LockRenewer | None = None
        self._close_renewer_client: Any = None
        self._presence: Presence | None = None
        # What the fetch loop and the finisher share about this worker.
        # The queue's own emit, bound once: Worker.emit would add a call per event.
        self._emit = self.queue.emit
        self._ctx = WorkerContext(self.queue, self.token, opts, self._emit, self._error)
        self._fetcher = Fetcher(self._ctx, self._bclient, self._process)
        self._finisher = Finisher(self._ctx, dict(backoff_strategies or {}))

    # --- events (the queue's emitter: jobs emit progress there too) ---------

    # on() and events() come from LocalEvents, typed per event name.

    def _event_emitter(self) -> EventEmitter:
        return self.queue

    def emit(self, event: str, *args: Any) -> None:
        self.queue.emit(event, *args)

    # --- lifecycle ------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Start fetching and the background duties. Returns once they run."""
        if self._running:
            return
        if self._on_startup is not None:
            await call_hook(self._on_startup, self.context)
        self._running = True
        self._loop = asyncio.get_running_loop()
        o = self.options
        renew, closer, list_active = sync_renewer(
            self.queue.connection_spec, self.queue.keys, self.token, o.lock_duration
        )
        self._close_renewer_client = closer
        self._renewer = LockRenewer(
            renew, o.renew_every, on_lost=self._lock_lost_threadsafe,
            on_error=self._error_threadsafe,
            list_active=list_active,
            on_extend_error=self._extend_failed_threadsafe,
            lock_duration_ms=o.lock_duration,
        )
        self._renewer.start()
        self._tasks.append(asyncio.create_task(self._heartbeat(), name="pyqueue-heartbeat"))
        # Listed by name among the queue's workers, and named in each job it starts.
        self._presence = Presence(
            self.queue.client, self.queue.keys, self.token, o.concurrency,
            lambda: list(self._jobs), lambda: self._fetcher.client_id,
        )
        self._ctx.identity = self._presence.identity_json
        self._tasks.append(asyncio.create_task(self._presence.run(), name="pyqueue-presence"))
        if self._sandbox is not None:
            await self._sandbox.start()
        promoter = DelayedPromoter(
            self.queue.scripts, self._pubsub_client, self.queue.keys, self.token,
            o.guard_interval, self._error,
            silence_timeout=self.queue.connection_spec.read_timeout,
        )
        self._tasks.append(asyncio.create_task(promoter.run(), name="pyqueue-delayed"))
        aborts = AbortListener(
            self._pubsub_client, self.queue.keys, self._abort_heard, self._recheck_aborts,
            self._error, silence_timeout=self.queue.connection_spec.read_timeout,
        )
        self._tasks.append(asyncio.create_task(aborts.run(), name="pyqueue-abort"))
        if o.stalled_interval > 0:
            checker = StalledChecker(
                self.queue.scripts, o.stalled_interval, o.max_stalled_count,
                self._stalled_result, self._error,
            )
            self._tasks.append(asyncio.create_task(checker.run(), name="pyqueue-stalled"))
        self._tasks.append(self._fetcher.start())

    @property
    def active_jobs(self) -> list[Job[Any]]:
        """The jobs whose attempt this worker runs now (a copy; for gauges and listings)."""
        return list(self._jobs.values())

    @property
    def running(self) -> bool:
        """True from :meth:`start` until :meth:`close` begins, while its background tasks live.

        For readiness probes: False before start, once closing, or when a fetch or
        maintenance task has died.
        """
        return self._running and not self._ctx.closing and not any(t.done() for t in self._tasks)

    async def run(self) -> None:
        """Start, then wait until :meth:`close` is called (e.g. from a signal handler)."""
        await self.start()
        await self._closed.wait()

    async def close(self, timeout: float | None = None) -> None:
        """Stop fetching, let active jobs finish, release the rest, close connections.

        Args:
            timeout: Seconds to wait for active jobs (default ``shutdown_grace``).
                Async handlers still running then are cancelled and their jobs
                moved back to wait, so another worker runs them; nothing is lost.

        A sync handler still running then cannot be stopped (Python threads
        cannot be interrupted). Its job is not requeued yet: it stays in active,
        and the lock renewer thread keeps its lock alive until the handler
        returns, so no other worker starts it meanwhile. When it returns, its
        result is discarded and the job goes back to the front of wait (no
        attempt counted), from the handler's own thread; Python's exit waits
        for pool threads, so a process that exits after ``close()`` does this
        too. If Redis cannot be reached then, or the process is killed, the
        lock lapses and the stalled check recovers the job.
        """
        if self._ctx.closing:
            await self._closed.wait()
            return
        self._ctx.closing = True
        grace = self.options.shutdown_grace if timeout is None else timeout
        await self._fetcher.stop()
        running: dict[str, Future[Any]] = {}
        if self._fetcher.chains:
            _, pending = await asyncio.wait(set(self._fetcher.chains), timeout=grace)
            if pending:
                running = await self._release_unfinished(pending)
        await _cancel_all(self._tasks)
        if self._presence is not None:
            await self._presence.leave()
        self._executor.shutdown(wait=False, cancel_futures=True)
        if self._renewer is not None and running:
            log.warning(
                "closing with %d sync handler(s) still running (jobs %s): their locks are "
                "renewed until they return, then the jobs go back to wait",
                len(running), ", ".join(sorted(running)),
            )
            closer = self._close_renewer_client or (lambda: None)
            release = sync_release(self.queue.connection_spec, self.queue.keys, self.token)
            self._renewer.outlive(running, release, closer)
        else:
            if self._renewer is not None:
                await asyncio.to_thread(self._renewer.stop)
            if self._close_renewer_client is not None:
                self._close_renewer_client()
        if self._sandbox is not None:
            await self._sandbox.close()
        if self._on_shutdown is not None:
            try:
                await call_hook(self._on_shutdown, self.context)
            except Exception as exc:  # closing goes on: connections must still be released
                self._error(exc)
        await self._bclient.aclose()
        await self._pubsub_client.aclose()
        if self._owns_queue:
            await self.queue.close()
        self._closed.set()

    async def _release_unfinished(
        self, pending: set[asyncio.Task[None]]
    ) -> dict[str, Future[Any]]:
        """Cancel the chains still running; requeue the jobs whose handler stopped.

        Returns the sync handler calls that are still running, by job id: a
        thread cannot be stopped, so those jobs are left in active, locked.
        """
        ids = list(self._active)
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=5)
        # Calls queued behind busy threads never start: their jobs are free to go.
        for call in list(self._threads.values()):
            call.cancel()
        running = {i: call for i, call in list(self._threads.items()) if not call.done()}
        for job_id in ids:
            if job_id in running:
                continue
            with contextlib.suppress(ScriptError, RedisError):
                # Back to the front of wait without counting an attempt.
                await self.queue.scripts.retry_job(job_id, token=self.token, lifo=True)
        return running

    async def _heartbeat(self) -> None:
        # Tells the lock renewer the loop runs; a late beat means a handler blocks it.
        assert self._renewer is not None
        while True:
            self._renewer.beat()
            await asyncio.sleep(self._renewer.beat_every)

    # --- local pause ------------------------------------------------------------

    async def pause(self) -> None:
        """Stop taking new jobs in this worker only, and wait for active ones."""
        self._ctx.resumed.clear()
        self.emit("paused")
        # A fetch already blocked on the wait list would take the next job.
        await self._fetcher.unblock()
        await self.when_current_jobs_finished()

    def resume(self) -> Awaitable[None]:
        """Take new jobs again. Done on return; awaitable like :meth:`pause`.

        ``await worker.resume()`` and a bare ``worker.resume()`` (it used to be a
        plain method) both work.
        """
        self._ctx.resumed.set()
        self.emit("resumed")
        return _DONE

    async def when_current_jobs_finished(self) -> None:
        """Wait until every job this worker is running has finished."""
        while self._fetcher.chains:
            await asyncio.wait(set(self._fetcher.chains))

    # --- processing -------------------------------------------------------------

    async def _process(
        self, job_id: str, raw: dict[bytes, bytes], task: asyncio.Task[Any]
    ) -> JobReply | None:
        job = self.queue.job_from_raw(job_id, raw)
        job.lock_token = self.token
        job.context = self.context
        flagged = raw.get(_ABORT_FIELD)
        if flagged is not None:
            # Aborted while active before (a stall, or a worker that missed the message).
            job.mark_aborted(flagged.decode("utf-8", "replace"))
        if self._unclaimed_aborts:
            heard = self._unclaimed_aborts.pop(job_id, None)
            # Only just heard: an old entry may be for an attempt before a retry.
            if heard is not None and time.monotonic() - heard[1] < _UNCLAIMED_FOR:
                job.mark_aborted(heard[0])
        assert self._renewer is not None
        self._renewer.add(job_id)
        self._active[job_id] = task
        self._jobs[job_id] = job
        try:
            if "repeat" in job.raw_opts:
                await self._chain_repeat(job, raw)
            self._emit("active", job)
            try:
                job.raise_if_aborted()
                if self._before_process is not None:
                    await call_hook(self._before_process, job)
                result = await self._call_abortable(job)
                # A sync handler that ignored the flag, or an async one that
                # swallowed the cancellation: its result is dropped all the same.
                job.raise_if_aborted()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if job.aborted is not None and not isinstance(exc, JobAbortedError):
                    exc = JobAbortedError(job.aborted)
                await self._finisher.failed(job, exc)
                if job.aborted is not None:
                    await self._clear_abort_flag(job)
                await self._after(job, None, exc)
                return None
            reply, rejected = await self._finisher.completed(job, result)
            if self._after_process is not None:  # no coroutine per job without a hook
                await self._after(job, None if rejected else result, rejected)
            return reply
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # Not the handler's failure but ours (or Redis's, past the retries):
            # said out loud, and the job is settled so that its slot goes on.
            self._error(exc)
            with contextlib.suppress(Exception):
                await self._finisher.abandon(job, exc)
            return None
        finally:
            self._renewer.discard(job_id)
            self._active.pop(job_id, None)
            self._jobs.pop(job_id, None)

    async def _call_abortable(self, job: Job[Any]) -> Any:
        """Call the job's handler, turning an abort's cancellation into :class:`JobAbortedError`."""
        self._calling.add(job.id)
        try:
            record = job.record
            if record.data_error is not None:
                raise UnrecoverableError(record.data_error)
            if self.queue.model is not None:
                try:
                    job.data = self.queue.decode_data(record.data)
                except ValidationError as exc:
                    name = self.queue.model.__name__
                    raise UnrecoverableError(f"invalid payload for {name}: {exc}") from None
            raw_opts = record.raw_opts
            sole = self._sole_async
            handler = sole if sole is not None else find_handler(self._processors, job.name)
            is_async = sole is not None or self._async_handlers[id(handler)]
            timeout = wire.timeout_of(raw_opts) if "timeout" in raw_opts else None
            if is_async and timeout is None and self._sandbox is None:
                # run_handler's plain case, without its coroutine: most jobs take it.
                result = await handler(job)  # type: ignore[arg-type]
                if result is not None and inspect.isawaitable(result):
                    result = await result
                return result
            return await run_handler(
                handler, job, self._executor, timeout, self._sandbox, self._threads, is_async,
            )
        except asyncio.CancelledError:
            if job.id not in self._abort_cancelled:
                raise
            task = asyncio.current_task()
            if task is not None and task.uncancel() > 0:
                raise  # close() cancelled us too: that one wins
            raise JobAbortedError(job.aborted or "aborted") from None
        finally:
            self._calling.discard(job.id)
            self._abort_cancelled.discard(job.id)

    def _abort_heard(self, job_id: str, reason: str) -> None:
        job = self._jobs.get(job_id)
        if job is None:
            self._unclaimed_aborts[job_id] = (reason, time.monotonic())
            while len(self._unclaimed_aborts) > _UNCLAIMED_ABORTS:
                self._unclaimed_aborts.popitem(last=False)
            return
        first = job.aborted is None
        job.mark_aborted(reason)
        if not first or job_id not in self._calling or job_id in self._abort_cancelled:
            return
        # Threads cannot be interrupted: a plain def handler only gets the flag.
        handler = find_handler(self._processors, job.name)
        if self._sandbox is not None or self._async_handlers[id(handler)]:
            task = self._active.get(job_id)
            if task is not None:
                self._abort_cancelled.add(job_id)
                task.cancel()

    async def _recheck_aborts(self) -> None:
        """After (re)subscribing: abort messages may have been missed, so read the flags."""
        ids = list(self._jobs)
        if not ids:
            return
        keys = self.queue.keys
        async with self.queue.client.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hget(keys.job(job_id), wire.ABORT_FIELD)
            flags = await pipe.execute()
        for job_id, flag in zip(ids, flags, strict=True):
            if flag is not None:
                self._abort_heard(job_id, flag.decode("utf-8", "replace"))

    async def _clear_abort_flag(self, job: Job[Any]) -> None:
        # So that a later job.retry() runs the job again instead of failing it at fetch.
        try:
            await self.queue.client.hdel(self.queue.keys.job(job.id), wire.ABORT_FIELD)
        except RedisError as exc:
            self._error(exc)

    async def _after(self, job: Job[Any], result: Any, error: BaseException | None) -> None:
        if self._after_process is None:
            return
        final = error is None or job.finished_on is not None
        try:
            await call_hook(self._after_process, job, JobOutcome(result, error, final))
        except Exception as exc:  # the outcome is stored; a hook cannot change it
            self._error(exc)

    async def _chain_repeat(self, job: Job[Any], raw: dict[bytes, bytes]) -> None:
        """Schedule the next instance as the current one starts (Bull's chaining)."""
        data_json = raw.get(b"data", b"null").decode("utf-8", "replace")
        try:
            await _scheduling.chain_from(self.queue, job.name, data_json, job.raw_opts, now_ms())
        except (RedisError, PyQueueError) as exc:
            # The instance still runs; a missed chain only ends the schedule
            # until the next add(..., repeat=...) declares it again.
            self._error(exc)

    # --- callbacks --------------------------------------------------------------

    def _error(self, exc: BaseException) -> None:
        log.warning("worker error: %s", exc)
        self.emit("error", exc)

    def _error_threadsafe(self, exc: BaseException) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._error, exc)

    def _lock_lost_threadsafe(self, job_id: str) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._lock_lost, job_id)

    def _lock_lost(self, job_id: str) -> None:
        log.warning("lost the lock of job %s; its result will not be saved", job_id)
        job = self._jobs.get(job_id)
        if job is not None:
            self.emit("lock-lost", job)

    def _extend_failed_threadsafe(self, job_id: str, exc: BaseException) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._extend_failed, job_id, exc)

    def _extend_failed(self, job_id: str, exc: BaseException) -> None:
        # Bull's meaning: Redis failed while extending (the lock may still be ours).
        job = self._jobs.get(job_id)
        if job is not None:
            self.emit("lock-extension-failed", job, exc)

    def _stalled_result(self, failed: list[str], stalled: list[str]) -> None:
        for job_id in stalled:
            self.emit("stalled", job_id)
        for job_id in failed:
            self.emit("stalled-failed", job_id)


async def _cancel_all(tasks: list[asyncio.Task[None]], timeout: float = 5.0) -> None:
    """Cancel tasks and wait for them, cancelling again if a cancellation was lost.

    A cancel that lands in the first steps of a redis-py command can be
    swallowed, so one ``cancel()`` is not always enough.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    pending = {t for t in tasks if not t.done()}
    while pending and loop.time() < deadline:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.1)
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved, so asyncio does not log it at exit
    if pending:
        log.warning("%d background task(s) did not stop", len(pending))


def _fields(opts: WorkerOptions) -> dict[str, Any]:
    return {name: getattr(opts, name) for name in opts.__dataclass_fields__}


class _Done:
    """An awaitable that is already done: what a finished synchronous call returns."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield  # makes this a generator


_DONE = _Done()
