"""Repeatable jobs: the :class:`Repeat` option and Bull's schedule arithmetic.

Bull compatibility (bull-protocol.md §5), checked against golden vectors from
real Bull (cron-parser 4.9):

* ``every`` is aligned to the epoch: the next time after ``t`` is
  ``floor(t / every) * every + every``; ``start_date`` does not apply to it.
* ``cron`` takes 5 fields, or 6 with **seconds first**. The next time is the
  first match strictly after the current time, at whole seconds.
* Daylight saving, where croniter alone would differ from Bull: a wall time in
  the skipped hour fires shifted forward by the gap (02:30 on a spring-forward
  night fires at 03:30); in the repeated hour, a cron whose hour field is not
  ``*`` fires only in the first pass (01:30 fires once, not twice), while an
  hourly-or-finer cron fires in both passes.
* Missed ticks are not replayed: after downtime, the schedule resumes from now.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from pyqueue import _durations as dur
from pyqueue._durations import check_safe, finite_int
from pyqueue.errors import InvalidOptionsError

_MAX_CANDIDATES = 10_000


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def to_millis(value: datetime | int | float | str, field: str) -> int:
    """A date option as epoch ms (datetimes without tzinfo are taken as UTC)."""
    if isinstance(value, bool):
        raise InvalidOptionsError(f"{field}: must be a datetime, epoch ms or ISO string")
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidOptionsError(f"{field}: not an ISO 8601 date: {value!r}") from None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return int(value.timestamp() * 1000)
    raise InvalidOptionsError(f"{field}: must be a datetime, epoch ms or ISO string")


def _local_zone() -> tzinfo:
    name = os.environ.get("TZ")
    if name:
        try:
            return ZoneInfo(name.lstrip(":"))
        except (ZoneInfoNotFoundError, ValueError):
            pass
    try:
        with open("/etc/localtime", "rb") as fh:
            return ZoneInfo.from_file(fh)
    except OSError:
        return UTC


def zone(tz: str | None) -> tzinfo:
    """The zone for ``tz``; ``None`` means the process's local zone, as in Node."""
    if tz is None:
        return _local_zone()
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidOptionsError(f"repeat.tz: unknown time zone {tz!r}") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class Repeat:
    """A repeat schedule: exactly one of ``cron`` or ``every``.

    Args:
        cron: 5-field cron, or 6 fields with seconds first (Bull's parser).
        every: Period in ms (or a timedelta), aligned to the epoch.
        tz: IANA time zone for ``cron`` (default: the process's local zone).
        start_date: No instance fires before this (cron only, as in Bull).
        end_date: No instance fires after this.
        limit: Stop after this many instances.
        job_id: Custom id part of the repeat key (distinguishes schedules).
    """

    cron: str | None = None
    every: int | None = None
    tz: str | None = None
    start_date: datetime | int | str | None = None
    end_date: datetime | int | str | None = None
    limit: int | None = None
    job_id: str | None = None
    count: int = 0

    if TYPE_CHECKING:

        def __init__(
            self, *, cron: str | None = ..., every: int | timedelta | None = ...,
            tz: str | None = ..., start_date: datetime | int | str | None = ...,
            end_date: datetime | int | str | None = ..., limit: int | None = ...,
            job_id: str | None = ..., count: int = ...,
        ) -> None: ...

    def __post_init__(self) -> None:
        if (self.cron is None) == (self.every is None):
            raise InvalidOptionsError("repeat: give exactly one of cron or every")
        if self.every is not None:
            object.__setattr__(self, "every", dur.whole_ms("repeat.every", self.every,
                                                           minimum=1))
        if self.cron is not None:
            validate_cron(self.cron)
            zone(self.tz)
        if self.limit is not None and (
            isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit < 1
        ):
            raise InvalidOptionsError(f"repeat.limit: must be an int >= 1, got {self.limit!r}")
        if self.limit is not None:
            check_safe("repeat.limit", self.limit)
        if self.start_date is not None:
            to_millis(self.start_date, "repeat.start_date")
        if self.end_date is not None:
            to_millis(self.end_date, "repeat.end_date")
        if self.job_id is not None and (not isinstance(self.job_id, str) or ":" in self.job_id):
            # Bull splits repeat keys at ':' when it lists them or removes one by key,
            # so such a schedule is listed with wrong fields and cannot be removed by
            # its key from Node. Schedules Node declared anyway are read by from_wire.
            raise InvalidOptionsError(
                f"repeat.job_id: must be a string without ':' (Bull's repeat keys are "
                f"':'-separated), got {self.job_id!r}"
            )

    @property
    def end_ms(self) -> int | None:
        return None if self.end_date is None else to_millis(self.end_date, "repeat.end_date")

    @property
    def start_ms(self) -> int | None:
        return None if self.start_date is None else to_millis(self.start_date, "repeat.start_date")

    def key(self, name: str) -> str:
        """The member of ``<prefix>:<queue>:repeat`` for this schedule."""
        end = self.end_ms
        parts = [name, self.job_id or "", "" if end is None else str(end)]
        if self.cron is not None:
            parts += [self.tz or "", self.cron]
        else:
            parts.append(str(self.every))
        return ":".join(parts)

    def id_prefix(self, name: str) -> str:
        """``repeat:<md5>:``, the id prefix of every instance of this schedule."""
        id_part = f"{self.job_id}:" if self.job_id else ":"
        return f"repeat:{_md5(name + id_part + _md5(self.key(name)))}:"

    def instance_id(self, name: str, millis: int) -> str:
        return f"{self.id_prefix(name)}{millis}"

    def next_millis(self, now: int, prev_millis: int = 0) -> int | None:
        """The next fire time after ``max(now, prev_millis)``, or None when the schedule ended."""
        base = max(now, prev_millis)
        if self.every is not None:
            nxt: int | None = (base // self.every) * self.every + self.every
        else:
            assert self.cron is not None
            start = self.start_ms
            current = start if start is not None and start > base else base
            nxt = next_cron_time(self.cron, zone(self.tz), current)
        end = self.end_ms
        if nxt is not None and end is not None and nxt > end:
            return None
        return nxt

    def to_wire(self, *, key: str | None = None, count: int | None = None) -> dict[str, Any]:
        """Bull's ``opts.repeat`` object."""
        out: dict[str, Any] = {}
        if count is not None:
            out["count"] = count
        if key is not None:
            out["key"] = key
        if self.cron is not None:
            out["cron"] = self.cron
        if self.every is not None:
            out["every"] = self.every
        if self.tz is not None:
            out["tz"] = self.tz
        for field, value in (("startDate", self.start_date), ("endDate", self.end_date)):
            if value is not None:
                out[field] = _date_to_wire(value)
        if self.limit is not None:
            out["limit"] = self.limit
        if self.job_id is not None:
            out["jobId"] = self.job_id
        return out

    @classmethod
    def from_wire(cls, raw: dict[str, Any]) -> Repeat:
        """Read ``opts.repeat`` written by Node Bull or pyqueue."""
        job_id = raw.get("jobId")
        limit = finite_int(raw.get("limit"))
        repeat = cls(
            cron=raw.get("cron") if isinstance(raw.get("cron"), str) else None,
            every=finite_int(raw.get("every")) if not raw.get("cron") else None,
            tz=raw.get("tz") if isinstance(raw.get("tz"), str) and raw.get("tz") else None,
            start_date=raw.get("startDate"),
            end_date=raw.get("endDate"),
            limit=limit if limit is not None and limit >= 1 else None,
            count=finite_int(raw.get("count")) or 0,
        )
        if job_id not in (None, ""):
            # Whatever id Node stored is part of the schedule's key: keep it as is,
            # ':' included, so chaining computes the key and ids Node computes.
            object.__setattr__(repeat, "job_id", str(job_id))
        return repeat


def _date_to_wire(value: datetime | int | str) -> int | str:
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
            f"{aware.microsecond // 1000:03d}Z"
        )
    return value


