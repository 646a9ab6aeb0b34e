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
import logging
import uuid
from collections.abc import Awaitable, Generator, Mapping
from concurrent.futures import Future
from datetime import timedelta
from types import TracebackType
from typing import Any, Self, cast

import redis.asyncio as aioredis
from redis.exceptions import BusyLoadingError, RedisError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from typing_extensions import TypeVar

from pyqueue import _durations
from pyqueue._emitter import EventEmitter
from pyqueue._engine.bullmq_engine import BullMQEngine
from pyqueue._engine.context import WorkerContext
from pyqueue._engine.fetching import Fetcher
from pyqueue._engine.finishing import Finisher
from pyqueue._engine.locks import LockRenewer, sync_release, sync_renewer
from pyqueue._engine.maintenance import AbortListener, DelayedPromoter, StalledChecker
from pyqueue._engine.outage import OutageLog
from pyqueue._engine.presence import Presence
from pyqueue._engine.processing import (
    normalise_processors,
)
from pyqueue._handlers import Processor, resolve_models
from pyqueue._local_events import LocalEvents
from pyqueue._protocol.bull import wire
from pyqueue._protocol.bull.scripts import DROPPED
from pyqueue._queue_bullmq import BullMQQueue
from pyqueue._worker_jobs import JobRunner
from pyqueue.errors import (
    InvalidOptionsError,
    JobNotFound,
    QueueClosedError,
    ScriptError,
    TransientServerError,
)
from pyqueue.hooks import (
    AfterProcess,
    BeforeProcess,
    Context,
    LifecycleHook,
    call_hook,
)
from pyqueue.job import Job, JobOwner
from pyqueue.options import BackoffStrategy, JobOptions, WorkerOptions, check_backoff_type
from pyqueue.queue import Queue

log = logging.getLogger("pyqueue.worker")
_ABORT_FIELD = wire.ABORT_FIELD.encode()
_UNCLAIMED_ABORTS = 256
_UNCLAIMED_FOR = 5.0  # seconds
# How long start() gives Redis to answer (a black-holed host never refuses).
_REACH_TIMEOUT = 10.0

# The payload type of the queue's jobs, from the queue or the handler's annotation.
DataT = TypeVar("DataT", default=Any)


