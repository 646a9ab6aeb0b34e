"""The dry run: what a migration would move, rename, schedule and drop. Reads only.

Every Bull job's options are read (in pipelined batches) and put through the
same decisions a run makes (:mod:`.convert`); a counter id the target already
has is shown as "a new counter id" (the run takes the target's next one).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import TYPE_CHECKING, cast

from pyqueue._protocol.migration.checks import blockers, migration_state
from pyqueue._protocol.migration.convert import (
    convert_job,
    json_object,
    schedule_plan,
)
from pyqueue._protocol.migration.report import STATE_ORDER, MigrationPlan
from pyqueue._protocol.migration.schedules import (
    choose_ids,
    fallback_next,
    info,
    is_over,
    read_schedules,
)
from pyqueue.errors import InvalidOptionsError

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from pyqueue._protocol.migration.keys import MigrationKeys

_LISTS = frozenset({"wait", "paused", "active"})
_CHUNK = 500
NEW_COUNTER_ID = "<next counter id>"
NOTE_OVER = ("repeatable job that has run its last (limit or end date), listed by Bull "
             "but never run again: dropped, no scheduler")
NOTE_DUPLICATE = ("pending job whose custom id the target queue has pending: dropped as a "
                  "duplicate (custom ids deduplicate adds)")


async def _ids(client: aioredis.Redis, key: str, is_list: bool) -> list[str]:
    if is_list:
        raw = cast("list[bytes]", await client.lrange(key, 0, -1))
    else:
        raw = cast("list[bytes]", await client.zrange(key, 0, -1))
    return [item.decode() for item in raw]


async def plan(client: aioredis.Redis, mk: MigrationKeys, *, now: int,
               force: bool = False) -> MigrationPlan:
    """What a run would do now (see the module docstring)."""
    out = MigrationPlan(source=mk.source.base[:-1], target=mk.target.base[:-1],
                        in_place=mk.in_place)
    out.blockers = await blockers(client, mk, force=force)
    out.resumed = bool(await migration_state(client, mk))
    notes: Counter[str] = Counter()
    found = await read_schedules(client, mk)
    raw_chosen = cast("dict[bytes, bytes]", await client.hgetall(mk.schedulers))
    ids = choose_ids(found, {k.decode(): v.decode() for k, v in raw_chosen.items()},
                     mk.source.queue)
    for item in found:
        try:
            p = schedule_plan(item.schedule, ids[item.schedule.key], now=now)
        except InvalidOptionsError as exc:
            out.problems.append(f"schedule {item.schedule.key!r} not converted: {exc}")
            continue
        shown = info(p, item.schedule.key)
        if item.instance_id is None and shown.next_run < now:
            after = fallback_next(p, now)
            if is_over(p, after):
                notes[NOTE_OVER] += 1
                continue
            shown = replace(shown, next_run=after)
        out.schedules.append(shown)
    b = mk.bull
    for state in STATE_ORDER:
        job_ids = await _ids(client, b.state_key(state), state in _LISTS)
        out.counts[state] = len(job_ids)
        for start in range(0, len(job_ids), _CHUNK):
            chunk = job_ids[start:start + _CHUNK]
            async with client.pipeline(transaction=False) as pipe:
                for job_id in chunk:
                    pipe.hmget(mk.source.job(job_id), "opts", "priority")
                    pipe.exists(mk.target.job(job_id))
                rows = await pipe.execute()
            for i, job_id in enumerate(chunk):
                raw_opts, raw_priority = rows[2 * i]
                taken = bool(rows[2 * i + 1]) and not mk.in_place
                opts = json_object(raw_opts)
                try:
                    priority = int(raw_priority or b"0")
                except ValueError:
                    priority = 0
                c = convert_job(job_id, opts, priority)
                notes.update(c.notes)
                if c.id_mode == "map":
                    out.renames[job_id] = c.new_id
                elif c.id_mode == "auto" and taken:
                    out.renames[job_id] = NEW_COUNTER_ID
                elif c.id_mode == "keep" and taken:
                    if state in ("completed", "failed"):
                        out.renames[job_id] = f"{c.new_id} (or a free variant)"
                    else:
                        notes[NOTE_DUPLICATE] += 1
    out.counts["prioritized"] = int(await client.zcard(b.priority))
    out.counts["repeat"] = len(found)
    out.notes = dict(notes)
    return out
