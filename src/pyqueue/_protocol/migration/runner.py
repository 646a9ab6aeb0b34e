"""A migration's run: passes over Bull's states, a small batch per script call.

Each pass converts Bull's schedules first (so no Bull instance is chained
after its schedule moved), then moves waiting jobs in the order Bull would
run them (prioritised ones by priority, then arrival), paused, delayed,
active jobs that stalled, and the history. A job is read (its options and
priority: what the id and options decisions need, and what Bull never changes
after the add), decided on in Python (:mod:`.convert`), and moved by
migrateJobs, which checks that the job is still where it was read and that its
options are the ones converted. Whatever stops the run (a kill between two
calls included), the next run starts again from what Redis holds: nothing is
half-moved, and nothing moved is looked at again.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from pyqueue._protocol.bullmq.wire import dumps
from pyqueue._protocol.migration.convert import convert_job, id_candidate, json_object
from pyqueue._protocol.migration.report import STATE_ORDER, MigrationProgress, ScheduleInfo
from pyqueue._protocol.migration.schedules import convert_schedules
from pyqueue._protocol.migration.script_args import JobMove
from pyqueue._protocol.migration.scripts import MigrationScripts, Moved

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from pyqueue._protocol.migration.keys import MigrationKeys

_LISTS = frozenset({"wait", "paused", "active"})
# How often one job may meet a taken id before the run gives up on it.
_MAX_ID_ATTEMPTS = 50
# Batches of one state per pass: a Bull queue filling faster than the migration
# moves it must not keep a pass in one state (schedules, history) for ever.
_MAX_ROUNDS = 1000


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How a run goes.

    Attributes:
        batch_size: Jobs per script call (each call is one atomic step).
        stall_grace_ms: An active Bull job is stalled when it was seen without
            a lock this long ago and still has none: it then moves (to wait,
            or to failed after ``max_stalled`` stalls), as Bull's own check would.
        max_stalled: Bull's ``maxStalledCount``.
        clock: ms since the epoch (tests may pin it).
    """

    batch_size: int = 100
    stall_grace_ms: int = 5_000
    max_stalled: int = 1
    clock: Callable[[], int] = now_ms


@dataclass(slots=True)
class PassResult:
    """One pass: what moved, what is left, what was found wanting."""

    moved: Counter[str] = field(default_factory=Counter)
    left: dict[str, int] = field(default_factory=dict)
    locked: int = 0
    schedules: list[ScheduleInfo] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: Counter[str] = field(default_factory=Counter)

    @property
    def empty(self) -> bool:
        """Nothing of Bull's is left to move (active jobs included)."""
        return not any(self.left.values())


def _sha1(raw: bytes | None) -> str:
    return "" if raw is None else hashlib.sha1(raw, usedforsecurity=False).hexdigest()


