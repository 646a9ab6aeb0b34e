"""Move a Bull 4 queue to BullMQ 6, live: jobs, history, schedules, metrics.

::

    report = await migrate_queue("notifications", redis_url=URL, to_prefix="bmq")

converts the Bull queue ``bull:notifications`` into the BullMQ queue
``bmq:notifications``: waiting jobs (prioritised ones into BullMQ's
prioritised set, in the order Bull would have run them), paused and delayed
ones (due at the same time), completed and failed ones with their history
(data, options under BullMQ's names, attempts, stack traces, logs, progress,
return values, timestamps), per-minute metrics, and every repeatable job as a
job scheduler with the same next run. The old queue keeps working meanwhile;
with ``follow=True`` the run keeps moving what it receives until ``stop`` is
set, so Node producers can be switched to the new queue one at a time
(:func:`cutover_plan` prints the steps for a fleet).

Without ``to_prefix``/``to_name`` the queue is converted in place (same keys),
which needs every Bull worker stopped first (checked: :class:`MigrationRefused`).

Each job moves in one atomic script call (a small batch per call), checked
against what was read: a run stopped at any point, a ``kill -9`` included,
leaves every job on one side or the other, and a second run picks up what is
left. Active jobs are waited for until their worker finishes them (their
history then moves too), or, once their lock has expired twice over a grace
period, moved back to waiting as Bull's stall check would move them. The
target keeps the migration's record (``pq-migrate:*`` keys): counters, Bull id
-> BullMQ id for every id that changed, Bull repeat key -> scheduler id
(:func:`migration_status` reads it back).

What changes, besides names: ids BullMQ refuses (digits only for a custom id,
a ``:``, a queue key's name) get new ones; a counter id the target already has
takes the target's next counter value; ``timeout`` and ``preventParsingData``
are dropped (BullMQ has neither); Bull's exponential backoff keeps its option
but BullMQ waits ``2^(n-1) x delay`` (Bull ``(2^n - 1) x delay``); a pending
job whose custom id the target already holds is dropped as the duplicate it
is. The dry run (:func:`plan_migration`) lists each of these before anything
is written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from pyqueue._cutover import Fleet, cutover_plan
from pyqueue._protocol import connection as _connection
from pyqueue._protocol.bull.keys import QueueKeys
from pyqueue._protocol.bullmq.keys import BullMQKeys
from pyqueue._protocol.migration import inventory, session
from pyqueue._protocol.migration.keys import MigrationKeys
from pyqueue._protocol.migration.report import (
    MigrationPlan,
    MigrationProgress,
    MigrationReport,
    ScheduleInfo,
)
from pyqueue._protocol.migration.runner import RunOptions, now_ms
from pyqueue._protocol.routing import hash_tag
from pyqueue.errors import InvalidOptionsError, MigrationRefused

if TYPE_CHECKING:
    import redis.asyncio as aioredis

__all__ = [
    "Fleet", "MigrationPlan", "MigrationProgress", "MigrationRefused", "MigrationReport",
    "ScheduleInfo", "cutover_plan", "migrate_queue", "migration_status", "plan_migration",
]


def _name(label: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidOptionsError(f"{label}: must be a non-empty string, got {value!r}")
    if "@" in value:
        raise InvalidOptionsError(f"{label}: must not contain '@' (Bull event channels)")
    return value


def _keys(queue: str, prefix: str, to_prefix: str | None, to_name: str | None) -> MigrationKeys:
    source = QueueKeys(_name("prefix", prefix), _name("queue", queue))
    target_name = _name("to_name", to_name) if to_name is not None else queue
    if ":" in target_name:
        raise InvalidOptionsError(
            f"to_name: BullMQ refuses queue names with ':', got {target_name!r}"
            + ("" if to_name is not None else " (give to_name)"))
    target_prefix = _name("to_prefix", to_prefix) if to_prefix is not None else prefix
    return MigrationKeys(source, BullMQKeys(target_prefix, target_name))


class _Client:
    """The client a call uses: the caller's, or one of our own (closed after)."""

    def __init__(self, keys: MigrationKeys, redis_url: str | None,
                 connection: aioredis.Redis | None) -> None:
        self.client, self.spec, self.owned = _connection.resolve(redis_url, connection,
                                                                 keys.source.base)
        self.keys = keys

    async def __aenter__(self) -> aioredis.Redis:
        source, target = self.keys.source.base, self.keys.target.base
        if self.spec.is_cluster and hash_tag(source) != hash_tag(target):
            await self.__aexit__()
            raise InvalidOptionsError(
                "to_prefix: on Redis Cluster the target's keys must share the source's hash "
                f"tag ({source!r} -> {target!r}): each job moves in one script, which "
                "reaches one slot")
        return self.client

    async def __aexit__(self, *exc: object) -> None:
        if self.owned:
            await self.client.aclose()


