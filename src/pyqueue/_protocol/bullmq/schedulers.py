"""BullMQ's job schedulers: the repeat options, next run times and iteration options.

A job scheduler (``Queue.upsertJobScheduler(id, repeat, template)``) makes one
job per tick, named ``repeat:<id>:<ms>``. The scripts keep the scheduler and
add its iterations (``addJobScheduler-10``, ``updateJobScheduler-10``); this
module computes what Node computes in JavaScript before calling them: the
next run of a ``pattern`` (cron, through :func:`pyqueue.repeat.next_cron_time`,
which agrees with cron-parser 5 on the golden vectors in
``tests/data/bullmq-schedulers.json``), and the options each iteration
carries. ``every`` runs are computed by the scripts, as in BullMQ.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pyqueue._protocol.interface import SchedulerRepeat
from pyqueue.errors import InvalidOptionsError
from pyqueue.repeat import next_cron_time, zone

__all__ = ["SchedulerRepeat", "chain_plan", "iteration_opts", "node_job_opts", "pattern_next",
           "stored", "upsert_plan"]

# Node's Job constructor sets these on every job it reads back, before a worker
# copies its options into the next iteration.
_SHORT = {"deduplication": "de", "failParentOnFailure": "fpof",
          "continueParentOnFailure": "cpof", "ignoreDependencyOnFailure": "idof",
          "keepLogs": "kl", "removeDependencyOnFailure": "rdof"}


def pattern_next(repeat: SchedulerRepeat, millis: int, now: int) -> int | None:
    """BullMQ's defaultRepeatStrategy: the first cron match after ``millis``
    (or after the start date, if later); ``now`` when ``immediately``."""
    assert repeat.pattern is not None
    if repeat.immediately:
        return now
    after = max(millis, repeat.start_date or 0)
    return next_cron_time(repeat.pattern, zone(repeat.tz), after)


def node_job_opts(raw_opts: Mapping[str, Any]) -> dict[str, Any]:
    """A job's options as Node's Job constructor holds them (public names):
    ``attempts`` defaults to 0, a numeric backoff is a fixed one, and
    ``repeatJobKey`` is not an option."""
    opts = {k: v for k, v in raw_opts.items() if k != "repeatJobKey"}
    opts = {"attempts": 0, **opts}
    backoff = opts.get("backoff")
    if isinstance(backoff, int | float) and not isinstance(backoff, bool):
        opts["backoff"] = {"type": "fixed", "delay": backoff}
    return opts


def stored(opts: Mapping[str, Any]) -> dict[str, Any]:
    """Public option names to the short ones BullMQ stores (its optsAsJSON)."""
    out: dict[str, Any] = {}
    for key, value in opts.items():
        if value is None:
            continue
        if key == "telemetry" and isinstance(value, Mapping):
            if value.get("metadata") is not None:
                out["tm"] = value["metadata"]
            if value.get("omitContext") is not None:
                out["omc"] = value["omitContext"]
            continue
        out[_SHORT.get(key, key)] = value
    return out


def iteration_opts(
    scheduler_id: str, repeat: SchedulerRepeat, base_opts: Mapping[str, Any], *,
    count: int, next_millis: int | None, now: int,
) -> dict[str, Any]:
    """The stored options of an iteration (BullMQ's getNextJobOpts): the template's
    (or the previous iteration's) options, the repeat options with the iteration
    count, and the iteration's time. The scripts set ``jobId`` and ``delay``."""
    out = dict(base_opts)
    rep = {**(out.get("repeat") or {}), **repeat.to_wire()}
    rep.pop("offset", None)
    if repeat.every is not None and repeat.offset:
        rep["offset"] = repeat.offset
    rep["count"] = count
    out["repeat"] = rep
    out["timestamp"] = now
    out["repeatJobKey"] = scheduler_id
    if next_millis is not None:
        out["prevMillis"] = next_millis
    else:
        out.pop("prevMillis", None)
    return stored(out)


def upsert_plan(
    scheduler_id: str, repeat: SchedulerRepeat, template_opts: Mapping[str, Any], *, now: int,
) -> tuple[int | None, dict[str, Any]] | None:
    """What Queue.upsertJobScheduler sends: ``(pattern next ms or None for every,
    the first iteration's opts)``, or None when the end date has passed.

    Raises:
        InvalidOptionsError: an end date in the past, as BullMQ's Queue refuses it.
    """
    if repeat.end_date is not None and repeat.end_date < now:
        raise InvalidOptionsError("repeat.end_date: must be later than now")
    next_millis = None
    if repeat.pattern is not None:
        found = pattern_next(repeat, now, now)
        if found is None:
            return None
        next_millis = max(found, now)
    opts = iteration_opts(scheduler_id, repeat, template_opts, count=1,
                          next_millis=next_millis, now=now)
    return next_millis, opts


def chain_plan(
    scheduler_id: str, raw_opts: Mapping[str, Any], *, now: int,
) -> tuple[int | None, dict[str, Any]] | None:
    """What a Node Worker computes when it takes an iteration: ``(pattern next ms,
    the next iteration's opts)``, or None when the limit or end date is reached.

    ``raw_opts``: the started iteration's options by public names.
    """
    raw_repeat = raw_opts.get("repeat")
    if not isinstance(raw_repeat, Mapping):
        return None
    try:
        repeat = SchedulerRepeat.from_wire(raw_repeat)
    except InvalidOptionsError:
        return None
    count = int(raw_repeat.get("count") or 0) + 1 if raw_repeat.get("count") else 1
    if repeat.limit is not None and count > repeat.limit:
        return None
    if repeat.end_date is not None and now > repeat.end_date:
        return None
    prev = raw_opts.get("prevMillis")
    prev_millis = int(prev) if isinstance(prev, int | float) and not isinstance(prev, bool) else 0
    at = max(now, prev_millis)
    next_millis = None
    if repeat.pattern is not None:
        found = pattern_next(repeat, at, now)
        if found is None:
            return None
        next_millis = max(found, at)
    opts = iteration_opts(scheduler_id, repeat, node_job_opts(raw_opts), count=count,
                          next_millis=next_millis, now=now)
    return next_millis, opts