class Runner:
    """Moves one Bull queue's jobs into one BullMQ queue (see the module docstring).

    Args:
        client: An asyncio client created with ``decode_responses=False``.
        keys: The migration's keys.
        options: Batch size, stall rules, clock.
        on_progress: Called after every step.
    """

    def __init__(self, client: aioredis.Redis, keys: MigrationKeys,
                 options: RunOptions | None = None,
                 on_progress: Callable[[MigrationProgress], None] | None = None) -> None:
        self.client = client
        self.keys = keys
        self.options = options or RunOptions()
        self.scripts = MigrationScripts(client, keys)
        self.on_progress = on_progress
        self.moved_total = 0
        self.left_total = 0
        self.locked = 0

    # --- reading -------------------------------------------------------------------

    async def counts(self) -> dict[str, int]:
        """Bull jobs left per state, and schedules (``repeat``)."""
        b = self.keys.bull
        async with self.client.pipeline(transaction=False) as pipe:
            for state in STATE_ORDER:
                key = b.state_key(state)
                if state in _LISTS:
                    pipe.llen(key)
                else:
                    pipe.zcard(key)
            pipe.zcard(b.repeat)
            found = await pipe.execute()
        return dict(zip((*STATE_ORDER, "repeat"), (int(n) for n in found), strict=True))

    async def _next_ids(self, state: str, skip: set[str]) -> list[str]:
        """The next batch of ``state``: from the right end of a list (the next
        to run first), lowest scores first in a sorted set."""
        key = self.keys.bull.state_key(state)
        size = self.options.batch_size + len(skip)
        raw: list[bytes]
        if state == "active":
            raw = cast("list[bytes]", await self.client.lrange(key, 0, -1))
        elif state in _LISTS:
            raw = cast("list[bytes]", await self.client.lrange(key, -size, -1))
            raw.reverse()
        else:
            raw = cast("list[bytes]", await self.client.zrange(key, 0, size - 1))
        ids = []
        for item in raw:
            job_id = item.decode()
            if job_id not in skip and job_id not in ids:
                ids.append(job_id)
        return ids if state == "active" else ids[: self.options.batch_size]

    async def _moves(self, ids: Sequence[str], attempts: Counter[str],
                     ) -> list[tuple[JobMove, tuple[str, ...]]]:
        """Each job's move, with the notes of its conversion."""
        src = self.keys.source
        async with self.client.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hmget(src.job(job_id), "opts", "priority")
            pipe.hgetall(self.keys.schedulers)
            *rows, chosen = await pipe.execute()
        schedulers = {k.decode(): v.decode() for k, v in cast("dict[bytes, bytes]", chosen).items()}
        moves = []
        for job_id, (raw_opts, raw_priority) in zip(ids, rows, strict=True):
            opts = json_object(raw_opts)
            try:
                priority = int(raw_priority or b"0")
            except ValueError:
                priority = 0
            scheduler, iteration = self._iteration(job_id, opts, schedulers)
            c = convert_job(job_id, opts, priority, iteration_id=iteration)
            new_id = c.new_id
            if attempts[job_id] and iteration is None:
                new_id = id_candidate(job_id, attempts[job_id])
            stored = {**c.opts, "jobId": new_id} if "jobId" in c.opts else c.opts
            moves.append((JobMove(
                job_id=job_id, new_id=new_id, mode=c.id_mode, opts_json=dumps(stored),
                priority=c.priority, data_as_string=c.data_as_string, scheduler_id=scheduler,
                opts_sha1=_sha1(raw_opts),
            ), c.notes))
        return moves

    @staticmethod
    def _iteration(job_id: str, opts: dict[str, Any],
                   schedulers: dict[str, str]) -> tuple[str | None, str | None]:
        """A pending instance of a converted Bull schedule becomes the scheduler's
        iteration for the same run: ``(scheduler id, "repeat:<scheduler>:<run ms>")``."""
        repeat = opts.get("repeat")
        if not job_id.startswith("repeat:") or not isinstance(repeat, dict):
            return None, None
        scheduler = schedulers.get(str(repeat.get("key")))
        millis = opts.get("prevMillis")
        if scheduler is None or not isinstance(millis, int | float) or isinstance(millis, bool):
            return None, None
        return scheduler, f"repeat:{scheduler}:{int(millis)}"

    # --- moving ----------------------------------------------------------------------

    def _progress(self, state: str) -> None:
        if self.on_progress is not None:
            self.on_progress(MigrationProgress(state, self.moved_total,
                                               self.moved_total + self.left_total, self.locked))

    async def move_state(self, state: str, result: PassResult) -> None:
        """Move every job of one Bull state (active: the stalled ones)."""
        attempts: Counter[str] = Counter()
        skip: set[str] = set()
        for _ in range(_MAX_ROUNDS):
            ids = await self._next_ids(state, skip)
            if not ids:
                return
            planned = await self._moves(ids, attempts)
            moves = [move for move, _ in planned]
            outcomes = await self.scripts.migrate_jobs(
                state, moves, now=self.options.clock(),
                stall_grace=self.options.stall_grace_ms, max_stalled=self.options.max_stalled)
            for (move, notes), outcome in zip(planned, outcomes, strict=True):
                if outcome.code == Moved.MOVED:
                    result.notes.update(notes)
                    result.moved[state] += 1
                    self.moved_total += 1
                    self.left_total = max(self.left_total - 1, 0)
                elif outcome.code == Moved.ID_TAKEN:
                    attempts[move.job_id] += 1
                    if attempts[move.job_id] > _MAX_ID_ATTEMPTS:
                        skip.add(move.job_id)
                        result.problems.append(f"job {move.job_id!r}: no free id found")
                elif outcome.code == Moved.ACTIVE:
                    skip.add(move.job_id)  # locked, or seen unlocked once: next pass
                # GONE, DUPLICATE, DANGLING: no longer in the state; OPTS_CHANGED:
                # read again in the next round.
            self._progress(state)

    async def run_pass(self) -> PassResult:
        """Schedules, then every state once; what is left afterwards."""
        result = PassResult()
        before = await self.counts()
        self.left_total = sum(before.values())
        schedules, problems = await convert_schedules(self.client, self.scripts,
                                                      now=self.options.clock())
        result.schedules += schedules
        result.problems += problems
        self.moved_total += len(schedules)
        self._progress("repeat")
        for state in STATE_ORDER:
            await self.move_state(state, result)
        await self._forget_suspects()
        left = await self.counts()
        self.locked = left["active"]
        self.left_total = sum(left.values())
        self._progress("active" if self.locked else "done")
        # A schedule left behind is a problem already reported, not work to wait for.
        left["repeat"] = 0 if problems else left["repeat"]
        result.left = left
        result.locked = left["active"]
        return result

    async def _forget_suspects(self) -> None:
        """Drop the stall suspects that left ``active`` by themselves (their worker
        took the lock after all and finished them): a suspect only counts while its
        job is still active, and a stale one would hold up the end of a run in place."""
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.lrange(self.keys.bull.active, 0, -1)
            pipe.zrange(self.keys.suspects, 0, -1)
            active, suspects = await pipe.execute()
        gone = set(cast("list[bytes]", suspects)) - set(cast("list[bytes]", active))
        if gone:
            await self.client.zrem(self.keys.suspects, *gone)

    async def finish(self) -> bool:
        """In place: mark the queue BullMQ's once nothing of Bull's is left."""
        return await self.scripts.finish(now=self.options.clock())
