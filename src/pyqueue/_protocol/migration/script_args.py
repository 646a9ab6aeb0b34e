"""Pure KEYS/ARGV builders of the migration's scripts.

One builder per script; :func:`checked` asserts the key count matches the
script's file name. :class:`.scripts.MigrationScripts` is their one caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeAlias

from pyqueue._protocol.bullmq.wire import dumps
from pyqueue._protocol.migration.convert import IdMode, SchedulePlan
from pyqueue._protocol.migration.keys import STAGED, MigrationKeys
from pyqueue._protocol.migration.lua import numkeys

Arg: TypeAlias = str | int | float | bytes
ScriptArgs: TypeAlias = tuple[list[str], list[Arg]]

# migrateJobs' ARGV group: the values that describe one job.
ARGS_PER_JOB = 8
BULL_STATES: tuple[str, ...] = ("wait", "paused", "delayed", "active", "completed", "failed")


def checked(command: str, keys: list[str], args: list[Arg]) -> ScriptArgs:
    """``(keys, args)``, after asserting that ``command`` takes ``len(keys)`` KEYS."""
    expected = numkeys(command)
    if len(keys) != expected:
        raise AssertionError(f"{command} takes {expected} keys, got {len(keys)}")
    return keys, args


@dataclass(frozen=True, slots=True)
class JobMove:
    """One job of a migrateJobs call (see migrateJobs-19.lua's ARGV)."""

    job_id: str
    new_id: str
    mode: IdMode
    opts_json: str
    priority: int
    data_as_string: bool
    scheduler_id: str | None
    opts_sha1: str


class _MetricsKeys(Protocol):
    def metrics(self, kind: str) -> str: ...
    def metrics_data(self, kind: str) -> str: ...


def _metrics(keys: _MetricsKeys) -> list[str]:
    out: list[str] = []
    for kind in ("completed", "failed"):
        out += [keys.metrics(kind), keys.metrics_data(kind)]
    return out


def begin_args(mk: MigrationKeys, *, now: int) -> ScriptArgs:
    """begin-26."""
    src, dst = mk.source, mk.target
    keys = [mk.state, src.meta_paused, src.meta, dst.meta, *_metrics(src), *_metrics(dst),
            *(src.key(name) for name in STAGED), *mk.staged_keys]
    return checked("begin", keys, [src.base, dst.base, now, "1" if mk.in_place else "0"])


def finish_args(mk: MigrationKeys, *, now: int) -> ScriptArgs:
    """finish-11."""
    keys = [mk.state, mk.suspects, *mk.staged_keys, mk.source.limiter_index,
            mk.target.active]
    return checked("finish", keys, [now])


def _target_keys(mk: MigrationKeys) -> list[str]:
    t = mk.target
    return [t.wait, t.prioritized, t.priority_counter, t.delayed, t.marker, t.meta, t.active,
            t.events, t.completed, t.failed, t.id]


def migrate_jobs_args(mk: MigrationKeys, state: str, jobs: Sequence[JobMove], *, now: int,
                      stall_grace: int, max_stalled: int) -> ScriptArgs:
    """migrateJobs-19: ``jobs``, all in Bull state ``state``."""
    if state not in BULL_STATES:
        raise ValueError(f"unknown Bull state {state!r}")
    b = mk.bull
    keys = [b.state_key(state), b.priority, mk.source.stalled, mk.source.limiter_index,
            *_target_keys(mk), mk.ids, mk.state, mk.suspects, mk.source.id]
    args: list[Arg] = [mk.source.base, mk.target.base, state, now, stall_grace, max_stalled]
    for job in jobs:
        args += [job.job_id, job.new_id, job.mode, job.opts_json, job.priority,
                 "1" if job.data_as_string else "0", job.scheduler_id or "", job.opts_sha1]
    return checked("migrateJobs", keys, args)


def _opt(value: int | str | None) -> Arg:
    return "" if value is None else value


def migrate_schedule_args(mk: MigrationKeys, plan: SchedulePlan, *, repeat_key: str,
                          expected: int, instance_id: str | None, now: int,
                          fallback_next: int, over: bool) -> ScriptArgs:
    """migrateSchedule-17: one Bull schedule as the scheduler ``plan`` describes."""
    b, t = mk.bull, mk.target
    keys = [b.repeat, b.delayed, b.wait, b.paused, b.priority, t.repeat, t.delayed, t.wait,
            t.prioritized, t.priority_counter, t.marker, t.meta, t.active, t.events, t.id,
            mk.schedulers, mk.state]
    r = plan.repeat
    args: list[Arg] = [
        mk.source.base, t.base, repeat_key, expected, instance_id or "", plan.scheduler_id, now,
        plan.name, plan.data, dumps(plan.template_opts), dumps(plan.iteration_opts),
        _opt(r.every), _opt(r.pattern), _opt(r.tz), _opt(r.limit), _opt(r.start_date),
        _opt(r.end_date), _opt(r.offset), plan.count, fallback_next, "1" if over else "0",
    ]
    return checked("migrateSchedule", keys, args)
