"""Value types the wire-format interface passes around (see :mod:`.interface`).

Frozen dataclasses and named tuples, validated where a caller builds them from
user input (:class:`Dedup`, :class:`SchedulerRepeat`), so that a bad option is
refused, naming the field, before anything is written.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, TypeAlias

from pyqueue.errors import InvalidOptionsError
from pyqueue.repeat import validate_cron, zone

# A started job: its hash as HGETALL returned it, and its id.
JobReply: TypeAlias = tuple[dict[bytes, bytes], str]

OnChildFailure = Literal["fail_parent", "continue_parent", "ignore", "remove_dependency"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Dedup:
    """Deduplication of adds (BullMQ's ``deduplication``; Bull 4.16's ``debounce``).

    While the job that took ``id`` is pending (or for ``ttl`` ms), adds with
    the same id add nothing and return that job's id.

    Args:
        id: The deduplication id.
        ttl: Hold the id this many ms (with the job's life as the other bound).
        extend: Each duplicate restarts the TTL (BullMQ).
        replace: A duplicate replaces the owner while the owner is delayed (BullMQ).
        keep_last_if_active: A duplicate arriving while the owner runs is added
            when the owner ends; the latest one wins (BullMQ).
        reschedule: A duplicate moves a delayed owner to its own delay (BullMQ).
    """

    id: str
    ttl: int | None = None
    extend: bool = False
    replace: bool = False
    keep_last_if_active: bool = False
    reschedule: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise InvalidOptionsError(f"deduplication.id: must be a non-empty string, "
                                      f"got {self.id!r}")
        if self.ttl is not None and (
            isinstance(self.ttl, bool) or not isinstance(self.ttl, int) or self.ttl < 1
        ):
            raise InvalidOptionsError(f"deduplication.ttl: must be an int >= 1 (ms), "
                                      f"got {self.ttl!r}")
        for name in ("extend", "replace", "keep_last_if_active", "reschedule"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidOptionsError(f"deduplication.{name}: must be a bool")


@dataclass(frozen=True, slots=True, kw_only=True)
class ParentRef:
    """A flow child's parent (BullMQ): the parent job and what a failure does to it.

    Args:
        id: The parent job's id.
        queue: The parent's queue, qualified: ``"<prefix>:<queue>"``.
        on_failure: What this child failing for good does to the parent:
            ``fail_parent`` (the parent fails), ``continue_parent`` (the parent
            runs now), ``ignore`` (recorded; the parent runs once the rest are
            done), ``remove_dependency`` (forgotten; likewise), or None: the
            parent waits for this child for ever, as BullMQ does.
    """

    id: str
    queue: str
    on_failure: OnChildFailure | None = None

    @property
    def key(self) -> str:
        """The parent's job key."""
        return f"{self.queue}:{self.id}"


def _ms(name: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidOptionsError(f"repeat.{name}: must be ms since the epoch, got {value!r}")
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class SchedulerRepeat:
    """The repeat options of a job scheduler (BullMQ's ``RepeatOptions``).

    Args:
        every: Run every this many ms (aligned to the epoch, at ``offset``).
        pattern: A cron pattern (5 fields, or 6 with seconds first), in ``tz``.
        tz: The pattern's time zone (None: the process's local zone).
        limit: Stop after this many iterations.
        start_date, end_date: ms since the epoch.
        offset: ms into each ``every`` interval.
        immediately: A ``pattern`` scheduler's first iteration runs now.
    """

    every: int | None = None
    pattern: str | None = None
    tz: str | None = None
    limit: int | None = None
    start_date: int | None = None
    end_date: int | None = None
    offset: int | None = None
    immediately: bool = False

    def __post_init__(self) -> None:
        if (self.every is None) == (self.pattern is None):
            raise InvalidOptionsError("repeat: give exactly one of every and pattern")
        if self.every is not None and (
            isinstance(self.every, bool) or not isinstance(self.every, int) or self.every < 1
        ):
            raise InvalidOptionsError(f"repeat.every: must be ms >= 1, got {self.every!r}")
        if self.pattern is not None:
            validate_cron(self.pattern)
        if self.immediately and self.start_date is not None:
            raise InvalidOptionsError("repeat: immediately and start_date exclude each other")
        if self.limit is not None and (
            isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit < 1
        ):
            raise InvalidOptionsError(f"repeat.limit: must be an int >= 1, got {self.limit!r}")
        _ms("start_date", self.start_date)
        _ms("end_date", self.end_date)
        _ms("offset", self.offset)
        if self.tz is not None:
            zone(self.tz)  # raises InvalidOptionsError for an unknown zone

    def to_wire(self) -> dict[str, Any]:
        """The options as the iteration's ``opts.repeat`` stores them (set ones only)."""
        out: dict[str, Any] = {}
        for name, key in (("pattern", "pattern"), ("every", "every"), ("tz", "tz"),
                          ("limit", "limit"), ("start_date", "startDate"),
                          ("end_date", "endDate")):
            value = getattr(self, name)
            if value is not None:
                out[key] = value
        return out

    @classmethod
    def from_wire(cls, raw: Mapping[str, Any]) -> SchedulerRepeat:
        """Read ``opts.repeat`` as a worker finds it on an iteration."""
        def num(key: str) -> int | None:
            value = raw.get(key)
            if isinstance(value, bool) or not isinstance(value, int | float):
                return None
            return int(value) if math.isfinite(value) else None
        pattern = raw.get("pattern")
        tz = raw.get("tz")
        return cls(
            every=num("every"), pattern=pattern if isinstance(pattern, str) else None,
            tz=tz if isinstance(tz, str) else None, limit=num("limit"),
            start_date=num("startDate"), end_date=num("endDate"), offset=num("offset"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class NewJob:
    """One job to add: what the add scripts of every format need.

    ``opts`` is the format's stored options JSON (from :meth:`QueueProtocol.encode_options`);
    ``delay``, ``priority`` and ``lifo`` repeat what it says, so that scripts
    need not parse it. ``job_id`` "" takes the next counter value.
    """

    job_id: str
    name: str
    data: str
    opts: str
    timestamp: int
    delay: int = 0
    priority: int = 0
    lifo: bool = False
    dedup: Dedup | None = None
    parent: ParentRef | None = None
    waiting_children: bool = False


class AddResult(NamedTuple):
    """An add's outcome: the id, and whether this call created the job.

    ``created`` is False for an existing custom id (nothing written) and for a
    deduplicated add (``id`` is then the job that holds the deduplication id,
    and ``deduplicated`` is True).
    """

    id: str
    created: bool
    deduplicated: bool = False


@dataclass(frozen=True, slots=True)
class Keep:
    """Retention of a finished job (removeOnComplete / removeOnFail).

    ``count``: -1 keeps all, 0 deletes the job, n keeps the newest n;
    ``age``: seconds, or None; ``limit``: most jobs removed by age at once.
    """

    count: int
    age: int | None = None
    limit: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerSpec:
    """What a worker fetches with; the same for all its jobs, so built once.

    Args:
        lock_duration: Lock TTL (ms) of each started job.
        limiter_max, limiter_duration: The worker's rate limit (BullMQ: a
            global one in ``meta`` wins).
        bounce_back, group_key: Bull's limiter variants.
        name: The worker's name (BullMQ stores it as ``processedBy``).
        metrics_max_points: Collect per-minute metrics, keeping this many points.
    """

    lock_duration: int
    limiter_max: int | None = None
    limiter_duration: int | None = None
    bounce_back: bool = False
    group_key: bool = False
    name: str | None = None
    metrics_max_points: int | None = None


class Idle(NamedTuple):
    """A fetch that started no job, and what to wait for before the next one.

    ``rate_limited_ms`` > 0: the limiter allows the next start in that many ms.
    ``next_due`` > 0: no job is ready; the earliest delayed job is due then (ms).
    Both 0: nothing to do until a job arrives.
    """

    rate_limited_ms: int = 0
    next_due: int = 0


class Wake(NamedTuple):
    """What ended a blocking wait for work (:meth:`QueueProtocol.wait_for_job`).

    ``job_id``: a job the wait itself moved into ``active`` (Bull's BLMOVE;
    pass it to ``move_to_active``), or "" (BullMQ's marker: fetch normally).
    ``due``: fetch at this time (ms); 0 means now.
    """

    job_id: str = ""
    due: int = 0


class Attempt(NamedTuple):
    """A failed attempt, as a finishing call records it on the job."""

    attempts_made: int  # including this attempt (Bull writes it; BullMQ counts it itself)
    failed_reason: str
    stacktrace: str  # JSON list of the traces kept


class QueueEvent(NamedTuple):
    """One queue-wide event, in BullMQ's stream vocabulary for both formats.

    ``name`` is BullMQ's event name (``added``, ``waiting``, ``active``,
    ``completed``, ``failed``, ``progress``, ``delayed``, ``stalled``,
    ``paused``, ``resumed``, ``drained``, ``removed``, ``deduplicated``,
    ``duplicated``, ``retries-exhausted``, ``waiting-children``, ``cleaned``...);
    ``fields`` holds its other fields as strings (``returnvalue`` and
    ``data`` are JSON text, ``failedReason`` plain text, ``prev``, ``delay``).
    ``id`` is the stream entry id (BullMQ) or "" (Bull's pub/sub).
    """

    name: str
    job_id: str
    fields: Mapping[str, str]
    id: str = ""
