"""The one set of operations the engine and the public API call on a wire format.

A wire format (Bull 4 in :mod:`pyqueue._protocol.bull`, BullMQ 6 in
:mod:`pyqueue._protocol.bullmq`) is reached through an object that satisfies
:class:`QueueProtocol`: one per queue, bound to its client, its key prefix and
its name. The engine's per-job path calls the same methods whichever format
it talks to; where the formats differ in kind (Bull wakes idle workers with a
blocking pop of ``wait``, BullMQ with a marker sorted set; Bull publishes
events on pub/sub channels, BullMQ appends them to a stream), the method says
what the caller gets, and each format does it its own way.

Why a :class:`typing.Protocol` and not an ABC: the formats share no code,
only a shape, so nothing is inherited; conformance is checked by mypy where
each format's class declares that it implements the protocol (an explicit
subclass of a ``Protocol`` is verified member by member, and a missing method
makes the class abstract, so instantiating it fails type checking), at no
cost on the per-job path (no ``isinstance`` checks, no extra frames).

The value types it passes are in :mod:`pyqueue._protocol.values` (re-exported
here). Conventions: ids are ``str``; times are ms since the epoch (``now``);
JSON travels as text the caller encoded with the format's own ``wire``
module; a refused move raises the :mod:`pyqueue.errors` exception its code
maps to (``JobNotFound``, ``LockMismatch``, ``JobStateError``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from pyqueue._protocol.values import (
    AddResult,
    Attempt,
    Dedup,
    Idle,
    JobReply,
    Keep,
    NewJob,
    OnChildFailure,
    ParentRef,
    QueueEvent,
    SchedulerRepeat,
    Wake,
    WorkerSpec,
)

__all__ = [
    "AddResult", "Attempt", "Dedup", "EventFeed", "Idle", "JobReply", "Keep", "NewJob",
    "OnChildFailure", "ParentRef", "QueueEvent", "QueueProtocol", "SchedulerRepeat",
    "SyncLocks", "Wake", "WorkerSpec",
]

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from pyqueue._protocol.bull.wire import JobRecord
    from pyqueue._protocol.connection import ConnectionSpec
    from pyqueue.options import JobOptions

class EventFeed(Protocol):
    """Queue-wide events from one dedicated connection, in order."""

    async def next_batch(self, timeout: float) -> list[QueueEvent]:
        """Events that arrived, waiting up to ``timeout`` seconds for the first."""
        ...

    async def aclose(self) -> None:
        """Release the connection."""
        ...


class SyncLocks(Protocol):
    """Lock renewal over a blocking connection, for the renewer thread."""

    def renew(self, job_ids: Sequence[str], tokens: Sequence[str]) -> list[bool | Exception]:
        """Extend each lock its token holds; per id: still ours, or the error Redis gave."""
        ...

    def release(self, job_id: str, token: str) -> None:
        """Give an active job back to wait without counting an attempt."""
        ...

    def list_active(self) -> list[str]:
        """The queue's active job ids."""
        ...

    def close(self) -> None:
        """Close the connection."""
        ...


