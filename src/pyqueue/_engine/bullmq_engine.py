"""A worker's engine in BullMQ mode: Node BullMQ's worker loop over ``QueueProtocol``.

Shape::

    fetch loop ──(free slot)──► moveToActive ──► chain task
    chain task: run handler ─► moveToFinished(fetch next) ─► run next handler ─► ...
    idle: BZPOPMIN on the marker (BullMQ wakes workers there), until the next delayed
    job is due; lock renewal (one extendLocks per pass) and the stalled check beside.

:class:`pyqueue.Worker` picks this engine once, at start, when its queue is a
BullMQ queue; every call here goes through the queue's protocol object, so the
per-job path never asks which format it speaks. Each attempt is locked with
its own token (``<worker token>:<n>``), as Node's worker does, so a late
finish of an attempt whose lock was lost cannot finish the next attempt.

Not here yet (docs/bullmq.md): sandboxed handlers, hooks, the job ``timeout``
(BullMQ has none), abort, the worker's ``default_job_options`` policy.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError
from redis.exceptions import RedisError

from pyqueue._engine.processing import (
    error_stack,
    find_handler,
    is_async_handler,
    run_handler,
    trimmed_stacktrace,
)
from pyqueue._protocol.bullmq import wire as mqwire
from pyqueue._protocol.bullmq.backoff import normalize
from pyqueue._protocol.interface import Attempt, Idle, JobReply, QueueProtocol, WorkerSpec
from pyqueue.errors import PyQueueError, UnrecoverableError, error_message
from pyqueue.job import Job, JobOwner, now_ms

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from pyqueue._engine.processing import Handler
    from pyqueue.options import BackoffStrategy, WorkerOptions

log = logging.getLogger("pyqueue.worker")

Next = JobReply | Idle | None


class _Deferred(UnrecoverableError):
    """A job the stalled check marked to fail (BullMQ's ``defa``): failed as it starts."""


class BullMQEngine:
    """Fetching, running and finishing one worker's jobs on a BullMQ queue.

    Args:
        queue: The worker's queue (a BullMQ one): emitter, model and connections.
        proto: Its protocol object.
        token: The worker's token; each attempt's lock token extends it.
        options: The worker's options (concurrency, locks, stalled check, drain delay).
        processors: Handlers by job name (``"*"``: any other name).
        models: The pydantic model each handler's data is validated into, by handler id.
        strategies: Custom backoff strategies by name.
        context: The dict handlers reach as ``job.context``.
        report: Called with every error that is not a job's own failure.
    """

    def __init__(
        self,
        queue: JobOwner,
        proto: QueueProtocol,
        bclient: aioredis.Redis,
        *,
        token: str,
        options: WorkerOptions,
        processors: Mapping[str, Handler],
        models: Mapping[int, type[BaseModel] | None],
        strategies: Mapping[str, BackoffStrategy],
        context: dict[str, Any],
        report: Callable[[BaseException], None],
    ) -> None:
        self._queue = queue
        self._proto = proto
        self._bclient = bclient
        self._token = token
        self._options = options
        self._processors = processors
        # Asked once per handler, not per job (inspect is slow).
        self._is_async = {id(h): is_async_handler(h) for h in processors.values()}
        self._models = models
        self._strategies = strategies
        self._context = context
        self._report = report
        self._emit = queue.emit
        limiter = options.limiter
        self._spec = WorkerSpec(
            lock_duration=options.lock_duration,
            limiter_max=None if limiter is None else limiter.max,
            limiter_duration=None if limiter is None else limiter.duration,
        )
        self._counter = itertools.count(1)
        self._slots = asyncio.Semaphore(options.concurrency)
        self._executor = ThreadPoolExecutor(options.concurrency,
                                            thread_name_prefix="pyqueue-bullmq")
        # Running attempts: id -> (lock token, job).
        self.active: dict[str, tuple[str, Job[Any]]] = {}
        self.chains: set[asyncio.Task[None]] = set()
        self.resumed = asyncio.Event()
        self.resumed.set()
        self.closing = False
        self._tasks: list[asyncio.Task[None]] = []
        self._fetch_task: asyncio.Task[None] | None = None
        # True while the fetch loop waits (for a slot, a wake-up or a resume): only
        # then may close() or pause() cancel it, never while a fetch is in flight.
        self._fetch_waiting = False
        self._drained = False
        # Whether the blocking connection carries BullMQ's worker name (CLIENT SETNAME,
        # which Node's getWorkers and bull-board read); a reconnection drops it.
        self._named = False

    def _next_token(self) -> str:
        return f"{self._token}:{next(self._counter)}"

    # --- lifecycle ------------------------------------------------------------

    def start(self) -> list[asyncio.Task[None]]:
        """Start the fetch loop and the background duties; returns their tasks."""
        self._fetch_task = asyncio.create_task(self._fetch_loop(), name="pyqueue-mq-fetch")
        self._tasks = [
            self._fetch_task,
            asyncio.create_task(self._renew_locks(), name="pyqueue-mq-locks"),
        ]
        if self._options.stalled_interval > 0:
            self._tasks.append(
                asyncio.create_task(self._check_stalled(), name="pyqueue-mq-stalled")
            )
        return self._tasks

    @property
    def tasks(self) -> list[asyncio.Task[None]]:
        return self._tasks

    async def stop_fetching(self) -> None:
        """Stop taking jobs; a fetch in flight still hands its job to a chain."""
        self.closing = True
        await self._interrupt_fetch()
        if self._fetch_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._fetch_task

    async def _interrupt_fetch(self) -> None:
        task = self._fetch_task
        if task is not None and not task.done() and self._fetch_waiting:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            if not self.closing:
                self._fetch_task = asyncio.create_task(self._fetch_loop(),
                                                       name="pyqueue-mq-fetch")
                self._tasks[0] = self._fetch_task

    async def release(self, job_ids: list[str]) -> None:
        """Give unfinished attempts back to wait, no attempt counted."""
        for job_id in job_ids:
            entry = self.active.get(job_id)
            if entry is None:
                continue
            with contextlib.suppress(PyQueueError, RedisError):
                await self._proto.release(job_id, token=entry[0])

    async def pause(self) -> None:
        """This worker only: take no new job until :meth:`resume`."""
        self.resumed.clear()
        await self._interrupt_fetch()

    def shutdown_threads(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    # --- fetching ---------------------------------------------------------------

    async def _name_connection(self) -> None:
        try:
            await self._proto.name_worker_connection(self._bclient)
        except (RedisError, OSError) as exc:
            self._report(exc)
            return
        self._named = True

    async def _fetch_loop(self) -> None:
        proto = self._proto
        await self._name_connection()
        while not self.closing:
            self._fetch_waiting = True
            await self.resumed.wait()
            await self._slots.acquire()
            self._fetch_waiting = False
            if self.closing:
                self._slots.release()
                return
            token = self._next_token()
            try:
                reply = await proto.move_to_active(token=token, worker=self._spec, now=now_ms())
            except (PyQueueError, RedisError, OSError) as exc:
                self._slots.release()
                self._report(exc)
                await self._pause_after_error()
                continue
            if reply is None or isinstance(reply, Idle):
                self._slots.release()
                await self._idle(reply)
                continue
            self._drained = False
            task = asyncio.create_task(self._chain(reply, token), name="pyqueue-mq-chain")
            self.chains.add(task)
            task.add_done_callback(self.chains.discard)

    async def _pause_after_error(self) -> None:
        self._fetch_waiting = True
        await asyncio.sleep(1.0)
        self._fetch_waiting = False

    async def _idle(self, reply: Idle | None) -> None:
        """Wait for work: the rate limiter's pause, or the marker until the next due time."""
        self._fetch_waiting = True
        try:
            if reply is not None and reply.rate_limited_ms:
                await asyncio.sleep(reply.rate_limited_ms / 1000)
                return
            if not self.chains and not self._drained:
                self._drained = True
                self._emit("drained")
            timeout = self._options.drain_delay
            if reply is not None and reply.next_due:
                timeout = min(timeout, max(reply.next_due - now_ms(), 0) / 1000)
            if timeout <= 0:
                return
            if not self._named:
                await self._name_connection()
            try:
                await self._proto.wait_for_job(self._bclient, timeout)
            except (RedisError, OSError) as exc:
                self._named = False  # the next connection is a new, unnamed one
                self._report(exc)
                await asyncio.sleep(1.0)
        finally:
            self._fetch_waiting = False

    # --- one slot's chain of jobs ------------------------------------------------

    async def _chain(self, reply: JobReply, token: str) -> None:
        """Run jobs one after another, each finish fetching the next, until none comes."""
        current: Next = reply
        try:
            while current is not None and not isinstance(current, Idle):
                raw, job_id = current
                next_token = self._next_token()
                current = await self._process(job_id, raw, token, next_token)
                token = next_token
        finally:
            self._slots.release()

    def _fetches(self) -> bool:
        return not self.closing and self.resumed.is_set()

    async def _process(self, job_id: str, raw: dict[bytes, bytes], token: str,
                       next_token: str) -> Next:
        proto = self._proto
        record = proto.decode_job(job_id, raw)
        job: Job[Any] = Job(self._queue, record, record.data)
        job.lock_token = token
        job.context = self._context
        self.active[job_id] = (token, job)
        try:
            # BullMQ's record type has it; read through getattr as the interface
            # types records as Bull's base class.
            scheduler = getattr(record, "repeat_job_key", None)
            if scheduler:
                # As Node's worker does when it starts a job scheduler's iteration.
                await proto.schedule_next(job_id, record.raw_opts, scheduler, now=now_ms())
            self._emit("active", job)
            try:
                result = await self._run(job)
            except (KeyboardInterrupt, SystemExit):
                raise
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise  # close() past its grace: the job is released
                return await self._failed(job, token, next_token, asyncio.CancelledError())
            except BaseException as exc:
                return await self._failed(job, token, next_token, exc)
            return await self._completed(job, token, next_token, result)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # Ours or Redis's, not the handler's: said, and the slot goes on; the
            # stalled check recovers the job if its finish was not stored.
            self._report(exc)
            return None
        finally:
            self.active.pop(job_id, None)

    async def _run(self, job: Job[Any]) -> Any:
        record = job.record
        deferred = getattr(record, "deferred_failure", None)
        if deferred:
            raise _Deferred(deferred)
        if record.data_error is not None:
            raise UnrecoverableError(record.data_error)
        handler = find_handler(self._processors, record.name)
        model = self._models.get(id(handler))
        if model is not None and not isinstance(job.data, model):
            try:
                job.data = model.model_validate(record.data)
            except ValidationError as exc:
                raise UnrecoverableError(f"data: invalid {model.__name__}: {exc}") from None
        return await run_handler(handler, job, self._executor, None,
                                 is_async=self._is_async.get(id(handler)))

    async def _completed(self, job: Job[Any], token: str, next_token: str, result: Any) -> Next:
        opts = job.record.raw_opts
        try:
            result_json = mqwire.encode_result(result)
        except Exception as exc:  # a value JSON cannot carry fails the attempt
            return await self._failed(job, token, next_token, exc)
        reply = await self._proto.complete(
            job.id, token=token, result_json=result_json, finished_on=now_ms(),
            keep=mqwire.keep_spec(opts.get("removeOnComplete")), worker=self._spec,
            fetch_next=self._fetches(), next_token=next_token,
            max_attempts=_int(opts.get("attempts")),
            has_dedup=job.record.debounce_id is not None,
        )
        job.record.return_value = result
        self._emit("completed", job, result)
        return reply

    async def _failed(self, job: Job[Any], token: str, next_token: str,
                      exc: BaseException) -> Next:
        record = job.record
        opts = record.raw_opts
        made = record.attempts_made + 1
        attempts = _int(opts.get("attempts"))
        limit = opts.get("stackTraceLimit")
        stack = trimmed_stacktrace(record.stacktrace, error_stack(exc),
                                   limit if isinstance(limit, int) else None)
        attempt = Attempt(made, error_message(exc), mqwire.dumps(stack))
        final = isinstance(exc, UnrecoverableError) or job.discarded or made >= attempts
        delay = 0.0
        if not final:
            found = await self._backoff(opts.get("backoff"), made, exc)
            if found is None or found < 0:
                final = True
            else:
                delay = found
        proto = self._proto
        fetch = self._fetches()
        reply: Next
        if final:
            reply = await proto.fail(
                job.id, attempt, token=token, finished_on=now_ms(),
                keep=mqwire.keep_spec(opts.get("removeOnFail")), worker=self._spec,
                max_attempts=attempts, fetch_next=fetch, next_token=next_token,
                has_dedup=record.debounce_id is not None,
            )
        else:
            reply = await proto.retry(
                job.id, attempt, token=token, delay=int(delay), lifo=bool(opts.get("lifo")),
                now=now_ms(), worker=self._spec, fetch_next=fetch, next_token=next_token,
            )
            if reply is None and fetch:
                # An immediate retry goes back to wait: fetch again, as Node does.
                reply = await proto.move_to_active(token=next_token, worker=self._spec,
                                                   now=now_ms())
        record.failed_reason = attempt.failed_reason
        record.attempts_made = made
        self._emit("failed", job, exc, final)
        return reply

    async def _backoff(self, stored: Any, made: int, exc: BaseException) -> float | None:
        """ms before the next attempt; None when the job must fail for good instead
        (an unknown strategy, which BullMQ fails the job for too)."""
        backoff = normalize(stored)
        if backoff is None:
            return 0.0
        builtin = self._proto.builtin_backoff(backoff, made)
        if builtin is not None:
            return float(builtin)
        custom = self._strategies.get(str(backoff.get("type")))
        if custom is None:
            self._report(PyQueueError(f"Unknown backoff strategy {backoff.get('type')}"))
            return None
        result = custom(made, exc, backoff.get("options"))
        if inspect.isawaitable(result):
            result = await result
        if result is None or isinstance(result, bool):
            return 0.0
        return float(result)

    # --- background duties -------------------------------------------------------

    async def _renew_locks(self) -> None:
        """Extend every running attempt's lock in one call, each renew interval."""
        o = self._options
        every = (o.lock_renew_time or o.lock_duration / 2) / 1000
        while True:
            await asyncio.sleep(every)
            if not self.active:
                continue
            entries = list(self.active.items())
            try:
                lost = await self._proto.extend_locks(
                    [i for i, _ in entries], [t for _, (t, _) in entries], o.lock_duration
                )
            except (PyQueueError, RedisError, OSError) as exc:
                self._report(exc)
                continue
            for job_id in lost:
                entry = self.active.get(job_id)
                if entry is not None:
                    log.warning("lost the lock of job %s; its result will not be saved", job_id)
                    self._emit("lock-lost", entry[1])

    async def _check_stalled(self) -> None:
        """BullMQ's stalled check, at start and every ``stalled_interval`` ms."""
        o = self._options
        while True:
            try:
                failed, stalled = await self._proto.check_stalled(
                    max_stalled_count=o.max_stalled_count, now=now_ms(),
                    interval=o.stalled_interval,
                )
            except (PyQueueError, RedisError, OSError) as exc:
                self._report(exc)
            else:
                for job_id in stalled:
                    self._emit("stalled", job_id)
                for job_id in failed:
                    self._emit("stalled-failed", job_id)
            await asyncio.sleep(o.stalled_interval / 1000)


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    return int(value)
