"""Running each job of a worker: from the fetched hash to its stored outcome.

:class:`JobRunner` is the per-job half of :class:`pyqueue.Worker` (which keeps the
lifecycle: start, close, pause, the background duties). For each job the fetch loop
hands it, the runner builds the :class:`~pyqueue.Job`, fills in the queue's policy,
validates the data into the handler's model, calls the handler (on the loop, in a
thread, or in a sandbox), and has the finisher store what came of it.

What counts as the handler's failure: anything it raises but ``KeyboardInterrupt`` and
``SystemExit``, a ``CancelledError`` too, unless the worker itself cancelled the
handler (an abort, or ``close()`` past its grace).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections import OrderedDict
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, cast

from pydantic import BaseModel, ValidationError
from redis.exceptions import RedisError

from pyqueue import _scheduling
from pyqueue._engine.finishing import Finisher
from pyqueue._engine.processing import Handler, find_handler, is_async_handler, run_handler
from pyqueue._engine.sandbox import SandboxPool
from pyqueue._handlers import AsyncHandler
from pyqueue._protocol.bull import wire
from pyqueue._protocol.bull.scripts import JobReply
from pyqueue.errors import JobAbortedError, PyQueueError, UnrecoverableError
from pyqueue.hooks import AfterProcess, BeforeProcess, Context, JobOutcome, call_hook
from pyqueue.job import Job, now_ms

if TYPE_CHECKING:
    from collections.abc import Callable

    from pyqueue._engine.locks import LockRenewer
    from pyqueue.queue import Queue

_ABORT_FIELD = wire.ABORT_FIELD.encode()
_UNCLAIMED_ABORTS = 256
_UNCLAIMED_FOR = 5.0  # seconds


class JobRunner:
    """Runs the jobs of one worker (see the module docstring).

    Args:
        queue: The worker's queue.
        token: The worker's lock token.
        processors: ``{job name: handler}`` (``"*"`` for every other name).
        models: The model each handler's data is validated into, by handler id.
        policy: Wire options filled into each job's opts that lack them.
        concurrency: From the worker's options: threads (and sandbox children).
        sandbox: From the worker's options: run handlers in child processes.
        context: What handlers reach as ``job.context``.
        finisher: Stores each attempt's outcome.
        before_process: The worker's hook before each attempt.
        after_process: The worker's hook after each attempt's outcome is stored.
        report: Reports an error of the worker's own (the ``error`` event).
    """

    def __init__(
        self, queue: Queue[Any], token: str, processors: dict[str, Handler],
        models: Mapping[int, type[BaseModel] | None], policy: Mapping[str, Any], *,
        concurrency: int, sandbox: bool, context: Context, finisher: Finisher,
        before_process: BeforeProcess | None, after_process: AfterProcess | None,
        report: Callable[[BaseException], None],
    ) -> None:
        self.queue = queue
        self.token = token
        self._processors = processors
        self._models = models
        self._policy = policy
        self.context = context
        self._finisher = finisher
        self._before_process = before_process
        self._after_process = after_process
        self._error = report
        # The queue's own emit, bound once: an emit per event would add a call.
        self._emit = queue.emit
        handlers = processors.values()
        # Asked per job otherwise; the handlers live as long as the worker, so do their ids.
        self._async_handlers = {id(h): is_async_handler(h) for h in handlers}
        # One async handler for every name, run in-process: what most workers have,
        # called by _call_abortable without a lookup per job.
        only = processors.get("*") if len(processors) == 1 else None
        self._sole_async = (
            only if only is not None and self._async_handlers[id(only)] and not sandbox
            else None
        )
        self.sandbox = SandboxPool(concurrency, handlers=handlers) if sandbox else None
        self.executor = ThreadPoolExecutor(concurrency, thread_name_prefix="pyqueue-job")
        # Set by the worker's start().
        self.renewer: LockRenewer | None = None
        self.active: dict[str, asyncio.Task[Any]] = {}
        self.jobs: dict[str, Job[Any]] = {}
        # Sync handler calls that have not returned, by job id (see Worker.close()).
        self.threads: dict[str, Future[Any]] = {}
        # Jobs whose handler is running now, and those of them cancelled by an abort.
        self.calling: set[str] = set()
        self.abort_cancelled: set[str] = set()
        # Aborts heard for jobs this worker does not run (yet): the message can
        # arrive before the reply that hands us the job. Most are other workers'.
        self.unclaimed_aborts: OrderedDict[str, tuple[str, float]] = OrderedDict()

    async def process(
        self, job_id: str, raw: dict[bytes, bytes], task: asyncio.Task[Any]
    ) -> JobReply | None:
        job = self.queue.job_from_raw(job_id, raw)
        job.lock_token = self.token
        job.context = self.context
        flagged = raw.get(_ABORT_FIELD)
        if flagged is not None:
            # Aborted while active before (a stall, or a worker that missed the message).
            job.mark_aborted(flagged.decode("utf-8", "replace"))
        if self.unclaimed_aborts:
            heard = self.unclaimed_aborts.pop(job_id, None)
            # Only just heard: an old entry may be for an attempt before a retry.
            if heard is not None and time.monotonic() - heard[1] < _UNCLAIMED_FOR:
                job.mark_aborted(heard[0])
        assert self.renewer is not None
        self.renewer.add(job_id)
        self.active[job_id] = task
        self.jobs[job_id] = job
        try:
            if "repeat" in job.raw_opts:
                await self._chain_repeat(job, raw)
            if self._policy:
                # After chaining: the next instance is stored as its producer made it.
                _fill_policy(job.record.raw_opts, self._policy)
            self._emit("active", job)
            try:
                job.raise_if_aborted()
                if self._before_process is not None:
                    await call_hook(self._before_process, job)
                result = await self._call_abortable(job)
                # A sync handler that ignored the flag, or an async one that
                # swallowed the cancellation: its result is dropped all the same.
                job.raise_if_aborted()
            except (KeyboardInterrupt, SystemExit):
                raise
            except asyncio.CancelledError as exc:
                if task.cancelling():
                    raise  # ours: close() past its grace releases the job
                # The handler's own (an inner task it awaited was cancelled, or it
                # raised one): a failed attempt like any other.
                await self._failed(job, exc)
                return None
            except BaseException as exc:
                await self._failed(job, exc)
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
            self.renewer.discard(job_id)
            self.active.pop(job_id, None)
            self.jobs.pop(job_id, None)

    async def _failed(self, job: Job[Any], exc: BaseException) -> None:
        """Record a failed attempt (an abort's flag wins over what the handler raised)."""
        aborted = job.aborted is not None and not job.timed_out
        if aborted and not isinstance(exc, JobAbortedError):
            exc = JobAbortedError(cast("str", job.aborted))
        await self._finisher.failed(job, exc)
        if aborted:
            await self._clear_abort_flag(job)
        await self._after(job, None, exc)

    async def _call_abortable(self, job: Job[Any]) -> Any:
        """Call the job's handler, turning an abort's cancellation into :class:`JobAbortedError`."""
        self.calling.add(job.id)
        try:
            record = job.record
            if record.data_error is not None:
                raise UnrecoverableError(record.data_error)
            sole = self._sole_async
            handler = sole if sole is not None else find_handler(self._processors, job.name)
            model = self._models[id(handler)]
            if model is not None:
                try:
                    job.data = model.model_validate(record.data)
                except ValidationError as exc:
                    raise UnrecoverableError(
                        f"invalid payload for {model.__name__}: {exc}"
                    ) from None
            raw_opts = record.raw_opts
            is_async = sole is not None or self._async_handlers[id(handler)]
            timeout = wire.timeout_of(raw_opts) if "timeout" in raw_opts else None
            if is_async and timeout is None and self.sandbox is None:
                # run_handler's plain case, without its coroutine: most jobs take it.
                result = await cast("AsyncHandler[Any]", handler)(job)
                if result is not None and inspect.isawaitable(result):
                    result = await result
                return result
            return await run_handler(
                handler, job, self.executor, timeout, self.sandbox, self.threads, is_async,
            )
        except asyncio.CancelledError:
            if job.id not in self.abort_cancelled:
                raise
            task = asyncio.current_task()
            if task is not None and task.uncancel() > 0:
                raise  # close() cancelled us too: that one wins
            raise JobAbortedError(job.aborted or "aborted") from None
        finally:
            self.calling.discard(job.id)
            self.abort_cancelled.discard(job.id)

    def abort_heard(self, job_id: str, reason: str) -> None:
        job = self.jobs.get(job_id)
        if job is None:
            self.unclaimed_aborts[job_id] = (reason, time.monotonic())
            while len(self.unclaimed_aborts) > _UNCLAIMED_ABORTS:
                self.unclaimed_aborts.popitem(last=False)
            return
        first = job.aborted is None
        job.mark_aborted(reason)
        if not first or job_id not in self.calling or job_id in self.abort_cancelled:
            return
        # Threads cannot be interrupted: a plain def handler only gets the flag.
        handler = find_handler(self._processors, job.name)
        if self.sandbox is not None or self._async_handlers[id(handler)]:
            task = self.active.get(job_id)
            if task is not None:
                self.abort_cancelled.add(job_id)
                task.cancel()

    async def recheck_aborts(self) -> None:
        """After (re)subscribing: abort messages may have been missed, so read the flags."""
        ids = list(self.jobs)
        if not ids:
            return
        keys = self.queue.keys
        async with self.queue.client.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hget(keys.job(job_id), wire.ABORT_FIELD)
            flags = await pipe.execute()
        for job_id, flag in zip(ids, flags, strict=True):
            if flag is not None:
                self.abort_heard(job_id, flag.decode("utf-8", "replace"))

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


def _fill_policy(raw_opts: dict[str, Any], policy: Mapping[str, Any]) -> None:
    """Add the policy's options a job's opts lack (in memory: Redis keeps what was added)."""
    for key, value in policy.items():
        if key not in raw_opts:
            raw_opts[key] = value