async def migrate_queue(
    queue: str,
    *,
    redis_url: str | None = None,
    connection: aioredis.Redis | None = None,
    prefix: str = "bull",
    to_prefix: str | None = None,
    to_name: str | None = None,
    follow: bool = False,
    stop: asyncio.Event | None = None,
    force: bool = False,
    batch_size: int = 100,
    stall_grace: float = 5.0,
    max_stalled: int = 1,
    poll_interval: float = 0.5,
    active_timeout: float | None = None,
    on_progress: Callable[[MigrationProgress], None] | None = None,
) -> MigrationReport:
    """Convert the Bull queue ``<prefix>:<queue>`` into a BullMQ queue.

    Args:
        queue: The Bull queue's name.
        redis_url, connection: The Redis server (one of them; default
            ``redis://127.0.0.1:6379/0``). A caller's client is not closed.
        prefix: The Bull queue's key prefix.
        to_prefix, to_name: The BullMQ queue's prefix and name (default: the
            same: a migration in place).
        follow: Into another queue: keep moving what the Bull queue receives
            until ``stop`` is set (else stop once it is empty).
        stop: Set it to end the run after the current step.
        force: In place: migrate even though worker connections still use the
            queue (their jobs may then finish in Bull's format).
        batch_size: Jobs per atomic step.
        stall_grace: Seconds an active job must stay without a lock before
            it counts as stalled.
        max_stalled: Bull's ``maxStalledCount``: a job stalled more often fails.
        poll_interval: Seconds between passes while waiting (active jobs, follow).
        active_timeout: Give up waiting for locked active jobs after this many
            seconds (None: wait for them); the report then lists them in ``problems``.
        on_progress: Called after every step (a progress bar's feed).

    Returns:
        What has been moved, over every run into this target.

    Raises:
        InvalidOptionsError: a bad argument (nothing written).
        MigrationRefused: workers still use the queue (in place), the target is
            a Bull queue, or it receives another queue's jobs (nothing written).
    """
    keys = _keys(queue, prefix, to_prefix, to_name)
    if follow and keys.in_place:
        raise InvalidOptionsError("follow: only for a migration into another prefix or name "
                                  "(in place, no Bull process may use the queue)")
    for label, value, low in (("batch_size", batch_size, 1), ("max_stalled", max_stalled, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InvalidOptionsError(f"{label}: must be an int >= {low}, got {value!r}")
    for label, seconds in (("stall_grace", stall_grace), ("poll_interval", poll_interval)):
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            raise InvalidOptionsError(f"{label}: must be seconds >= 0, got {seconds!r}")
    options = RunOptions(batch_size=batch_size, stall_grace_ms=int(stall_grace * 1000),
                         max_stalled=max_stalled)
    async with _Client(keys, redis_url, connection) as client:
        return await session.migrate(
            client, keys, follow=follow, stop=stop, force=force, options=options,
            on_progress=on_progress, poll_interval=poll_interval, active_timeout=active_timeout)


async def plan_migration(
    queue: str, *, redis_url: str | None = None, connection: aioredis.Redis | None = None,
    prefix: str = "bull", to_prefix: str | None = None, to_name: str | None = None,
    force: bool = False,
) -> MigrationPlan:
    """The dry run: what :func:`migrate_queue` with these arguments would do now.

    Nothing is written. ``blockers`` says why it would refuse to start.

    Raises:
        InvalidOptionsError: a bad argument.
    """
    keys = _keys(queue, prefix, to_prefix, to_name)
    async with _Client(keys, redis_url, connection) as client:
        return await inventory.plan(client, keys, now=now_ms(), force=force)


async def migration_status(
    queue: str, *, redis_url: str | None = None, connection: aioredis.Redis | None = None,
    prefix: str = "bull", to_prefix: str | None = None, to_name: str | None = None,
) -> MigrationReport:
    """What the migrations into this target have done so far, read from the
    target's record (ids that changed included), without running anything.

    Raises:
        InvalidOptionsError: a bad argument.
    """
    keys = _keys(queue, prefix, to_prefix, to_name)
    async with _Client(keys, redis_url, connection) as client:
        return await session.report(client, keys)