def validate_cron(expr: object) -> None:
    """Raise InvalidOptionsError unless ``expr`` is a cron Bull's parser accepts."""
    if not isinstance(expr, str) or not expr.strip():
        raise InvalidOptionsError(f"repeat.cron: must be a non-empty string, got {expr!r}")
    fields = expr.split()
    if not expr.startswith("@") and len(fields) not in (5, 6):
        raise InvalidOptionsError(f"repeat.cron: expected 5 or 6 fields in {expr!r}")
    if not croniter.is_valid(expr, second_at_beginning=len(fields) == 6):
        raise InvalidOptionsError(f"repeat.cron: invalid expression {expr!r}")


def _hour_is_wildcard(expr: str) -> bool:
    fields = expr.split()
    if expr.startswith("@"):
        return expr in ("@hourly",)
    hour = fields[2] if len(fields) == 6 else fields[1]
    return hour == "*"


def _instants(wall: datetime, tz: tzinfo, both_folds: bool) -> tuple[list[int], bool]:
    """Epoch ms of a naive wall time in ``tz``, and whether it falls in a DST gap.

    A repeated wall time (fold) gives its first pass, plus the second when
    ``both_folds``. A skipped wall time (gap) is read with the offset before the
    jump, which lands after the gap, as Bull's parser does.
    """
    a = int(wall.replace(tzinfo=tz, fold=0).timestamp() * 1000)
    b = int(wall.replace(tzinfo=tz, fold=1).timestamp() * 1000)
    if a == b:
        return [a], False
    if b > a:
        return ([a, b] if both_folds else [a]), False
    return [a], True


def _near_transition(tz: tzinfo, after_ms: int) -> bool:
    hours = 3 * 3600
    seconds = after_ms / 1000
    before = datetime.fromtimestamp(seconds - hours, tz).utcoffset()
    after = datetime.fromtimestamp(seconds + hours, tz).utcoffset()
    return before != after


def next_cron_time(expr: str, tz: tzinfo, after_ms: int) -> int | None:
    """First fire time of ``expr`` in ``tz`` strictly after ``after_ms``.

    Cron fields are matched on local wall-clock time; each match is mapped to
    instants (see the module docstring for the DST rules).
    """
    six = not expr.startswith("@") and len(expr.split()) == 6
    both_folds = _hour_is_wildcard(expr)
    local = datetime.fromtimestamp(after_ms / 1000, tz).replace(tzinfo=None, microsecond=0)
    # Around a fold the next instant can have an earlier wall time than the
    # current one, so look a little behind "now" near a transition.
    near = _near_transition(tz, after_ms)
    start = local - timedelta(hours=3) if near else local - timedelta(seconds=1)
    walls = croniter(expr, start, second_at_beginning=six)
    best: int | None = None
    best_wall: datetime | None = None
    for _ in range(_MAX_CANDIDATES):
        try:
            wall = walls.get_next(datetime)
        except (StopIteration, ValueError, KeyError):
            return best
        if best_wall is not None and (not near or wall - best_wall > timedelta(hours=3)):
            return best
        instants, in_gap = _instants(wall, tz, both_folds)
        if in_gap and wall <= local:
            # The wall clock already passed this skipped time: Bull never fires it.
            continue
        for instant in instants:
            if instant > after_ms and (best is None or instant < best):
                best, best_wall = instant, wall
    return best
