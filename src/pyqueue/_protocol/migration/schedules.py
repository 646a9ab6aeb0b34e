"""Bull's repeatable jobs, found and turned into job schedulers.

:func:`read_schedules` lists Bull's ``repeat`` set with what each schedule's
instance says (its name, data, options); :func:`choose_ids` gives each a
scheduler id; :func:`convert_schedules` calls migrateSchedule for each.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from pyqueue._protocol.bullmq.schedulers import pattern_next
from pyqueue._protocol.migration.convert import (
    BullSchedule,
    SchedulePlan,
    json_object,
    parse_repeat_key,
    schedule_plan,
    scheduler_id_base,
    scheduler_id_variant,
)
from pyqueue._protocol.migration.report import ScheduleInfo
from pyqueue.errors import InvalidOptionsError

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from pyqueue._protocol.migration.keys import MigrationKeys
    from pyqueue._protocol.migration.scripts import MigrationScripts

_RETRIES = 5


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def instance_prefix(name: str, job_id: str | None, key: str) -> str:
    """``repeat:<md5>:``, the id prefix of a Bull schedule's instances (Bull §5.4)."""
    id_part = f"{job_id}:" if job_id else ":"
    return f"repeat:{_md5(name + id_part + _md5(key))}:"


@dataclass(frozen=True, slots=True)
class FoundSchedule:
    """A Bull schedule and its pending instance for the next run, if any."""

    schedule: BullSchedule
    instance_id: str | None


async def _instance(client: aioredis.Redis, mk: MigrationKeys, prefix: str,
                    millis: int) -> tuple[str | None, list[Any]]:
    """The pending instance of a schedule at ``millis`` (delayed or waiting),
    else that instance or one in the history: ``(pending id or None, [name,
    data, opts] of whichever was found)``."""
    b = mk.bull
    pending = f"{prefix}{millis}"
    async with client.pipeline(transaction=False) as pipe:
        pipe.hmget(mk.source.job(pending), "name", "data", "opts")
        pipe.zscore(b.delayed, pending)
        pipe.lpos(b.wait, pending)
        pipe.lpos(b.paused, pending)
        fields, *where = await pipe.execute()
    if fields[2] is not None:
        return (pending if any(w is not None for w in where) else None), fields
    for key in (b.completed, b.failed):
        async for member, _score in client.zscan_iter(key, match=f"{prefix}*", count=500):
            found = await client.hmget(mk.source.job(member.decode()), "name", "data", "opts")
            if found[2] is not None:
                return None, found
    return None, [None, None, None]


async def read_schedules(client: aioredis.Redis, mk: MigrationKeys) -> list[FoundSchedule]:
    """Every schedule in Bull's ``repeat`` set (staged, in place), with what
    its instance (or, failing that, its key) says of it."""
    members = cast("list[tuple[bytes, float]]",
                   await client.zrange(mk.bull.repeat, 0, -1, withscores=True))
    out = []
    for raw_key, score in members:
        key = raw_key.decode()
        name, from_key = parse_repeat_key(key)
        prefix = instance_prefix(name, from_key.get("jobId"), key)
        pending, (raw_name, data, raw_opts) = await _instance(client, mk, prefix, int(score))
        opts = json_object(raw_opts)
        repeat = opts.get("repeat") if isinstance(opts.get("repeat"), dict) else from_key
        schedule = BullSchedule(
            key=key, next_millis=int(score),
            name=raw_name.decode() if raw_name else name,
            repeat=cast("Mapping[str, Any]", repeat),
            data=data.decode() if data is not None else "{}", opts=opts or None,
        )
        out.append(FoundSchedule(schedule, pending))
    return out


def choose_ids(found: Iterable[FoundSchedule], chosen: Mapping[str, str],
               queue: str) -> dict[str, str]:
    """A scheduler id per Bull key: the one an earlier run chose (``chosen``),
    else its jobId, name or ``queue``, made unique among this queue's schedules."""
    out = dict(chosen)
    taken = {v: k for k, v in chosen.items()}
    for item in sorted(found, key=lambda f: f.schedule.key):
        key = item.schedule.key
        if key in out:
            continue
        base = scheduler_id_base(item.schedule.name, item.schedule.repeat, queue)
        sid = base if taken.get(base, key) == key else scheduler_id_variant(base, key)
        out[key] = sid
        taken[sid] = key
    return out


def fallback_next(plan: SchedulePlan, now: int) -> int:
    """The next run after ``now``: for a schedule whose run already passed
    while no instance of it is pending (Bull does not replay missed runs)."""
    r = plan.repeat
    if r.every is not None:
        return (now // r.every) * r.every + r.every + (r.offset or 0)
    found = pattern_next(r, now, now)
    return found if found is not None else plan.next_millis


def is_over(plan: SchedulePlan, next_run: int) -> bool:
    """Whether a schedule with no instance pending has run its last: its limit
    is reached, or ``next_run`` (the run after now) falls after its end date."""
    r = plan.repeat
    if r.limit is not None and plan.count >= r.limit:
        return True
    return r.end_date is not None and next_run > r.end_date


def info(plan: SchedulePlan, key: str) -> ScheduleInfo:
    r = plan.repeat
    return ScheduleInfo(key, plan.scheduler_id, plan.name, r.pattern, r.every, r.tz,
                        plan.next_millis)


async def convert_schedules(client: aioredis.Redis, scripts: MigrationScripts, *,
                            now: int) -> tuple[list[ScheduleInfo], list[str]]:
    """Convert every Bull schedule: ``(converted or merged, problems)``.

    A schedule whose options BullMQ cannot take stays in Bull, reported.
    """
    mk = scripts.keys
    done: list[ScheduleInfo] = []
    problems: list[str] = []
    for _ in range(_RETRIES):
        found = await read_schedules(client, mk)
        if not found:
            break
        raw_chosen = cast("dict[bytes, bytes]", await client.hgetall(mk.schedulers))
        ids = choose_ids(found, {k.decode(): v.decode() for k, v in raw_chosen.items()},
                         mk.source.queue)
        changed = False
        for item in found:
            s = item.schedule
            try:
                plan = schedule_plan(s, ids[s.key], now=now)
            except InvalidOptionsError as exc:
                problem = f"schedule {s.key!r} not converted: {exc}"
                if problem not in problems:
                    problems.append(problem)
                continue
            after = fallback_next(plan, now)
            outcome = await scripts.migrate_schedule(
                plan, repeat_key=s.key, expected=s.next_millis, instance_id=item.instance_id,
                now=now, fallback_next=after, over=is_over(plan, after))
            if outcome.code in (1, 2):
                done.append(info(plan, s.key))
            elif outcome.code == -1:
                changed = True
        if not changed:
            break
    return done, problems
