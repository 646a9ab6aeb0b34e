"""What a migration did, would do, and is doing: the values it hands back.

Re-exported by :mod:`pyqueue.migrate`, the public module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

# Bull's states in the order a pass moves them (runnable work first).
STATE_ORDER: tuple[str, ...] = ("wait", "paused", "delayed", "active", "completed", "failed")


@dataclass(frozen=True, slots=True)
class ScheduleInfo:
    """A Bull repeatable job and the BullMQ job scheduler it becomes (or became).

    Attributes:
        bull_key: Its member of Bull's ``repeat`` set (``name:id:endDate:tz:cron``).
        scheduler_id: The job scheduler's id (what ``upsertJobScheduler`` takes).
        name: The job name of its iterations.
        pattern: Its cron pattern, or None.
        every: Its period in ms, or None.
        tz: The pattern's time zone, or None.
        next_run: The next run (ms since the epoch), the same on both sides.
    """

    bull_key: str
    scheduler_id: str
    name: str
    pattern: str | None
    every: int | None
    tz: str | None
    next_run: int


@dataclass(frozen=True, slots=True)
class MigrationProgress:
    """Passed to ``on_progress`` after each step.

    Attributes:
        state: The Bull state just worked on (``wait``... ``failed``, or ``repeat``).
        moved: Jobs (and schedules) moved so far by this run.
        total: ``moved`` plus what is left to move as last counted; grows
            while the Bull queue keeps receiving jobs.
        waiting_for_active: Bull jobs still held by a worker's lock.
    """

    state: str
    moved: int
    total: int
    waiting_for_active: int = 0


@dataclass(slots=True)
class MigrationPlan:
    """What a migration would do (a dry run: nothing is written).

    Attributes:
        source: ``<prefix>:<queue>`` of the Bull queue.
        target: ``<prefix>:<queue>`` of the BullMQ queue.
        in_place: One set of keys for both (same prefix and name).
        counts: Bull jobs per state (``wait``, ``paused``, ``delayed``,
            ``active``, ``completed``, ``failed``), prioritised ones included in
            ``wait``/``paused`` and counted again in ``prioritized``.
        renames: Bull id -> BullMQ id, for the ids that change.
        schedules: The repeatable jobs and their schedulers.
        notes: What changes beyond renaming (dropped ``timeout``...), with
            the number of jobs each applies to.
        blockers: Why the migration would refuse to run now.
        problems: What it could not convert (it stays in Bull, untouched).
        resumed: A migration into this target was started before.
    """

    source: str
    target: str
    in_place: bool
    counts: dict[str, int] = field(default_factory=dict)
    renames: dict[str, str] = field(default_factory=dict)
    schedules: list[ScheduleInfo] = field(default_factory=list)
    notes: dict[str, int] = field(default_factory=dict)
    blockers: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    resumed: bool = False

    @property
    def total(self) -> int:
        """Jobs to move (prioritised ones counted once)."""
        return sum(self.counts.get(s, 0) for s in STATE_ORDER)


@dataclass(slots=True)
class MigrationReport:
    """What a migration has done, over every run into this target so far.

    Attributes:
        source, target, in_place: As in :class:`MigrationPlan`.
        moved: Jobs moved per Bull state (from the target's bookkeeping, so
            runs before a kill count too).
        duplicates: Pending Bull jobs dropped because the BullMQ queue had a
            pending job with their id (a custom id, or the same schedule tick).
        stalled_failed: Active jobs that had stalled too often, moved to failed.
        dangling: Ids in Bull's structures without a job hash, dropped.
        renames: Bull id -> BullMQ id, for every id that changed.
        schedules: Repeatable jobs converted by this run.
        schedules_total: Schedules converted (or merged) over every run.
        notes: What changed beyond renaming, with the number of jobs.
        problems: What could not be converted (left in Bull).
        finished: In place: the queue is BullMQ's now. Into another queue:
            the Bull queue was empty when the run stopped.
        seconds: This run's duration.
    """

    source: str
    target: str
    in_place: bool
    moved: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    stalled_failed: int = 0
    dangling: int = 0
    renames: dict[str, str] = field(default_factory=dict)
    schedules: list[ScheduleInfo] = field(default_factory=list)
    schedules_total: int = 0
    notes: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    finished: bool = False
    seconds: float = 0.0

    @property
    def total(self) -> int:
        """Jobs moved, every state."""
        return sum(self.moved.values())

    @classmethod
    def counters(cls, raw: Mapping[bytes, bytes]) -> dict[str, int]:
        """The target's ``pq-migrate:state`` counters, decoded."""
        out: dict[str, int] = {}
        for key, value in raw.items():
            name = key.decode()
            if name.startswith("moved:") or name in (
                "duplicates", "stalled-failed", "dangling", "renamed", "schedules",
                "schedules:merged",
            ):
                out[name] = int(value)
        return out