class QueueProtocol(Protocol):
    """A queue's wire format: the operations the engine and the API need.

    Attributes:
        format: ``"bull"`` or ``"bullmq"``.
        base: ``"<prefix>:<queue>:"``, the head of every key of the queue.
        states: The state names :meth:`get_counts` and :meth:`get_job_ids` accept.
        limiter_on_fetch_next: Whether a finishing call's fetch-next applies the
            rate limiter (BullMQ), so a limited worker may fetch that way too.
        promotes_on_fetch: Whether fetching promotes due delayed jobs itself
            (BullMQ); else the engine runs :meth:`promote_due` on a timer (Bull).
    """

    format: str
    base: str
    states: tuple[str, ...]
    limiter_on_fetch_next: bool
    promotes_on_fetch: bool

    # --- producing ------------------------------------------------------------

    def encode_options(
        self, opts: JobOptions, *, dedup: Dedup | None = None, parent: ParentRef | None = None,
        timestamp: int = 0,
    ) -> dict[str, Any]:
        """The stored ``opts`` object for these options (raises InvalidOptionsError).

        ``timestamp``: the add's time, for a format that stores it in ``opts`` (Bull).
        """
        ...

    def check_job_id(self, job_id: str) -> str:
        """A custom id as this format accepts it (raises InvalidOptionsError)."""
        ...

    async def add_job(self, job: NewJob, *, token: str) -> AddResult:
        """Add one job (one round trip)."""
        ...

    async def add_jobs(self, jobs: Sequence[NewJob], *, token: str) -> list[AddResult]:
        """Add many jobs in order, atomically, in one round trip."""
        ...

    # --- reading --------------------------------------------------------------

    def decode_job(self, job_id: str, raw: Mapping[bytes, bytes]) -> JobRecord:
        """A job hash decoded (never raises for bad content)."""
        ...

    async def get_job_hash(self, job_id: str) -> dict[bytes, bytes]:
        """The job's hash; empty when there is no such job."""
        ...

    async def get_state(self, job_id: str) -> str:
        """The job's state as this format's ``getState`` names it."""
        ...

    async def get_counts(self, states: Sequence[str]) -> dict[str, int]:
        """Jobs per state, read atomically, keyed as asked."""
        ...

    async def get_job_ids(self, state: str, start: int, end: int, *, asc: bool) -> list[str]:
        """Ids in one state, in the format's order (newest first unless ``asc``)."""
        ...

    async def get_logs(self, job_id: str, start: int, end: int, *, asc: bool) -> tuple[
        list[str], int
    ]:
        """``(lines, total)`` of a job's log."""
        ...

    async def finished_outcome(self, job_id: str) -> tuple[int, str | None]:
        """``(1, returnvalue JSON)``, ``(2, failed reason)``, ``(0, None)`` pending,
        ``(-1, None)`` no such job."""
        ...

    async def is_paused(self) -> bool:
        """Whether the queue is paused for every worker."""
        ...

    async def get_counts_per_priority(self, priorities: Sequence[int]) -> list[int]:
        """Waiting jobs per priority, in order."""
        ...

    # --- a worker's path --------------------------------------------------------

    async def move_to_active(
        self, *, token: str, worker: WorkerSpec, now: int, job_id: str = ""
    ) -> JobReply | Idle:
        """Start the next job, locked with ``token`` (one round trip).

        ``job_id``: the id a :class:`Wake` carried (Bull), else "".
        """
        ...

    async def name_worker_connection(self, bclient: aioredis.Redis) -> None:
        """Name a worker's blocking connection as the format's own workers name theirs
        (CLIENT SETNAME), so the format's ``getWorkers`` (and bull-board) list it. A
        server that refuses CLIENT SETNAME is shrugged off, as Bull and BullMQ do."""
        ...

    async def wait_for_job(self, bclient: aioredis.Redis, timeout: float) -> Wake | None:
        """Block on ``bclient`` (a connection for blocking commands only) until
        work may be ready, at most ``timeout`` seconds; None when it timed out."""
        ...

    async def complete(
        self,
        job_id: str,
        *,
        token: str,
        result_json: str,
        finished_on: int,
        keep: Keep,
        worker: WorkerSpec,
        fetch_next: bool,
        next_token: str = "",
        max_attempts: int = 0,
        has_dedup: bool = True,
    ) -> JobReply | Idle | None:
        """Complete an active job; with ``fetch_next``, start the next one in the
        same round trip (locked with ``next_token``, or ``token``).

        Returns the next job, an :class:`Idle` when fetching found none (BullMQ),
        or None. ``has_dedup=False`` says the job has no deduplication id.
        """
        ...

    async def fail(
        self,
        job_id: str,
        attempt: Attempt,
        *,
        token: str,
        finished_on: int,
        keep: Keep,
        worker: WorkerSpec,
        max_attempts: int,
        fetch_next: bool = False,
        next_token: str = "",
        has_dedup: bool = True,
    ) -> JobReply | Idle | None:
        """Fail an active job for good, recording ``attempt``; with ``fetch_next``,
        start the next job in the same round trip where the format can (BullMQ;
        Bull returns None)."""
        ...

    async def retry(
        self,
        job_id: str,
        attempt: Attempt,
        *,
        token: str,
        delay: int,
        lifo: bool,
        now: int,
        worker: WorkerSpec | None = None,
        fetch_next: bool = False,
        next_token: str = "",
    ) -> JobReply | None:
        """Record a failed ``attempt`` and queue the job again: in ``delay`` ms
        (delayed), or now (``delay`` 0) at the back (or front with ``lifo``).

        With ``fetch_next`` (and ``worker``), a delayed retry starts the next job
        in the same round trip where the format can (BullMQ); else None.
        """
        ...

    def builtin_backoff(self, backoff: Mapping[str, Any], attempts_made: int) -> float | None:
        """ms before the next attempt by this format's built-in strategy named in
        ``backoff`` (``{type, delay, ...}`` as stored); None when the type is not
        built in (a custom strategy the worker registered)."""
        ...

    async def release(self, job_id: str, *, token: str) -> None:
        """Give an active job back to the front of wait, no attempt counted."""
        ...

    async def extend_locks(
        self, job_ids: Sequence[str], tokens: Sequence[str], duration: int
    ) -> list[str]:
        """Renew locks in one round trip; returns the ids whose lock was lost."""
        ...

    def sync_locks(self, spec: ConnectionSpec, duration: int) -> SyncLocks:
        """Lock renewal over a blocking connection of its own (the renewer thread)."""
        ...

    async def check_stalled(
        self, *, max_stalled_count: int, now: int, interval: int
    ) -> tuple[list[str], list[str]]:
        """The stalled check: ``(ids failed or marked to fail, ids recovered)``."""
        ...

    async def promote_due(self, *, now: int, token: str) -> int | None:
        """Move due delayed jobs to wait; returns the next due time (ms) or None."""
        ...

    # --- a job's progress, log, data -------------------------------------------

    async def update_progress(self, job_id: str, progress_json: str) -> None:
        """Store progress and announce it (raises JobNotFound)."""
        ...

    async def add_log(self, job_id: str, line: str, keep_logs: int | None = None) -> int:
        """Append a log line; returns the lines kept (raises JobNotFound)."""
        ...

    async def update_data(self, job_id: str, data_json: str) -> None:
        """Replace a job's data (raises JobNotFound)."""
        ...

    # --- managing ---------------------------------------------------------------

    async def pause(self, paused: bool) -> None:
        """Pause (True) or resume (False) the queue for every worker."""
        ...

    async def promote(self, job_id: str, *, token: str) -> None:
        """Move a delayed job to waiting now (raises JobStateError if not delayed)."""
        ...

    async def change_priority(self, job_id: str, priority: int, *, lifo: bool = False) -> None:
        """Give a waiting job another priority (raises JobNotFound)."""
        ...

    async def remove(self, job_id: str, *, token: str, with_children: bool = True) -> bool:
        """Remove a job that no worker holds; False when it is locked."""
        ...

    async def reprocess(self, job_id: str, *, state: str, lifo: bool, token: str,
                        now: int) -> None:
        """Retry one failed (or completed) job (raises JobNotFound / JobStateError)."""
        ...

    async def retry_all(self, *, state: str, count: int, now: int) -> None:
        """Retry every failed (or completed) job finished by ``now``."""
        ...

    async def clean(self, state: str, *, max_timestamp: int, limit: int) -> list[str]:
        """Remove jobs of ``state`` older than ``max_timestamp``; their ids."""
        ...

    async def drain(self, *, delayed: bool) -> None:
        """Remove every waiting job (and delayed ones with ``delayed``)."""
        ...

    async def obliterate(self, *, force: bool, count: int) -> None:
        """Delete the paused queue and all of it (raises JobStateError)."""
        ...

    async def remove_dedup(self, dedup_id: str, job_id: str | None = None) -> bool:
        """Free a deduplication id (only if ``job_id`` owns it, when given)."""
        ...

    # --- job schedulers (BullMQ) ---------------------------------------------------

    async def upsert_job_scheduler(
        self, scheduler_id: str, repeat: SchedulerRepeat, *, now: int, name: str | None = None,
        data_json: str = "{}", template_opts: Mapping[str, Any] | None = None,
    ) -> tuple[str, int] | None:
        """Create or replace a job scheduler; ``(first iteration id, delay ms)``.

        Bull 4 has no job schedulers (its repeatable jobs are :class:`pyqueue.Repeat`).
        """
        ...

    async def schedule_next(self, job_id: str, raw_opts: Mapping[str, Any],
                            scheduler_id: str | None, *, now: int) -> str | None:
        """Called as a worker starts a job: a job scheduler's next iteration, made
        once per tick whoever (Node or pyqueue) starts the current one. None for
        any other job, and always in Bull mode, whose repeat chaining is the
        API's :mod:`pyqueue._scheduling`."""
        ...

    async def remove_job_scheduler(self, scheduler_id: str) -> bool:
        """Remove a job scheduler and its delayed iteration; False if there was none."""
        ...

    async def get_job_schedulers(self, start: int = 0, end: int = -1, *,
                                 asc: bool = False) -> list[dict[str, Any]]:
        """Job schedulers, as Node's ``getJobSchedulers`` lists them."""
        ...

    async def get_job_scheduler(self, scheduler_id: str) -> dict[str, Any] | None:
        """One job scheduler as Node's ``getJobScheduler`` shows it, or None."""
        ...

    # --- events -----------------------------------------------------------------

    def event_feed(self, client: aioredis.Redis, *, last_id: str = "$") -> EventFeed:
        """Queue-wide events over ``client`` (a connection of the feed's own):
        from ``last_id`` on in BullMQ's stream ("$": from now), or from now on
        Bull's channels."""
        ...
