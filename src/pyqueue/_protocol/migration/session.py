"""A whole migration: checks, passes until done (or told to stop), the report.

When it is done:

* in place: once Bull's staged structures are empty and no Bull job is left in
  ``active`` (jobs a lock still holds are waited for; once a lock has expired
  the job moves as Bull's stall check would move it); the queue is then marked
  finished and is BullMQ's;
* into another queue: when a pass finds the Bull queue empty (its active jobs
  finished, their history moved too), unless ``follow``: then it keeps
  moving whatever the Bull queue receives until ``stop`` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from pyqueue._protocol.migration.checks import blockers
from pyqueue._protocol.migration.report import MigrationProgress, MigrationReport
from pyqueue._protocol.migration.runner import Runner, RunOptions
from pyqueue.errors import MigrationRefused

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from pyqueue._protocol.migration.keys import MigrationKeys


async def _wait(stop: asyncio.Event | None, seconds: float) -> None:
    if stop is None:
        await asyncio.sleep(seconds)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def report(client: aioredis.Redis, mk: MigrationKeys) -> MigrationReport:
    """The target's record of the migration so far (every run's)."""
    async with client.pipeline(transaction=False) as pipe:
        pipe.hgetall(mk.state)
        pipe.hgetall(mk.ids)
        state, ids = await pipe.execute()
    counters = MigrationReport.counters(cast("dict[bytes, bytes]", state))
    return MigrationReport(
        source=mk.source.base[:-1], target=mk.target.base[:-1], in_place=mk.in_place,
        moved={k.removeprefix("moved:"): v for k, v in counters.items()
               if k.startswith("moved:")},
        duplicates=counters.get("duplicates", 0),
        stalled_failed=counters.get("stalled-failed", 0),
        dangling=counters.get("dangling", 0),
        renames={k.decode(): v.decode() for k, v in cast("dict[bytes, bytes]", ids).items()},
        schedules_total=counters.get("schedules", 0) + counters.get("schedules:merged", 0),
        finished=b"finished" in cast("dict[bytes, bytes]", state),
    )


async def migrate(
    client: aioredis.Redis, mk: MigrationKeys, *, follow: bool = False,
    stop: asyncio.Event | None = None, force: bool = False,
    options: RunOptions | None = None,
    on_progress: Callable[[MigrationProgress], None] | None = None,
    poll_interval: float = 0.5, active_timeout: float | None = None,
) -> MigrationReport:
    """Run the migration until it is done, or ``stop`` is set (see the module docstring).

    Raises:
        MigrationRefused: see :func:`.checks.blockers`.
    """
    reasons = await blockers(client, mk, force=force)
    if reasons:
        raise MigrationRefused(reasons)
    runner = Runner(client, mk, options, on_progress)
    code, other = await runner.scripts.begin(now=runner.options.clock())
    if code < 0:
        raise MigrationRefused([f"{mk.target.base[:-1]} already receives the jobs of "
                                f"{other[:-1]}"])
    started = time.monotonic()
    done = await report(client, mk)
    if done.finished:
        return done  # in place and finished: the queue is BullMQ's, its jobs are not ours
    notes: Counter[str] = Counter()
    problems: list[str] = []
    schedules = []
    finished = False
    while True:
        result = await runner.run_pass()
        notes.update(result.notes)
        schedules += result.schedules
        problems += [p for p in result.problems if p not in problems]
        if stop is not None and stop.is_set():
            break
        if result.empty:
            if mk.in_place:
                finished = await runner.finish()
                if finished:
                    break
            elif not follow:
                finished = True
                break
        moved_nothing = not result.moved and not result.schedules
        if moved_nothing and not result.locked and not follow:
            break  # only what cannot be converted is left: reported in problems
        if active_timeout is not None and time.monotonic() - started > active_timeout \
                and moved_nothing:
            problems.append(f"{result.locked} active Bull job(s) still locked after "
                            f"{active_timeout:g}s: run again once their workers are done")
            break
        await _wait(stop, poll_interval)
    out = await report(client, mk)
    out.schedules = schedules
    out.notes = dict(notes)
    out.problems = problems
    out.finished = out.finished or finished
    out.seconds = time.monotonic() - started
    return out
