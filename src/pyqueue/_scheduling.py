"""Scheduling repeat instances (bull-protocol.md §5.1 and §5.5).

Both the producer's ``add(..., repeat=...)`` and the worker's chaining go
through :func:`schedule_next`, so Python computes exactly what Node computes.
One enqueue per tick holds because an instance id is deterministic (a second
add of the same tick is a no-op) and because the script refuses an instance
older than the one the repeat set already points at.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

from pyqueue._protocol.bull import wire
from pyqueue._protocol.bull.script_args import AddJobSpec
from pyqueue.errors import InvalidOptionsError
from pyqueue.options import JobOptions, finite_int
from pyqueue.repeat import Repeat

if TYPE_CHECKING:
    from pyqueue._protocol.bull.scripts import Scripts

DEFAULT_NAME = "__default__"
_INSTANCE_ONLY = ("jobId", "delay", "timestamp", "prevMillis", "repeat")


def instance_spec(
    name: str,
    data_json: str,
    base_opts: dict[str, Any],
    repeat: Repeat,
    *,
    key: str,
    count: int,
    millis: int,
    now: int,
) -> AddJobSpec:
    """The addJob arguments of the instance firing at ``millis``."""
    opts = {k: v for k, v in base_opts.items() if k not in _INSTANCE_ONLY}
    opts["repeat"] = repeat.to_wire(key=key, count=count)
    opts["jobId"] = repeat.instance_id(name, millis)
    opts["delay"] = max(0, millis - now)
    opts["timestamp"] = now
    opts["prevMillis"] = millis
    opts.setdefault("attempts", 1)
    priority = opts.get("priority")
    return AddJobSpec(
        job_id=opts["jobId"],
        name=name,
        data=data_json,
        opts=wire.dumps(opts),
        timestamp=now,
        delay=opts["delay"],
        priority=priority if isinstance(priority, int) and priority > 0 else 0,
        lifo=opts.get("lifo") is True,
    )


class Scheduler(Protocol):
    """What scheduling needs of a queue (a Queue is one; no import of ``queue`` here)."""

    token: str

    @property
    def scripts(self) -> Scripts: ...


async def schedule_next(
    queue: Scheduler,
    name: str,
    data_json: str,
    base_opts: dict[str, Any],
    repeat: Repeat,
    *,
    prev_millis: int,
    now: int,
    chain: bool,
) -> str | None:
    """Schedule the instance after ``prev_millis``; returns its id, or None if none."""
    count = repeat.count + 1 if repeat.count else 1
    if repeat.limit is not None and count > repeat.limit:
        return None
    end = repeat.end_ms
    if end is not None and now > end:
        return None
    millis = repeat.next_millis(now, prev_millis)
    if millis is None:
        return None
    key = repeat.key(name)
    spec = instance_spec(
        name, data_json, base_opts, repeat, key=key, count=count, millis=millis, now=now
    )
    return await queue.scripts.add_repeatable_job(
        spec, token=queue.token, repeat_key=key, millis=millis, chain=chain
    )


def declared_repeat(options: JobOptions) -> Repeat:
    """The Repeat of ``add(..., repeat=...)``, with ``job_id`` folded in as Bull does."""
    repeat = options.repeat
    if not isinstance(repeat, Repeat):
        raise InvalidOptionsError(f"repeat: must be a pyqueue.Repeat, got {repeat!r}")
    if options.job_id is not None and repeat.job_id is None:
        if ":" in options.job_id:
            raise InvalidOptionsError("job_id: a repeatable job's id must not contain ':'")
        repeat = replace(repeat, job_id=options.job_id)
    return repeat


async def add_repeatable(
    queue: Scheduler, data_json: str, name: str, options: JobOptions, now: int
) -> str | None:
    """Declare a schedule (idempotent) and make sure its next instance exists.

    Raises:
        InvalidOptionsError: the schedule has no future fire time (for example
            an ``end_date`` in the past); nothing is written.
    """
    repeat = declared_repeat(options)
    end = repeat.end_ms
    if end is not None and now > end:
        raise InvalidOptionsError(f"repeat.end_date: {repeat.end_date!r} is in the past")
    if repeat.next_millis(now) is None:
        raise InvalidOptionsError("repeat: the schedule has no future fire time")
    base = wire.options_to_wire(replace(options, repeat=None, job_id=None), timestamp=now)
    return await schedule_next(
        queue, name, data_json, base, repeat, prev_millis=0, now=now, chain=False
    )


async def chain_from(queue: Scheduler, job_name: str, data_json: str,
                     raw_opts: dict[str, Any], now: int) -> str | None:
    """Schedule the instance after a repeat instance that just became active."""
    raw_repeat = raw_opts.get("repeat")
    if not isinstance(raw_repeat, dict):
        return None
    repeat = Repeat.from_wire(raw_repeat)
    prev_millis = finite_int(raw_opts.get("prevMillis")) or 0
    return await schedule_next(
        queue, job_name, data_json, raw_opts, repeat,
        prev_millis=prev_millis, now=now, chain=True,
    )


_LEADING_INT = re.compile(r"\s*([+-]?\d+)")


def _js_parse_int(text: str | None) -> int | None:
    """JavaScript's ``parseInt(text)``, with NaN as None."""
    found = _LEADING_INT.match(text or "")
    return int(found.group(1)) if found else None


def parse_repeat_key(key: str) -> dict[str, Any]:
    """Bull's ``getRepeatableJobs`` entry fields from a repeat key.

    Bull reads fields by position after splitting at every ':', so a name or job
    id containing ':' shifts them; pyqueue lists such keys the same way so both
    sides show the same entries.
    """
    parts = key.split(":")
    field = [parts[i] if i < len(parts) else None for i in range(5)]
    cron = field[4] or None
    return {
        "key": key,
        "name": field[0],
        "id": field[1] or None,
        "end_date": _js_parse_int(field[2]) or None,
        "tz": (field[3] or None) if cron else None,
        "cron": cron,
        "every": None if cron else _js_parse_int(field[3]),
    }


def _prefix(name: str, job_id: str, key: str) -> str:
    inner = hashlib.md5(key.encode(), usedforsecurity=False).hexdigest()
    outer = hashlib.md5(f"{name}{job_id}:{inner}".encode(), usedforsecurity=False)
    return f"repeat:{outer.hexdigest()}:"


def instance_prefixes_of_key(key: str) -> list[str]:
    """The instance id prefixes a repeat key can stand for, Bull's own reading first.

    The key is ``name:jobId:endDate:every`` or ``name:jobId:endDate:tz:cron``;
    neither the tail fields nor cron contain ':', but a name or job id may, so
    every split of the head into name and job id is a candidate.
    """
    parts = key.split(":")
    bull_name = parts[0] or DEFAULT_NAME
    candidates = [_prefix(bull_name, parts[1] if len(parts) > 1 else "", key)]
    tail = 2 if parts[-1].isdigit() else 3
    head = parts[:-tail]
    for split in range(1, len(head)):
        name = ":".join(head[:split]) or DEFAULT_NAME
        prefix = _prefix(name, ":".join(head[split:]), key)
        if prefix not in candidates:
            candidates.append(prefix)
    return candidates