class Worker(LocalEvents[DataT]):
    """Processes jobs of one queue.

    Args:
        queue: Queue name, or a :class:`Queue` to process. A given Queue is shared,
            not copied: the worker's events fire on it (``queue.on("completed", ...)``
            works as in Bull, and so does ``worker.on``), and :meth:`close` leaves it
            open for its owner to close (after the worker).
        processor: ``handler(job)`` for every job name, or ``{name: handler}``
            with ``"*"`` as the fallback. ``async def`` handlers get a :class:`Job`
            and run on the event loop; plain ``def`` handlers get a
            :class:`~pyqueue.JobHandle` and run in a thread pool of ``concurrency``
            threads. The worker is typed from the handler (``Worker[Email]`` for a
            handler taking ``Job[Email]``).
        redis_url: As for :class:`Queue` (when ``queue`` is a name).
        connection: As for :class:`Queue` (when ``queue`` is a name).
        prefix: As for :class:`Queue` (when ``queue`` is a name).
        options: :class:`WorkerOptions`; ``concurrency`` may be given directly.
        backoff_strategies: Custom backoff functions by ``backoff.type`` (with the
            queue's own ``backoff_strategies``; a given Queue learns these, so its
            ``add`` accepts their types).
        model: The pydantic model of the jobs' data. By default each handler's
            annotation names it (``Job[Email]``, ``JobHandle[Email]``), else the
            queue's model: the data is validated into it before the handler runs,
            and a payload that does not validate fails the job without retries. A
            model that contradicts a handler's annotation is refused.
        default_job_options: The queue's processing policy (attempts, backoff,
            timeout, removal, stack trace limit) for jobs whose options lack it:
            Bull's ``defaultJobOptions``, applied here as each job starts. What the
            producer set always wins; the stored job is not changed, so a Node
            worker honours only what is in the job's options. A worker made from a
            queue name also gives them to its queue's adds.
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

    Raises:
        InvalidOptionsError: a handler that is not callable, a model that contradicts
            an annotation, an unknown backoff type in the default job options.

    A handler's failure is anything it raises but ``KeyboardInterrupt`` and
    ``SystemExit`` (which stop the process): a ``CancelledError`` or another
    ``BaseException`` is a failed attempt too, unless the worker itself cancelled
    the handler (an abort, or :meth:`close` past its grace).

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
        processor: Processor[DataT],
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
        model: type[DataT] | None = None,
        default_job_options: JobOptions | None = None,
        protocol: str | None = None,
    ) -> None:
        if options is not None and not isinstance(options, WorkerOptions):
            raise InvalidOptionsError(f"options: expected WorkerOptions, got {options!r}")
        opts = options or WorkerOptions()
        if concurrency is not None:
            opts = WorkerOptions(**{**_fields(opts), "concurrency": concurrency})
        self.options = opts
        self.context: Context = {} if context is None else context
        self._on_startup = on_startup
        self._on_shutdown = on_shutdown
        processors = normalise_processors(processor)
        given_queue = queue if isinstance(queue, Queue) else None
        if given_queue is not None and protocol is not None:
            raise InvalidOptionsError("protocol: set it on the Queue given to the Worker")
        # The model each handler's data is validated into, by handler id.
        models = resolve_models(
            processors, model, None if given_queue is None else given_queue.model
        )
        strategies = _strategies(given_queue, backoff_strategies, default_job_options)
        if given_queue is not None:
            # The same object produces too: its adds now accept the worker's types.
            given_queue._strategies.update(strategies)
        # A Queue handed in is used as it is, not copied: it is the one emitter, so
        # Bull-style ``queue.on("completed", ...)`` hears this worker, and its jobs'
        # ``job.queue`` is that object. Its owner closes it, after the worker.
        self._owns_queue = given_queue is None
        if given_queue is not None:
            self.queue: Queue[DataT] = given_queue
        else:
            distinct = set(models.values())
            self.queue = Queue(
                cast("str", queue), redis_url, connection=connection, prefix=prefix,
                model=cast("type[DataT] | None", distinct.pop() if len(distinct) == 1 else None),
                default_job_options=default_job_options, backoff_strategies=strategies,
                protocol=protocol,
            )
        self.token = str(uuid.uuid4())
        # Kept for BullMQ mode's engine, chosen at start (see _start_bullmq).
        self._processors = processors
        self._models = models
        self._strategies = strategies
        self._engine: BullMQEngine | None = None
        # A read timeout past the BLMOVE wait, so a silent socket cannot stall
        # fetching for ever; none on pub/sub, which is idle by nature and is
        # checked by PING instead (pyqueue._protocol.pubsub).
        self._bclient = self.queue.connection_spec.async_client(
            max_connections=1, socket_timeout=opts.drain_delay + 10
        )
        self._pubsub_client = self.queue.connection_spec.async_client(socket_timeout=None)
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = asyncio.Event()
        self._running = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._renewer: LockRenewer | None = None
        self._close_renewer_client: Any = None
        self._presence: Presence | None = None
        # What the fetch loop, the finisher and the runner share about this worker.
        self._outage = OutageLog(log, f"queue {self.queue.name}")
        self._ctx = WorkerContext(
            self.queue, self.token, opts, self.queue.emit, self._error, healthy=self._outage.ok
        )
        self._runner = JobRunner(
            self.queue, self.token, processors, models,
            {} if default_job_options is None else wire.policy_to_wire(default_job_options),
            concurrency=opts.concurrency, sandbox=opts.sandbox, context=self.context,
            finisher=Finisher(self._ctx, strategies), before_process=before_process,
            after_process=after_process, report=self._error,
        )
        self._fetcher = Fetcher(self._ctx, self._bclient, self._runner.process)
        self.queue.scripts.on_dropped = self._dropped

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
        """Start fetching and the background duties. Returns once they run.

        Raises:
            QueueClosedError: the worker was closed (a worker starts once; make a new
                one); ``on_startup`` does not run again.
        """
        if self._ctx.closing:
            raise QueueClosedError(
                f"the worker of queue {self.queue.name!r} is closed; make a new Worker"
            )
        if self._running:
            return
        await self._reach_redis()
        if not self.queue._format_known:
            await self.queue._resolve_format()  # raises ProtocolMismatchError
        if self._on_startup is not None:
            await call_hook(self._on_startup, self.context)
        self._running = True
        self._loop = asyncio.get_running_loop()
        if self.queue.format == "bullmq":  # once per worker: the engine is chosen here
            self._start_bullmq()
            return
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
        self._runner.renewer = self._renewer
        self._tasks.append(asyncio.create_task(self._heartbeat(), name="pyqueue-heartbeat"))
        # Listed by name among the queue's workers, and named in each job it starts.
        self._presence = Presence(
            self.queue.client, self.queue.keys, self.token, o.concurrency,
            lambda: list(self._runner.jobs), lambda: self._fetcher.client_id,
        )
        self._ctx.identity = self._presence.identity_json
        self._tasks.append(asyncio.create_task(self._presence.run(), name="pyqueue-presence"))
        if self._runner.sandbox is not None:
            await self._runner.sandbox.start()
        promoter = DelayedPromoter(
            self.queue.scripts, self._pubsub_client, self.queue.keys, self.token,
            o.guard_interval, self._error,
            silence_timeout=self.queue.connection_spec.read_timeout,
        )
        self._tasks.append(asyncio.create_task(promoter.run(), name="pyqueue-delayed"))
        aborts = AbortListener(
            self._pubsub_client, self.queue.keys, self._runner.abort_heard,
            self._runner.recheck_aborts,
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

    def _start_bullmq(self) -> None:
        """BullMQ mode: run :class:`BullMQEngine` instead of Bull's fetcher and duties."""
        o = self.options
        if o.sandbox:
            raise InvalidOptionsError("sandbox: not available in BullMQ mode yet")
        queue = cast("BullMQQueue[Any]", self.queue)
        self._engine = BullMQEngine(
            cast("JobOwner", queue), queue.protocol, self._bclient, token=self.token, options=o,
            processors=self._processors, models=self._models, strategies=self._strategies,
            context=self.context, report=self._error,
        )
        self._tasks = self._engine.start()  # the engine replaces its fetch task in place

    async def _close_bullmq(self, engine: BullMQEngine, grace: float) -> None:
        await engine.stop_fetching()
        if engine.chains:
            _, pending = await asyncio.wait(set(engine.chains), timeout=grace)
            if pending:
                unfinished = list(engine.active)
                for task in pending:
                    task.cancel()
                await asyncio.wait(pending, timeout=5)
                await engine.release(unfinished)
        await _cancel_all(self._tasks)
        engine.shutdown_threads()
        if self._on_shutdown is not None:
            try:
                await call_hook(self._on_shutdown, self.context)
            except Exception as exc:
                self._error(exc)
        await self._bclient.aclose()
        await self._pubsub_client.aclose()
        if self._owns_queue:
            await self.queue.close()
        self._closed.set()

    async def _reach_redis(self) -> None:
        """Fail fast: a worker whose Redis is unreachable at start raises, once.

        Later outages are retried for ever (see :mod:`pyqueue._engine.outage`);
        at start a wrong URL is far likelier than an outage, and a worker that
        starts anyway only logs.
        """
        where = self.queue.connection_spec.describe()
        try:
            async with asyncio.timeout(_REACH_TIMEOUT):
                await self.queue.client.ping()
        except (TransientServerError, BusyLoadingError):
            return  # it answered (LOADING...): there, only not ready; the loops retry
        except (RedisConnectionError, RedisTimeoutError, OSError, TimeoutError) as exc:
            detail = str(exc) or type(exc).__name__
            raise RedisConnectionError(f"cannot reach Redis at {where}: {detail}") from exc

    @property
    def active_jobs(self) -> list[Job[Any]]:
        """The jobs whose attempt this worker runs now (a copy; for gauges and listings)."""
        if self._engine is not None:
            return [job for _, job in self._engine.active.values()]
        return list(self._runner.jobs.values())

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

    async def close(self, timeout: float | timedelta | None = None) -> None:
        """Stop fetching, let active jobs finish, release the rest, close connections.

        Args:
            timeout: Seconds (or a timedelta) to wait for active jobs (default
                ``shutdown_grace``).
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
        grace = self.options.shutdown_grace if timeout is None else _durations.seconds(
            "timeout", timeout
        )
        if self._engine is not None:
            await self._close_bullmq(self._engine, grace)
            return
        await self._fetcher.stop()
        running: dict[str, Future[Any]] = {}
        if self._fetcher.chains:
            _, pending = await asyncio.wait(set(self._fetcher.chains), timeout=grace)
            if pending:
                running = await self._release_unfinished(pending)
        await _cancel_all(self._tasks)
        if self._presence is not None:
            await self._presence.leave()
        self._runner.executor.shutdown(wait=False, cancel_futures=True)
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
        if self._runner.sandbox is not None:
            await self._runner.sandbox.close()
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
        ids = list(self._runner.active)
        threads = self._runner.threads
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=5)
        # Calls queued behind busy threads never start: their jobs are free to go.
        for call in list(threads.values()):
            call.cancel()
        running = {i: call for i, call in list(threads.items()) if not call.done()}
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

    async def pause(self, timeout: float | timedelta | None = None) -> None:
        """Stop taking new jobs in this worker only, and wait for active ones.

        Args:
            timeout: Seconds (or a timedelta) to wait for active jobs; None waits
                without limit. The worker stays paused either way.

        Raises:
            TimeoutError: ``timeout`` passed before the active jobs finished.
        """
        self._ctx.resumed.clear()
        self.emit("paused")
        if self._engine is not None:
            await self._engine.pause()
            await self.when_current_jobs_finished(timeout)
            return
        # A fetch already blocked on the wait list would take the next job.
        await self._fetcher.unblock()
        await self.when_current_jobs_finished(timeout)

    def resume(self) -> Awaitable[None]:
        """Take new jobs again. Done on return; awaitable like :meth:`pause`.

        ``await worker.resume()`` and a bare ``worker.resume()`` (it used to be a
        plain method) both work.
        """
        self._ctx.resumed.set()
        if self._engine is not None:
            self._engine.resumed.set()
        self.emit("resumed")
        return _DONE

    async def when_current_jobs_finished(self, timeout: float | timedelta | None = None) -> None:
        """Wait until every job this worker is running has finished.

        Args:
            timeout: Seconds (or a timedelta) to wait; None waits without limit.

        Raises:
            TimeoutError: ``timeout`` passed first (the jobs run on).
        """
        chains = self._fetcher.chains if self._engine is None else self._engine.chains
        async with asyncio.timeout(_durations.timeout(timeout)):
            while chains:
                await asyncio.wait(set(chains))

    # --- callbacks --------------------------------------------------------------

    def _error(self, exc: BaseException) -> None:
        # Logged here once (an outage: once when lost, once when back); the
        # event fires every time, as in Bull.
        self._outage.error(exc)
        self.emit("error", exc)

    def _dropped(self, job_ids: list[str]) -> None:
        # Ids a fetch found in wait without a hash (and removed): one log line
        # and one error event each, which used to be nothing at all.
        for job_id in job_ids:
            message = DROPPED % (f"{self.queue.name}", job_id)
            self._error(JobNotFound(message, job_id=job_id, code=-1))

    def _error_threadsafe(self, exc: BaseException) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._error, exc)

    def _lock_lost_threadsafe(self, job_id: str) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._lock_lost, job_id)

    def _lock_lost(self, job_id: str) -> None:
        log.warning("lost the lock of job %s; its result will not be saved", job_id)
        job = self._runner.jobs.get(job_id)
        if job is not None:
            self.emit("lock-lost", job)

    def _extend_failed_threadsafe(self, job_id: str, exc: BaseException) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._extend_failed, job_id, exc)

    def _extend_failed(self, job_id: str, exc: BaseException) -> None:
        # Bull's meaning: Redis failed while extending (the lock may still be ours).
        job = self._runner.jobs.get(job_id)
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


def _strategies(
    queue: Queue[Any] | None,
    given: Mapping[str, BackoffStrategy] | None,
    default_job_options: JobOptions | None,
) -> dict[str, BackoffStrategy]:
    """The worker's backoff strategies (the queue's, then its own), checked.

    Raises:
        InvalidOptionsError: a strategy is not callable, or a default backoff type
            (the worker's or the queue's) is neither built in nor registered.
    """
    strategies = {**(queue.backoff_strategies if queue is not None else {}), **(given or {})}
    for name, strategy in strategies.items():
        if not callable(strategy):
            raise InvalidOptionsError(
                f"backoff_strategies[{name!r}]: must be callable, got {strategy!r}"
            )
    if default_job_options is not None and not isinstance(default_job_options, JobOptions):
        raise InvalidOptionsError(
            f"default_job_options: expected JobOptions, got {default_job_options!r}"
        )
    queue_defaults = queue.default_job_options if queue is not None else None
    for defaults in (default_job_options, queue_defaults):
        if defaults is not None:
            check_backoff_type(defaults.backoff, strategies)
    return strategies


class _Done:
    """An awaitable that is already done: what a finished synchronous call returns."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield  # makes this a generator


_DONE = _Done()
