"""Finishing a job: move it out of active once its handler returned or raised.

A result completes the job (and its finishing call may fetch the next one); an
error retries it now, parks it in ``delayed`` for its backoff, or fails it for
good. Each finishing script is retried across connection drops while the lock
can still be ours, and events fire only for moves the script confirmed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from pyqueue._engine.backoff import BackoffStrategy, UnknownBackoffStrategy, compute_delay
from pyqueue._engine.processing import error_stack, trimmed_stacktrace
from pyqueue._protocol.bull import wire
from pyqueue._protocol.bull.script_args import delayed_score
from pyqueue.errors import InvalidOptionsError, ScriptError, UnrecoverableError, error_message
from pyqueue.job import Job, now_ms
from pyqueue.options import JobOptions

if TYPE_CHECKING:
    from pyqueue._engine.context import WorkerContext
    from pyqueue._protocol.bull.scripts import JobReply

_TRANSIENT = (RedisConnectionError, RedisTimeoutError, OSError)
# What a finishing call can raise that _finish settles: retried, or refused for good.
_FAILURES = (*_TRANSIENT, ResponseError, ScriptError)


class Finisher:
    """Records the outcome of each attempt of a worker's jobs.

    Args:
        ctx: The worker's context (scripts, token, options, events).
        strategies: Custom backoff functions by ``backoff.type``.
    """

    def __init__(self, ctx: WorkerContext, strategies: Mapping[str, BackoffStrategy]) -> None:
        self._ctx = ctx
        self._scripts = ctx.scripts
        self._token = ctx.token
        self._options = ctx.options
        self._strategies = strategies
        self._emit = ctx.emit
        self._on_error = ctx.report

    async def completed(
        self, job: Job[Any], result: Any
    ) -> tuple[JobReply | None, BaseException | None]:
        """Complete an attempt.

        Returns:
            ``(next job, None)``, the next job being set when the finishing call
            fetched one; or ``(None, error)`` when the result or the options could
            not be stored, and the attempt was failed with that error instead.
        """
        try:
            result_json = wire.encode_result(result)
        except TypeError as exc:
            await self.failed(job, exc)
            return None, exc
        try:
            keep_count, keep_age = wire.keep_on_complete(job.raw_opts)
        except InvalidOptionsError as bad:
            await self.failed(job, bad)
            return None, bad
        job_id = job.id
        finished_on = now_ms()
        payload = wire.completed_payload(job_id, result_json)
        fetch_next = self._ctx.may_fetch_next()
        check_debounce = job.debounce_id is not None
        options = self._options

        def send() -> Awaitable[JobReply | None]:
            return self._scripts.move_to_completed(
                job_id, token=self._token, finished_on=finished_on, return_value=result_json,
                keep_count=keep_count, keep_age=keep_age, event_payload=payload,
                fetch_next=fetch_next, lock_duration=options.lock_duration,
                metrics_max_points=options.metrics_max_data_points,
                check_debounce=check_debounce,
            )

        # The first try is made here, the retries by _finish: one coroutine less per job.
        try:
            reply = await send()
        except _FAILURES as exc:
            confirmed, reply = await self._finish(send, exc)
            if not confirmed:
                return reply, None
        self._emit("completed", job, result)
        return reply, None

    async def failed(self, job: Job[Any], exc: BaseException) -> None:
        """Record a failed attempt: retry now, delay for the backoff, or fail for good."""
        attempts_made = job.attempts_made + 1
        reason = error_message(exc)
        job.record.attempts_made = attempts_made
        try:
            opts = job.opts
            keep = wire.keep_spec(opts.remove_on_fail)
        except InvalidOptionsError as bad:
            # Stored by another client, or edited: nothing can be read from the
            # options, so this attempt is the last and the job is kept.
            opts, keep, exc = JobOptions(), (-1, None), bad
        if isinstance(exc, InvalidOptionsError):
            self._on_error(exc)
            reason = f"invalid job options: {error_message(exc)}"
        stack = wire.dumps(
            trimmed_stacktrace(job.stacktrace, error_stack(exc), opts.stack_trace_limit)
        )
        final = (
            isinstance(exc, (UnrecoverableError, InvalidOptionsError)) or job.discarded
            or attempts_made >= (opts.attempts or 1)
        )
        delay: float | None = None
        if not final:
            try:
                delay = await compute_delay(opts.backoff, attempts_made, exc, self._strategies)
            except UnknownBackoffStrategy as unknown:
                final, reason = True, str(unknown)
            except Exception as broken:
                # A user's strategy raised or returned nonsense: retrying on a
                # guess could loop for ever, so the job fails, saying why.
                self._on_error(broken)
                kind = opts.backoff.type if opts.backoff is not None else ""
                final, reason = True, f"backoff strategy {kind!r} failed: {error_message(broken)}"
            else:
                final = delay == -1
        job.record.failed_reason = reason
        scripts = self._scripts
        if final:
            keep_count, keep_age = keep
            finished_on = now_ms()
            confirmed, _ = await self._finish(
                lambda: scripts.move_to_failed(
                    job.id, token=self._token, finished_on=finished_on, failed_reason=reason,
                    attempts_made=attempts_made, stacktrace=stack, keep_count=keep_count,
                    keep_age=keep_age, event_payload=wire.failed_payload(job.id, reason),
                    metrics_max_points=self._options.metrics_max_data_points,
                    check_debounce=job.debounce_id is not None,
                )
            )
            if confirmed:
                # Listeners of "failed" tell a final failure by finished_on.
                job.record.finished_on = finished_on
        elif not delay:
            confirmed, _ = await self._finish(
                lambda: scripts.retry_job(
                    job.id, token=self._token, lifo=bool(opts.lifo),
                    attempts_made=attempts_made, stacktrace=stack, failed_reason=reason,
                )
            )
        else:
            score = delayed_score(now_ms() + delay, job.id)
            confirmed, _ = await self._finish(
                lambda: scripts.move_to_delayed(
                    job.id, token=self._token, score=score,
                    attempts_made=attempts_made, stacktrace=stack, failed_reason=reason,
                )
            )
        if confirmed:
            # ``final`` says whether a retry follows, so listeners need not re-derive it
            # (discard, UnrecoverableError, attempts used up, a backoff of -1 alike).
            self._emit("failed", job, exc, final)

    async def abandon(self, job: Job[Any], exc: BaseException) -> None:
        """Fail a job whose chain met an error pyqueue did not expect (a bug, say).

        Failing for good rather than retrying: an error that recurs on every
        attempt would otherwise cycle the job through wait without end.
        """
        reason = f"pyqueue could not process the job: {error_message(exc)}"
        job.record.failed_reason = reason
        finished_on = now_ms()
        stack = wire.dumps([*job.stacktrace, error_stack(exc)])
        confirmed, _ = await self._finish(
            lambda: self._scripts.move_to_failed(
                job.id, token=self._token, finished_on=finished_on, failed_reason=reason,
                attempts_made=job.attempts_made + 1, stacktrace=stack, keep_count=-1,
                keep_age=None, event_payload=wire.failed_payload(job.id, reason),
                metrics_max_points=self._options.metrics_max_data_points,
                check_debounce=job.debounce_id is not None,
            )
        )
        if confirmed:
            job.record.finished_on = finished_on
            self._emit("failed", job, exc, True)

    async def _finish(
        self, call: Callable[[], Awaitable[Any]], failed: BaseException | None = None
    ) -> tuple[bool, Any]:
        """Run a finishing script, retrying across connection drops while we hold the lock.

        ``call()`` sends the script once; it is called again for each retry.
        ``failed``: what the caller's own first try raised, if it made one.

        Returns:
            ``(confirmed, reply)``: confirmed is True only when the script's own
            reply said it moved the job, so events fire only for real moves.

        A lost reply is safe to retry: if the first call went through, the retry
        sees the job gone from active (or our lock released) and we stop there.
        """
        deadline = time.monotonic() + self._options.lock_duration / 1000
        attempt = 0
        reported = False
        while True:
            if failed is None:
                try:
                    return True, await call()
                except _FAILURES as raised:
                    failed = raised
            exc, failed = failed, None
            if isinstance(exc, ScriptError):
                # After a retry, "not active" or "lock missing" most likely means
                # the first call went through; only a first-try refusal is an error.
                if attempt == 0:
                    self._on_error(exc)
                # The refusal is final: retrying would only be refused again, for ever.
                return False, None
            # A refused write (READONLY after a failover, OOM, MISCONF, BUSY)
            # can pass like a dropped connection: report it now, retry while
            # the lock can still be ours. Past that the job stays in active,
            # and the stalled check hands it to a worker once Redis writes again.
            attempt += 1
            if isinstance(exc, ResponseError) and not reported:
                reported = True
                self._on_error(exc)
            if time.monotonic() > deadline:
                if not reported:
                    self._on_error(exc)
                return False, None
            await asyncio.sleep(min(0.05 * 2**attempt, 1.0))
