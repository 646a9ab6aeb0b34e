"""The one module that calls the migration's Lua scripts.

One typed async method per script; the KEYS/ARGV come from the pure builders
of :mod:`.script_args`. Replies are decoded here, codes stay codes: what each
means for the run is :mod:`.runner`'s business.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum
from typing import TYPE_CHECKING, Any, NamedTuple

from pyqueue._protocol.migration import script_args as sa
from pyqueue._protocol.migration.lua import registered

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from pyqueue._protocol.migration.convert import SchedulePlan
    from pyqueue._protocol.migration.keys import MigrationKeys


class Moved(IntEnum):
    """migrateJobs' per-job codes (see migrateJobs-19.lua)."""

    MOVED = 1
    DUPLICATE = 2
    GONE = 0
    OPTS_CHANGED = -1
    ID_TAKEN = -2
    ACTIVE = 3
    DANGLING = 4


class JobOutcome(NamedTuple):
    code: Moved
    id: str


class ScheduleOutcome(NamedTuple):
    """migrateSchedule's reply: 1 converted, 2 merged into an existing
    scheduler, 3 over (dropped), 0 gone, -1 its next run changed."""

    code: int
    scheduler_id: str = ""
    iteration_id: str = ""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class MigrationScripts:
    """The migration's script calls for one source and target on one client.

    Args:
        client: An asyncio client created with ``decode_responses=False``.
        keys: The migration's keys.
    """

    def __init__(self, client: aioredis.Redis, keys: MigrationKeys) -> None:
        self._client = client
        self.keys = keys
        self._s = registered(client)

    async def _run(self, command: str, built: sa.ScriptArgs) -> Any:
        keys, args = built
        return await self._s[command](keys=keys, args=args)

    async def begin(self, *, now: int) -> tuple[int, str]:
        """begin-26: ``(1, "")`` started, ``(2, "")`` resumed, ``(-1, base)``
        the target receives another queue (``base``)."""
        raw = await self._run("begin", sa.begin_args(self.keys, now=now))
        return int(raw[0]), _text(raw[1]) if len(raw) > 1 else ""

    async def finish(self, *, now: int) -> bool:
        """finish-11: whether the migration in place is (now) finished."""
        return bool(await self._run("finish", sa.finish_args(self.keys, now=now)))

    async def migrate_jobs(self, state: str, jobs: Sequence[sa.JobMove], *, now: int,
                           stall_grace: int, max_stalled: int) -> list[JobOutcome]:
        """migrateJobs-19: one outcome per job, in order."""
        if not jobs:
            return []
        built = sa.migrate_jobs_args(self.keys, state, jobs, now=now, stall_grace=stall_grace,
                                     max_stalled=max_stalled)
        raw = await self._run("migrateJobs", built)
        return [JobOutcome(Moved(int(raw[i])), _text(raw[i + 1])) for i in range(0, len(raw), 2)]

    async def migrate_schedule(self, plan: SchedulePlan, *, repeat_key: str, expected: int,
                               instance_id: str | None, now: int, fallback_next: int,
                               over: bool) -> ScheduleOutcome:
        """migrateSchedule-17."""
        built = sa.migrate_schedule_args(self.keys, plan, repeat_key=repeat_key,
                                         expected=expected, instance_id=instance_id, now=now,
                                         fallback_next=fallback_next, over=over)
        raw = await self._run("migrateSchedule", built)
        return ScheduleOutcome(int(raw[0]), *(_text(v) for v in raw[1:]))
