"""The worker: fetch, dispatch, finish, and fetch the next job in the same call.

Shape of a running worker::

    fetch loop ──(free slot)──► BLMOVE/moveToActive ──► chain task
    chain task: run handler ─► moveToFinished(fetch next) ─► run next handler ─► ...
    lock renewer thread, delayed promoter, stalled checker run beside them.

One chain per concurrency slot at most. A chain ends when finishing finds no
next job; its slot then goes back to the fetch loop, which blocks on the wait
list (never polls).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any, Self

import redis.asyncio as aioredis
from pydantic import ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from pyqueue import _scheduling, _wire
from pyqueue._backoff import BackoffStrategy, UnknownBackoffStrategy, compute_delay
from pyqueue._locks import LockRenewer, sync_renewer
from pyqueue._maintenance import DelayedPromoter, StalledChecker
from pyqueue._processing import (
    Handler,
    error_message,
    error_stack,
    find_handler,
    normalise_processors,
    run_handler,
    trimmed_stacktrace,
)
from pyqueue._sandbox import SandboxPool
from pyqueue._scripts import delayed_score
from pyqueue.errors import PyQueueError, ScriptError, UnrecoverableError
from pyqueue.job import Job, now_ms
from pyqueue.options import WorkerOptions
from pyqueue.queue import Queue

log = logging.getLogger("pyqueue.worker")

JobReply = tuple[dict[bytes, bytes], str]
_TRANSIENT = (RedisConnectionError, RedisTimeoutError, OSError)


class Worker:
    """Processes jobs of one queue.

    Args:
        queue: Queue name, or a :class:`Queue` whose connection settings, prefix
            and model are reused.
        processor: ``handler(job)`` for every job name, or ``{name: handler}``
            with ``"*"`` as the fallback. Handlers are ``async def`` or plain
            functions (run in a thread pool of ``concurrency`` threads).
        redis_url, connection, prefix: As for :class:`Queue` (when ``queue`` is a name).
        options: :class:`WorkerOptions`; ``concurrency`` may be given directly.
        backoff_strategies: Custom backoff functions by ``backoff.type``.

    Local events: ``active(job)``, ``completed(job, result)``, ``failed(job, exc)``
    after every failed attempt (``job.finished_on`` is set only when the failure
    was final and no retry follows), ``progress(job, value)``, ``drained()``,
    ``stalled(job_id)``, ``paused()``, ``resumed()``, ``error(exc)``.
    """

    def __init__(
        self,
        queue: str | Queue[Any],
        processor: Handler | Mapping[str, Handler],
        *,
        redis_url: str | None = None,
        connection: aioredis.Redis | None = None,
        prefix: str = "bull",
        options: WorkerOptions | None = None,
        concurrency: int | None = None,
        backoff_strategies: Mapping[str, BackoffStrategy] | None = None,
    ) -> None:
        opts = options or WorkerOptions()
        if concurrency is not None:
            opts = WorkerOptions(**{**_fields(opts), "concurrency": concurrency})
        self.options = opts
        self._processors = normalise_processors(processor)
        handlers = self._processors.values()
        self._sandbox = SandboxPool(opts.concurrency, handlers=handlers) if opts.sandbox else None
        if isinstance(queue, Queue):
            self.queue: Queue[Any] = Queue(
                queue.name, connection=queue.client, prefix=queue.prefix, model=queue.model
            )
        else:
            self.queue = Queue(queue, redis_url, connection=connection, prefix=prefix)
        self.token = str(uuid.uuid4())
        self.queue.token = self.token
        self._strategies = dict(backoff_strategies or {})
        self._executor = ThreadPoolExecutor(opts.concurrency, thread_name_prefix="pyqueue-job")
        # A read timeout past the BLMOVE wait, so a silent socket cannot stall
        # fetching for ever; none on pub/sub, which is idle by nature (the delayed
        # promoter also wakes every guard_interval without it).
        self._bclient = self.queue.connection_spec.async_client(
            max_connections=1, socket_timeout=opts.drain_delay + 10
        )
        self._bclient_id: int | None = None
        self._pubsub_client = self.queue.connection_spec.async_client(socket_timeout=None)
        self._slots = asyncio.Semaphore(opts.concurrency)
        self._active: dict[str, asyncio.Task[Any]] = {}
        self._chains: set[asyncio.Task[None]] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._drained = True
        self._closing = False
        self._closed = asyncio.Event()
        self._running = False
        self._resumed = asyncio.Event()
        self._resumed.set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._renewer: LockRenewer | None = None
        self._close_renewer_client: Any = None
        self._fetching = False

    # --- events (delegated to the queue so jobs can emit too) ----------------

    def on(self, event: str, listener: Any) -> Any:
        """Register a listener for a local event; see :class:`pyqueue.EventEmitter`."""
        return self.queue.on(event, listener)

    def events(self, *names: str) -> Any:
        """Async iterator over local events."""
        return self.queue.events(*names)

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
        )
        self._renewer.start()
        self._tasks.append(asyncio.create_task(self._heartbeat(), name="pyqueue-heartbeat"))
        if self._sandbox is not None:
            await self._sandbox.start()
        promoter = DelayedPromoter(
            self.queue.scripts, self._pubsub_client, self.queue.keys, self.token,
            o.guard_interval, self._error,
            silence_timeout=self.queue.connection_spec.read_timeout,
        )
        self._tasks.append(asyncio.create_task(promoter.run(), name="pyqueue-delayed"))
        if o.stalled_interval > 0:
            checker = StalledChecker(
                self.queue.scripts, o.stalled_interval, o.max_stalled_count,
                self._stalled_result, self._error,
            )
            self._tasks.append(asyncio.create_task(checker.run(), name="pyqueue-stalled"))
        self._tasks.append(asyncio.create_task(self._fetch_loop(), name="pyqueue-fetch"))

    async def run(self) -> None:
        """Start, then wait until :meth:`close` is called (e.g. from a signal handler)."""
        await self.start()
        await self._closed.wait()

    async def close(self, timeout: float | None = None) -> None:
        """Stop fetching, let active jobs finish, release the rest, close connections.

        Args:
            timeout: Seconds to wait for active jobs (default ``shutdown_grace``).
                Jobs still running then are cancelled and moved back to wait, so
                another worker runs them; nothing is lost.
        """
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        grace = self.options.shutdown_grace if timeout is None else timeout
        await self._stop_fetching()
        if self._chains:
            _, pending = await asyncio.wait(set(self._chains), timeout=grace)
            if pending:
                await self._release_unfinished(pending)
        await _cancel_all(self._tasks)
        if self._renewer is not None:
            await asyncio.to_thread(self._renewer.stop)
        if self._close_renewer_client is not None:
            self._close_renewer_client()
        self._executor.shutdown(wait=False, cancel_futures=True)
        if self._sandbox is not None:
            await self._sandbox.close()
        await self._bclient.aclose()
        await self._pubsub_client.aclose()
        await self.queue.close()
        self._closed.set()

    async def _unblock_fetch(self) -> None:
        if self._fetching and self._bclient_id is not None:
            # Wake a blocked BLMOVE cleanly instead of cancelling it mid-reply,
            # which could strand a moved id in active without a lock.
            with contextlib.suppress(RedisError, OSError):
                await self.queue.client.client_unblock(self._bclient_id)

    async def _stop_fetching(self) -> None:
        self._resumed.set()
        await self._unblock_fetch()
        fetch = self._tasks[-1] if self._tasks else None
        if fetch is not None:
            try:
                await asyncio.wait_for(asyncio.shield(fetch), 2.0)
            except TimeoutError:
                fetch.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await fetch

    async def _release_unfinished(self, pending: set[asyncio.Task[None]]) -> None:
        ids = list(self._active)
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=5)
        for job_id in ids:
            with contextlib.suppress(ScriptError, RedisError):
                # Back to the front of wait without counting an attempt.
                await self.queue.scripts.retry_job(job_id, token=self.token, lifo=True)

    async def _heartbeat(self) -> None:
        # Tells the lock renewer the loop runs; a late beat means a handler blocks it.
        assert self._renewer is not None
        while True:
            self._renewer.beat()
            await asyncio.sleep(self._renewer.beat_every)

    # --- local pause ------------------------------------------------------------

    async def pause(self) -> None:
        """Stop taking new jobs in this worker only, and wait for active ones."""
        self._resumed.clear()
        self.emit("paused")
        # A fetch already blocked on the wait list would take the next job.
        await self._unblock_fetch()
        await self.when_current_jobs_finished()

    def resume(self) -> None:
        self._resumed.set()
        self.emit("resumed")

    async def when_current_jobs_finished(self) -> None:
        """Wait until every job this worker is running has finished."""
        while self._chains:
            await asyncio.wait(set(self._chains))

    # --- fetching ---------------------------------------------------------------

    async def _fetch_loop(self) -> None:
        failures = 0
        while not self._closing:
            await self._slots.acquire()
            await self._resumed.wait()
            if self._closing:
                self._slots.release()
                break
            try:
                reply = await self._fetch()
                failures = 0
            except RedisError as exc:
                self._slots.release()
                self._bclient_id = None
                self._error(exc)
                failures += 1
                delay = min(self.options.retry_process_delay, 50 * 2 ** min(failures, 10))
                await asyncio.sleep(delay / 1000)
                continue
            if reply is None:
                self._slots.release()
                continue
            chain = asyncio.create_task(self._run_chain(reply))
            self._chains.add(chain)
            chain.add_done_callback(self._chains.discard)

    async def _fetch(self) -> JobReply | None:
        o = self.options
        limiter = o.limiter
        lim: dict[str, Any] = {}
        if limiter is not None:
            lim = {"limiter_max": limiter.max, "limiter_duration": limiter.duration,
                   "bounce_back": limiter.bounce_back, "group_key": limiter.group_key is not None}
        job_id = ""
        if self._drained:
            if self._bclient_id is None:
                self._bclient_id = int(await self._bclient.client_id())
            self._fetching = True
            try:
                moved = await self._bclient.blmove(
                    self.queue.keys.wait, self.queue.keys.active,
                    o.drain_delay, "RIGHT", "LEFT",  # type: ignore[arg-type]  # Redis takes float seconds
                )
            finally:
                self._fetching = False
            if moved is None:
                return None
            job_id = moved.decode() if isinstance(moved, bytes) else str(moved)
        reply = await self.queue.scripts.move_to_active(
            token=self.token, lock_duration=o.lock_duration, now=now_ms(), job_id=job_id, **lim
        )
        if reply is None:
            if not self._drained:
                self._drained = True
                self.emit("drained")
            return None
        self._drained = False
        return reply

    # --- processing -------------------------------------------------------------

    async def _run_chain(self, reply: JobReply | None) -> None:
        try:
            while reply is not None:
                raw, job_id = reply
                reply = await self._process(job_id, raw)
        finally:
            self._slots.release()

    async def _process(self, job_id: str, raw: dict[bytes, bytes]) -> JobReply | None:
        job = self.queue.job_from_raw(job_id, raw)
        job.lock_token = self.token
        assert self._renewer is not None
        self._renewer.add(job_id)
        self._active[job_id] = asyncio.current_task()  # type: ignore[assignment]
        try:
            if "repeat" in job.raw_opts:
                await self._chain_repeat(job, raw)
            self.emit("active", job)
            try:
                result = await self._call(job)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await self._failed(job, exc)
                return None
            return await self._completed(job, result)
        finally:
            self._renewer.discard(job_id)
            self._active.pop(job_id, None)

    async def _chain_repeat(self, job: Job[Any], raw: dict[bytes, bytes]) -> None:
        """Schedule the next instance as the current one starts (Bull's chaining)."""
        data_json = raw.get(b"data", b"null").decode("utf-8", "replace")
        try:
            await _scheduling.chain_from(self.queue, job.name, data_json, job.raw_opts, now_ms())
        except (RedisError, PyQueueError) as exc:
            # The instance still runs; a missed chain only ends the schedule
            # until the next add(..., repeat=...) declares it again.
            self._error(exc)

    async def _call(self, job: Job[Any]) -> Any:
        record = job.record
        if record.data_error is not None:
            raise UnrecoverableError(record.data_error)
        if self.queue.model is not None:
            try:
                job.data = self.queue.decode_data(record.data)
            except ValidationError as exc:
                name = self.queue.model.__name__
                raise UnrecoverableError(f"invalid payload for {name}: {exc}") from None
        handler = find_handler(self._processors, job.name)
        timeout = _wire.timeout_of(job.raw_opts)
        return await run_handler(handler, job, self._executor, timeout, self._sandbox)

    def _fetch_next(self) -> bool:
        return not (self._closing or self.options.limiter or not self._resumed.is_set())

    async def _completed(self, job: Job[Any], result: Any) -> JobReply | None:
        try:
            result_json = _wire.encode_result(result)
        except TypeError as exc:
            await self._failed(job, exc)
            return None
        keep_count, keep_age = _wire.keep_on_complete(job.raw_opts)
        finished_on = now_ms()
        confirmed, reply = await self._finish(
            job,
            self.queue.scripts.move_to_completed,
            job.id,
            token=self.token,
            finished_on=finished_on,
            return_value=result_json,
            keep_count=keep_count,
            keep_age=keep_age,
            event_payload=_wire.completed_payload(job.id, result_json),
            fetch_next=self._fetch_next(),
            lock_duration=self.options.lock_duration,
            metrics_max_points=self.options.metrics_max_data_points,
        )
        if confirmed:
            self.emit("completed", job, result)
        return reply  # type: ignore[no-any-return]

    async def _failed(self, job: Job[Any], exc: BaseException) -> None:
        attempts_made = job.attempts_made + 1
        reason = error_message(exc)
        stack = _wire.dumps(
            trimmed_stacktrace(job.stacktrace, error_stack(exc), job.opts.stack_trace_limit)
        )
        job.record.attempts_made = attempts_made
        job.record.failed_reason = reason
        final = (
            isinstance(exc, UnrecoverableError) or job.discarded
            or attempts_made >= (job.opts.attempts or 1)
        )
        delay: float | None = None
        if not final:
            try:
                delay = await compute_delay(job.opts.backoff, attempts_made, exc, self._strategies)
            except UnknownBackoffStrategy as unknown:
                final, reason = True, str(unknown)
            else:
                final = delay == -1
        scripts = self.queue.scripts
        if final:
            keep_count, keep_age = _wire.keep_spec(job.opts.remove_on_fail)
            finished_on = now_ms()
            confirmed, _ = await self._finish(
                job, scripts.move_to_failed, job.id, token=self.token, finished_on=finished_on,
                failed_reason=reason, attempts_made=attempts_made, stacktrace=stack,
                keep_count=keep_count, keep_age=keep_age,
                event_payload=_wire.failed_payload(job.id, reason),
                metrics_max_points=self.options.metrics_max_data_points,
            )
            if confirmed:
                # Listeners of "failed" tell a final failure by finished_on.
                job.record.finished_on = finished_on
        elif not delay:
            confirmed, _ = await self._finish(
                job, scripts.retry_job, job.id, token=self.token, lifo=bool(job.opts.lifo),
                attempts_made=attempts_made, stacktrace=stack, failed_reason=reason,
            )
        else:
            confirmed, _ = await self._finish(
                job, scripts.move_to_delayed, job.id, token=self.token,
                score=delayed_score(now_ms() + delay, job.id),
                attempts_made=attempts_made, stacktrace=stack, failed_reason=reason,
            )
        if confirmed:
            self.emit("failed", job, exc)

    async def _finish(
        self, job: Job[Any], command: Any, *args: Any, **kwargs: Any
    ) -> tuple[bool, Any]:
        """Run a finishing script, retrying across connection drops while we hold the lock.

        Returns:
            ``(confirmed, reply)``: confirmed is True only when the script's own
            reply said it moved the job, so events fire only for real moves.

        A lost reply is safe to retry: if the first call went through, the retry
        sees the job gone from active (or our lock released) and we stop there.
        """
        deadline = time.monotonic() + self.options.lock_duration / 1000
        attempt = 0
        while True:
            try:
                return True, await command(*args, **kwargs)
            except _TRANSIENT as exc:
                attempt += 1
                if time.monotonic() > deadline:
                    self._error(exc)
                    return False, None
                await asyncio.sleep(min(0.05 * 2**attempt, 1.0))
            except ScriptError as exc:
                # After a retry, "not active" or "lock missing" most likely means
                # the first call went through; only a first-try refusal is an error.
                if attempt == 0:
                    self._error(exc)
                return False, None

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
        self.emit("lock-extension-failed", job_id)

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
