"""Pure conversions from Bull 4's wire format to BullMQ 6's, for one job or schedule.

No Redis here: the runner reads what it needs, these functions decide, and the
Lua commands write. What changes on the way (the Bull name first):

* options: ``debounce`` -> ``de`` (BullMQ's deduplication, same ``{id, ttl}``);
  a numeric ``backoff`` -> ``{type: fixed, delay}``; ``repeat`` -> BullMQ's
  iteration shape (``cron`` -> ``pattern``, no ``key``/``jobId``); ``timeout``
  and ``preventParsingData`` dropped (BullMQ has neither: the data of such a
  job becomes a JSON string, which is what Node Bull handed the processor);
  a priority above BullMQ's limit lowered to it; the rest kept as is.
* ids: a custom id BullMQ accepts is kept; one it refuses (digits only, a
  ``:``, a queue key's name) gets a new id, recorded; a counter id is kept
  when the target has no job with it, else takes the target's next counter
  value (decided in Lua, where the target is seen atomically).
* the job hash (in Lua): ``attemptsMade`` -> ``atm`` (one more for a completed
  job: BullMQ counts the successful attempt too), ``stalledCounter`` ->
  ``stc``, ``ats`` (attempts started) = ``atm + stc``; all else copied.
* repeatable jobs -> job schedulers (:func:`schedule_plan`).

Backoff: Bull's ``exponential`` waits ``(2^n - 1) x delay`` before retry n,
BullMQ's ``2^(n-1) x delay``: the first retry waits the same, later ones less.
The option is kept (it is the app's intent); :data:`NOTE_EXPONENTIAL` says so.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from pyqueue._protocol.bull.wire import loads
from pyqueue._protocol.bullmq.schedulers import iteration_opts, stored
from pyqueue._protocol.bullmq.wire import MAX_PRIORITY, check_job_id
from pyqueue._protocol.values import SchedulerRepeat
from pyqueue.errors import InvalidOptionsError
from pyqueue.repeat import to_millis

NOTE_TIMEOUT = "timeout dropped (BullMQ has no job timeout)"
NOTE_PREVENT_PARSING = "preventParsingData dropped (the data is kept as a JSON string)"
NOTE_EXPONENTIAL = ("exponential backoff: BullMQ waits 2^(n-1) x delay before retry n, "
                    "Bull (2^n - 1) x delay")
NOTE_PRIORITY = f"priority above BullMQ's limit lowered to {MAX_PRIORITY}"

# Per-iteration options a Bull repeat instance carries that are no template's.
_INSTANCE_ONLY = ("jobId", "delay", "timestamp", "prevMillis", "repeat", "repeatJobKey")
_DIGITS = re.compile(r"^[0-9]+$")

IdMode = Literal["keep", "auto", "map"]


@dataclass(frozen=True, slots=True)
class Converted:
    """One job's BullMQ options and how its id moves.

    Attributes:
        opts: The BullMQ ``opts`` object to store.
        id_mode: ``keep`` (the same id; a target job with it makes this one a
            duplicate), ``auto`` (a counter id: kept if free in the target,
            else a new counter value), ``map`` (``new_id``, or the next
            candidate if the target has it).
        new_id: The proposed id (the Bull id unless mapped).
        data_as_string: The stored data is raw text (``preventParsingData``):
            store it as a JSON string.
        priority: The priority to file it under (0: none).
        notes: What changed beyond renaming, for the report.
    """

    opts: dict[str, Any]
    id_mode: IdMode
    new_id: str
    data_as_string: bool
    priority: int
    notes: tuple[str, ...]


def repeat_to_bullmq(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Bull's ``opts.repeat`` as a BullMQ iteration's: ``cron`` -> ``pattern``,
    ``startDate`` (cron only) / ``endDate`` in ms, no ``key`` / ``jobId``."""
    out: dict[str, Any] = {}
    cron = raw.get("cron")
    if isinstance(cron, str) and cron:
        out["pattern"] = cron
        start = _date_ms(raw.get("startDate"))
        if start is not None:
            out["startDate"] = start
    elif raw.get("every") is not None:
        out["every"] = raw["every"]
    if isinstance(raw.get("tz"), str) and raw["tz"]:
        out["tz"] = raw["tz"]
    end = _date_ms(raw.get("endDate"))
    if end is not None:
        out["endDate"] = end
    for key in ("limit", "count"):
        if raw.get(key) is not None:
            out[key] = raw[key]
    return out


