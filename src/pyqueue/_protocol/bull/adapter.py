"""Bull 4's side of :class:`pyqueue._protocol.interface.QueueProtocol`.

:class:`BullProtocol` wraps Bull mode's :class:`.scripts.Scripts` (unchanged)
and answers the interface's operations in Bull's terms: the event payloads Bull
publishes are built here, a retry's delay becomes Bull's ``delayed`` score, a
fetch that starts nothing becomes an :class:`Idle`. What Bull 4 does not have
(flows, BullMQ's deduplication modes, priority changes, draining wait without
delayed) raises one :class:`~pyqueue.errors.InvalidOptionsError` naming it.
mypy checks, by the explicit subclassing of the protocol, that nothing is missing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, cast

from redis.exceptions import ResponseError, WatchError

from pyqueue._protocol.bull import wire
from pyqueue._protocol.bull.adapter_reads import BullReads, BullSyncLocks
from pyqueue._protocol.bull.events_feed import PubSubFeed
from pyqueue._protocol.bull.keys import QueueKeys
from pyqueue._protocol.bull.script_args import AddJobSpec, delayed_score
from pyqueue._protocol.bull.scripts import Scripts
from pyqueue._protocol.interface import (
    AddResult,
    Attempt,
    Dedup,
    EventFeed,
    Idle,
    JobReply,
    Keep,
    NewJob,
    ParentRef,
    QueueProtocol,
    SchedulerRepeat,
    SyncLocks,
    Wake,
    WorkerSpec,
)
from pyqueue.errors import InvalidOptionsError, JobNotFound, JobStateError
from pyqueue.options import Debounce, validate_job_id

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from pyqueue._protocol.connection import ConnectionSpec
    from pyqueue._protocol.fastconn import FastConnection
    from pyqueue.options import JobOptions

STATES: tuple[str, ...] = ("waiting", "active", "completed", "failed", "delayed", "paused")


def _not_in_bull(what: str) -> InvalidOptionsError:
    return InvalidOptionsError(f"{what}: Bull 4 has no such feature; use protocol='bullmq'")


class BullProtocol(BullReads, QueueProtocol):
    """One Bull queue's wire format, on one asyncio client.

    Args:
        client: An asyncio client created with ``decode_responses=False``.
        prefix: The key prefix (``bull``).
        queue: The queue name.
        fast: The queue's lean connection for the per-job scripts, if any.
    """

    format = "bull"
    states = STATES
    limiter_on_fetch_next = False
    promotes_on_fetch = False

    def __init__(self, client: aioredis.Redis, prefix: str, queue: str,
                 fast: FastConnection | None = None) -> None:
        self.keys = QueueKeys(prefix, queue)
        self.base = self.keys.base
        self.client = client
        self.scripts = Scripts(client, self.keys, fast)

    # --- producing ------------------------------------------------------------

    def encode_options(
        self, opts: JobOptions, *, dedup: Dedup | None = None, parent: ParentRef | None = None,
        timestamp: int = 0,
    ) -> dict[str, Any]:
        """Bull's ``opts`` (see :func:`.wire.options_to_wire`); ``dedup`` is a debounce."""
        if parent is not None:
            raise _not_in_bull("parent (flows)")
        if dedup is not None:
            if dedup.extend or dedup.replace or dedup.keep_last_if_active or dedup.reschedule:
                raise _not_in_bull("deduplication extend/replace/keepLastIfActive/reschedule")
            opts = replace(opts, debounce=Debounce(id=dedup.id, ttl=dedup.ttl))
        return wire.options_to_wire(opts, timestamp=opts.timestamp or timestamp)

    def check_job_id(self, job_id: str) -> str:
        """Bull mode's id rules (see :func:`pyqueue.options.validate_job_id`)."""
        return validate_job_id(job_id)

    @staticmethod
    def _spec(job: NewJob) -> AddJobSpec:
        if job.parent is not None or job.waiting_children:
            raise _not_in_bull("parent (flows)")
        return AddJobSpec(job_id=job.job_id, name=job.name, data=job.data, opts=job.opts,
                          timestamp=job.timestamp, delay=job.delay, priority=job.priority,
                          lifo=job.lifo)

    async def add_job(self, job: NewJob, *, token: str) -> AddResult:
        """addJob-6, reporting whether it created the job, found the custom id, or was debounced."""
        dedup = job.dedup
        job_id, outcome, _ = await self.scripts.add_job_reporting(
            self._spec(job), token=token,
            debounce_id=None if dedup is None else dedup.id,
            ttl=None if dedup is None else dedup.ttl)
        return AddResult(job_id, outcome == "created", outcome == "debounced")

    async def add_jobs(self, jobs: Sequence[NewJob], *, token: str) -> list[AddResult]:
        """addJobs-6 (no deduplication in bulk, as Bull)."""
        if any(job.dedup is not None for job in jobs):
            raise InvalidOptionsError("deduplication: not supported in a bulk add in Bull mode")
        replies = await self.scripts.add_jobs_reporting([self._spec(job) for job in jobs], token)
        return [AddResult(job_id, outcome == "created") for job_id, outcome, _ in replies]

    # --- a worker's path --------------------------------------------------------

    async def move_to_active(
        self, *, token: str, worker: WorkerSpec, now: int, job_id: str = ""
    ) -> JobReply | Idle:
        reply = await self.scripts.move_to_active(
            token=token, lock_duration=worker.lock_duration, now=now, job_id=job_id,
            limiter_max=worker.limiter_max, limiter_duration=worker.limiter_duration,
            bounce_back=worker.bounce_back, group_key=worker.group_key)
        if reply is None:
            return Idle()
        if isinstance(reply, int):
            return Idle(rate_limited_ms=reply)
        return reply

    async def name_worker_connection(self, bclient: aioredis.Redis) -> None:
        """Bull's worker name (Bull mode's Fetcher names its own connection)."""
        with contextlib.suppress(ResponseError):
            await bclient.client_setname(self.keys.worker_client_name)

    async def wait_for_job(self, bclient: aioredis.Redis, timeout: float) -> Wake | None:
        """BLMOVE from wait to active: the moved id is the one to start."""
        moved = await bclient.blmove(self.keys.wait, self.keys.active, timeout,  # type: ignore[arg-type]  # Redis takes float seconds
                                     "RIGHT", "LEFT")
        if moved is None:
            return None
        return Wake(moved.decode() if isinstance(moved, bytes) else str(moved), 0)

    async def complete(
        self, job_id: str, *, token: str, result_json: str, finished_on: int, keep: Keep,
        worker: WorkerSpec, fetch_next: bool, next_token: str = "", max_attempts: int = 0,
        has_dedup: bool = True,
    ) -> JobReply | Idle | None:
        """moveToFinished-9; Bull locks a fetched job with ``token`` (no ``next_token``)."""
        return await self.scripts.move_to_completed(
            job_id, token=token, finished_on=finished_on, return_value=result_json,
            keep_count=keep.count, keep_age=keep.age,
            event_payload=wire.completed_payload(job_id, result_json), fetch_next=fetch_next,
            lock_duration=worker.lock_duration, metrics_max_points=worker.metrics_max_points,
            check_debounce=has_dedup)

    async def fail(
        self, job_id: str, attempt: Attempt, *, token: str, finished_on: int, keep: Keep,
        worker: WorkerSpec, max_attempts: int, fetch_next: bool = False, next_token: str = "",
        has_dedup: bool = True,
    ) -> JobReply | Idle | None:
        """moveToFinished-9 into failed; Bull mode fetches nothing after a failure."""
        await self.scripts.move_to_failed(
            job_id, token=token, finished_on=finished_on, failed_reason=attempt.failed_reason,
            attempts_made=attempt.attempts_made, stacktrace=attempt.stacktrace,
            keep_count=keep.count, keep_age=keep.age,
            event_payload=wire.failed_payload(job_id, attempt.failed_reason),
            metrics_max_points=worker.metrics_max_points, check_debounce=has_dedup)
        return None

    async def retry(
        self, job_id: str, attempt: Attempt, *, token: str, delay: int, lifo: bool, now: int,
        worker: WorkerSpec | None = None, fetch_next: bool = False, next_token: str = "",
    ) -> JobReply | None:
        """moveToDelayed-4 or retryJob-7; Bull mode fetches nothing after a retry."""
        made, stack, reason = attempt.attempts_made, attempt.stacktrace, attempt.failed_reason
        if delay > 0:
            await self.scripts.move_to_delayed(
                job_id, token=token, score=delayed_score(now + delay, job_id),
                attempts_made=made, stacktrace=stack, failed_reason=reason)
            return None
        await self.scripts.retry_job(job_id, token=token, lifo=lifo, attempts_made=made,
                                     stacktrace=stack, failed_reason=reason)
        return None

    def builtin_backoff(self, backoff: Mapping[str, Any], attempts_made: int) -> float | None:
        """Bull's fixed (``delay``) and exponential (``(2**n - 1) * delay``)."""
        kind, delay = backoff.get("type"), backoff.get("delay")
        if kind not in ("fixed", "exponential"):
            return None
        if isinstance(delay, bool) or not isinstance(delay, int | float):
            return None
        if kind == "fixed":
            return float(delay)
        return float(round((2**attempts_made - 1) * delay))

    async def release(self, job_id: str, *, token: str) -> None:
        await self.scripts.retry_job(job_id, token=token, lifo=True)

    async def extend_locks(
        self, job_ids: Sequence[str], tokens: Sequence[str], duration: int
    ) -> list[str]:
        kept = await asyncio.gather(*(
            self.scripts.extend_lock(job_id, token=token, duration=duration)
            for job_id, token in zip(job_ids, tokens, strict=True)))
        return [job_id for job_id, ok in zip(job_ids, kept, strict=True) if not ok]

    def sync_locks(self, spec: ConnectionSpec, duration: int) -> SyncLocks:
        return BullSyncLocks(spec, self.keys, duration)

    async def check_stalled(
        self, *, max_stalled_count: int, now: int, interval: int
    ) -> tuple[list[str], list[str]]:
        return await self.scripts.move_stalled_jobs_to_wait(
            max_stalled_count=max_stalled_count, now=now, stalled_interval=interval)

    async def promote_due(self, *, now: int, token: str) -> int | None:
        """updateDelaySet-6; the next due time is the score's ``due * 4096`` part."""
        score = await self.scripts.update_delay_set(now=now, token=token)
        return None if score is None else score // 4096

    # --- a job's progress, log, data -------------------------------------------

    async def update_progress(self, job_id: str, progress_json: str) -> None:
        await self.scripts.update_progress(
            job_id, progress_json=progress_json,
            event_payload=wire.progress_payload(job_id, progress_json))

    async def add_log(self, job_id: str, line: str, keep_logs: int | None = None) -> int:
        return await self.scripts.add_log(job_id, line=line, keep_logs=keep_logs)

    async def update_data(self, job_id: str, data_json: str) -> None:
        await self.scripts.update_data(job_id, data_json=data_json)

    # --- managing ---------------------------------------------------------------

    async def pause(self, paused: bool) -> None:
        await self.scripts.pause(paused)

    async def promote(self, job_id: str, *, token: str) -> None:
        await self.scripts.promote(job_id, token=token)

    async def change_priority(self, job_id: str, priority: int, *, lifo: bool = False) -> None:
        raise _not_in_bull("change_priority")

    async def remove(self, job_id: str, *, token: str, with_children: bool = True) -> bool:
        return await self.scripts.remove_job(job_id, token=token)

    async def reprocess(self, job_id: str, *, state: str, lifo: bool, token: str,
                        now: int) -> None:
        if state != "failed":
            raise _not_in_bull(f"retrying {state} jobs")
        code = await self.scripts.reprocess_job(job_id, lifo=lifo, token=token, now=now)
        if code == 1:
            return
        if code == 0:
            raise JobNotFound(f"Couldn't retry job {job_id}: it does not exist",
                              job_id=job_id, code=code)
        reason = "is locked" if code == -1 else "has not failed"
        raise JobStateError(f"Couldn't retry job {job_id}: it {reason}", job_id=job_id,
                            code=code)

    async def retry_all(self, *, state: str, count: int, now: int) -> None:
        if state != "failed":
            raise _not_in_bull(f"retrying all {state} jobs")
        while await self.scripts.retry_jobs(count=count) == 1:
            pass

    async def clean(self, state: str, *, max_timestamp: int, limit: int) -> list[str]:
        return await self.scripts.clean_jobs_in_set(
            "wait" if state == "waiting" else state, max_timestamp=max_timestamp, limit=limit)

    async def drain(self, *, delayed: bool) -> None:
        """Bull's empty(): wait, paused and delayed go together."""
        if not delayed:
            raise _not_in_bull("drain without the delayed jobs (Bull's empty() takes them)")
        await self.scripts.empty()

    async def obliterate(self, *, force: bool, count: int) -> None:
        while (code := await self.scripts.obliterate(count=count, force=force)) == 1:
            pass
        if code == -1:
            raise JobStateError("Cannot obliterate non-paused queue", code=code)
        if code == -2:
            raise JobStateError("Cannot obliterate queue with active jobs", code=code)
        await self.client.delete(self.keys.wait, self.keys.limiter, self.keys.limiter_index)

    async def remove_dedup(self, dedup_id: str, job_id: str | None = None) -> bool:
        key = self.keys.debounce(dedup_id)
        if job_id is None:
            return bool(await self.client.delete(key))
        async with self.client.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(key)
                if await pipe.get(key) != job_id.encode():
                    return False
                cast("Any", pipe).multi()  # untyped in redis-py's stubs
                pipe.delete(key)
                await pipe.execute()
            except WatchError:
                return False
        return True

    # --- job schedulers: BullMQ's; Bull has repeatable jobs instead -----------------

    async def upsert_job_scheduler(
        self, scheduler_id: str, repeat: SchedulerRepeat, *, now: int, name: str | None = None,
        data_json: str = "{}", template_opts: Mapping[str, Any] | None = None,
    ) -> tuple[str, int] | None:
        raise _not_in_bull("job schedulers (use Queue.add(..., repeat=Repeat(...)))")

    async def schedule_next(self, job_id: str, raw_opts: Mapping[str, Any],
                            scheduler_id: str | None, *, now: int) -> str | None:
        """None: Bull's repeat instances are chained by :mod:`pyqueue._scheduling`."""
        return None

    async def remove_job_scheduler(self, scheduler_id: str) -> bool:
        raise _not_in_bull("job schedulers")

    async def get_job_schedulers(self, start: int = 0, end: int = -1, *,
                                 asc: bool = False) -> list[dict[str, Any]]:
        raise _not_in_bull("job schedulers (see Queue.get_repeatable_jobs)")

    async def get_job_scheduler(self, scheduler_id: str) -> dict[str, Any] | None:
        raise _not_in_bull("job schedulers (see Queue.get_repeatable_jobs)")

    # --- events -----------------------------------------------------------------

    def event_feed(self, client: aioredis.Redis, *, last_id: str = "$") -> EventFeed:
        """Bull's pub/sub channels, as BullMQ-named events (from now on only)."""
        return PubSubFeed(client, self.keys)