def _date_ms(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return to_millis(value, "repeat date")
    except InvalidOptionsError:
        return None


def bullmq_options(opts: Mapping[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """A Bull job's options under BullMQ's stored names, and what changed."""
    out: dict[str, Any] = {}
    notes: list[str] = []
    for key, value in opts.items():
        if key == "timeout":
            notes.append(NOTE_TIMEOUT)
        elif key == "preventParsingData":
            if value is True:
                notes.append(NOTE_PREVENT_PARSING)
        elif key == "debounce":
            if isinstance(value, Mapping) and value.get("id"):
                out["de"] = {k: value[k] for k in ("id", "ttl") if value.get(k) is not None}
        elif key == "repeat":
            if isinstance(value, Mapping):
                out["repeat"] = repeat_to_bullmq(value)
        elif key == "backoff":
            if isinstance(value, int | float) and not isinstance(value, bool):
                out["backoff"] = {"type": "fixed", "delay": value}
            else:
                out["backoff"] = value
                if isinstance(value, Mapping) and value.get("type") == "exponential":
                    notes.append(NOTE_EXPONENTIAL)
        elif key == "priority":
            too_high = isinstance(value, int | float) and not isinstance(value, bool) \
                and value > MAX_PRIORITY
            if too_high:
                notes.append(NOTE_PRIORITY)
            out["priority"] = MAX_PRIORITY if too_high else value
        else:
            out[key] = value
    return out, tuple(notes)


def json_object(raw: bytes | None) -> dict[str, Any]:
    """A stored JSON object (a job's ``opts``); ``{}`` for anything unreadable."""
    if raw is None:
        return {}
    try:
        value = loads(raw.decode())
    except (ValueError, UnicodeDecodeError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


def is_counter_id(job_id: str, opts: Mapping[str, Any]) -> bool:
    """Whether Bull took the id from its counter (no ``opts.jobId``, digits)."""
    return "jobId" not in opts and bool(_DIGITS.match(job_id))


def accepted(job_id: str) -> bool:
    """Whether BullMQ takes ``job_id`` as a custom id."""
    try:
        check_job_id(job_id)
    except InvalidOptionsError:
        return False
    return True


def id_candidate(job_id: str, attempt: int = 0) -> str:
    """The ``attempt``-th new id for a Bull id BullMQ refuses (or that is taken).

    ``:`` becomes ``-``; an id still refused (digits, a queue key's name, "0")
    is prefixed ``bull-``; later attempts append ``-2``, ``-3``...
    """
    base = job_id.replace(":", "-") or "bull-empty"
    if not accepted(base):
        base = f"bull-{base}"
    if attempt:
        base = f"{base}-{attempt + 1}"
    return base


def convert_job(job_id: str, opts: Mapping[str, Any], priority: int, *,
                iteration_id: str | None = None) -> Converted:
    """How one Bull job becomes a BullMQ job (the hash fields are Lua's part).

    Args:
        job_id: The Bull id.
        opts: Its stored options (decoded JSON).
        priority: Its ``priority`` field.
        iteration_id: The job scheduler iteration id a Bull repeat instance
            takes (``repeat:<scheduler>:<ms>``), when it does.
    """
    out, notes = bullmq_options(opts)
    mode: IdMode
    new_id = job_id
    if iteration_id is not None:
        mode, new_id = "map", iteration_id
    elif is_counter_id(job_id, opts):
        mode = "auto"
    elif accepted(job_id):
        mode = "keep"
    else:
        mode, new_id = "map", id_candidate(job_id)
    if "jobId" in out or iteration_id is not None:
        out["jobId"] = new_id
    bounded = min(max(priority, 0), MAX_PRIORITY)
    if bounded != priority and NOTE_PRIORITY not in notes:
        notes = (*notes, NOTE_PRIORITY)
    return Converted(out, mode, new_id, opts.get("preventParsingData") is True, bounded, notes)


# --- repeatable jobs -> job schedulers -------------------------------------------


@dataclass(frozen=True, slots=True)
class BullSchedule:
    """One member of Bull's ``repeat`` sorted set, and what is known of it."""

    key: str
    next_millis: int
    name: str
    repeat: Mapping[str, Any]
    data: str = "{}"
    opts: Mapping[str, Any] | None = None


def parse_repeat_key(key: str) -> tuple[str, dict[str, Any]]:
    """``(name, repeat options)`` read from a Bull repeat key, as Bull's
    getRepeatableJobs splits it (``name:id:endDate:tz:cron`` or
    ``name:id:endDate:every``). A name or cron with ``:`` is misread, as in Bull."""
    parts = key.split(":")
    name = parts[0] or "__default__"
    raw: dict[str, Any] = {}
    if len(parts) > 1 and parts[1]:
        raw["jobId"] = parts[1]
    if len(parts) > 2 and parts[2].isdigit():
        raw["endDate"] = int(parts[2])
    if len(parts) == 4:
        raw["every"] = int(parts[3]) if parts[3].isdigit() else parts[3]
    elif len(parts) >= 5:
        if parts[3]:
            raw["tz"] = parts[3]
        raw["cron"] = ":".join(parts[4:])
    return name, raw


def scheduler_repeat(raw: Mapping[str, Any]) -> SchedulerRepeat:
    """Bull's repeat options as a BullMQ scheduler's (raises InvalidOptionsError).

    Bull ignores ``startDate`` for ``every`` and aligns ``every`` to the epoch:
    the scheduler gets no start date and the offset 0 (:func:`schedule_plan`).
    """
    converted = repeat_to_bullmq(raw)
    every = converted.get("every")
    limit = converted.get("limit")
    return SchedulerRepeat(
        every=int(every) if isinstance(every, int | float) and not isinstance(every, bool)
        else None,
        pattern=converted.get("pattern"), tz=converted.get("tz"),
        limit=int(limit) if isinstance(limit, int | float) and limit >= 1 else None,
        start_date=converted.get("startDate"), end_date=converted.get("endDate"),
    )


def scheduler_id_base(name: str, raw: Mapping[str, Any], queue: str) -> str:
    """A scheduler id for a Bull schedule: its ``jobId``, else its job name,
    else (a job added without a name, Bull's ``__default__``) the queue's name;
    without ``:`` (which BullMQ reads as an old repeat key's shape)."""
    base = str(raw.get("jobId") or "") or (name if name != "__default__" else queue)
    return base.replace(":", "-") or "bull-repeat"


def scheduler_id_variant(base: str, key: str) -> str:
    """The id for a second Bull schedule whose base id is taken: base + a digest of its key."""
    digest = hashlib.md5(key.encode(), usedforsecurity=False).hexdigest()[:8]
    return f"{base}-{digest}"


@dataclass(frozen=True, slots=True)
class SchedulePlan:
    """A job scheduler to create in place of a Bull repeatable job.

    ``iteration_opts`` is the stored opts of its next iteration, due at
    ``next_millis``; ``template_opts`` the stored template options.
    """

    scheduler_id: str
    repeat: SchedulerRepeat
    name: str
    data: str
    template_opts: dict[str, Any]
    iteration_opts: dict[str, Any]
    next_millis: int
    count: int
    notes: tuple[str, ...]


def schedule_plan(schedule: BullSchedule, scheduler_id: str, *, now: int) -> SchedulePlan:
    """The scheduler for one Bull schedule, with the same next run.

    Raises:
        InvalidOptionsError: repeat options BullMQ cannot take.
    """
    repeat = scheduler_repeat(schedule.repeat)
    if repeat.every is not None and schedule.next_millis % repeat.every:
        repeat = replace(repeat, offset=schedule.next_millis % repeat.every)
    opts, notes = bullmq_options(schedule.opts or {})
    template = {k: v for k, v in opts.items() if k not in _INSTANCE_ONLY}
    count_raw = schedule.repeat.get("count")
    count = int(count_raw) if isinstance(count_raw, int | float) and count_raw >= 1 else 1
    template_stored = stored(template)
    pattern_next = schedule.next_millis if repeat.pattern is not None else None
    iteration = iteration_opts(scheduler_id, repeat, template_stored, count=count,
                               next_millis=pattern_next, now=now)
    return SchedulePlan(scheduler_id, repeat, schedule.name, schedule.data, template_stored,
                        iteration, schedule.next_millis, count, notes)
