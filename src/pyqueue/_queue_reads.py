"""Reading a queue: jobs, their states, counts, ids, logs and metrics.

:class:`QueueReads` is a mixin of :class:`pyqueue.Queue` that holds its
read-only methods; none of them writes to Redis.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, cast

from pydantic import ValidationError
from redis.exceptions import ResponseError

from pyqueue._protocol.bull.script_args import due_by_score
from pyqueue.errors import InvalidOptionsError, JobNotFound
from pyqueue.job import now_ms

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from pyqueue._protocol.bull.keys import QueueKeys
    from pyqueue._protocol.bull.scripts import Scripts
    from pyqueue.job import Job, JobState

DataT = TypeVar("DataT")

# "wait" is Bull's key name, accepted wherever "waiting" is (clean() takes both too).
StateName = Literal["waiting", "wait", "active", "completed", "failed", "delayed", "paused"]
ALL_STATES: tuple[StateName, ...] = (
    "waiting", "active", "completed", "failed", "delayed", "paused",
)
_LIST_STATES = frozenset({"waiting", "wait", "active", "paused"})


class QueueReads(Generic[DataT]):
    """The read-only methods of :class:`pyqueue.Queue`.

    A mixin: ``Queue`` sets the attributes annotated here and defines the
    methods declared for the type checker.
    """

    client: aioredis.Redis
    keys: QueueKeys
    scripts: Scripts
    model: type[DataT] | None
    _format_known: bool

    if TYPE_CHECKING:

        async def _resolve_format(self) -> bool: ...

        def job_from_raw(self, job_id: str, raw: dict[bytes, bytes]) -> Job[DataT]: ...

        def decode_data(self, data: Any) -> Any: ...

    async def get_job(self, job_id: str) -> Job[DataT] | None:
        """The job with this id, or None when its hash does not exist.

        With a ``model``, ``data`` is the validated model; data that does not
        validate is left as stored, so corrupted jobs can still be inspected.
        """
        if not self._format_known and await self._resolve_format():
            return await self.get_job(job_id)  # now BullMQ's
        raw = await self.client.hgetall(self.keys.job(str(job_id)))
        if not raw:
            return None
        job = self.job_from_raw(str(job_id), cast("dict[bytes, bytes]", raw))
        if self.model is not None and job.record.data_error is None:
            with contextlib.suppress(ValidationError):
                job.data = self.decode_data(job.record.data)
        return job

    async def get_job_state(self, job_id: str) -> JobState:
        """Bull's ``getState``: the first structure holding the id, read in one transaction.

        Returns ``"stuck"`` for a job whose hash exists in none of them (Bull's word).

        Raises:
            JobNotFound: the job does not exist (its hash is gone and no structure
                holds its id). Bull 4 answers ``"stuck"`` there too; pyqueue tells
                the two apart.
        """
        if not self._format_known and await self._resolve_format():
            return await self.get_job_state(job_id)  # now BullMQ's
        k = self.keys
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.zscore(k.completed, job_id)
            pipe.zscore(k.failed, job_id)
            pipe.zscore(k.delayed, job_id)
            pipe.lpos(k.active, job_id)
            pipe.lpos(k.wait, job_id)
            pipe.lpos(k.paused, job_id)
            pipe.exists(k.job(job_id))
            *found, exists = await pipe.execute()
        states: tuple[JobState, ...] = (
            "completed", "failed", "delayed", "active", "waiting", "paused",
        )
        for state, hit in zip(states, found, strict=True):
            if hit is not None:
                return state
        if not exists:
            raise JobNotFound(f"job {job_id!r} does not exist", job_id=job_id, code=-1)
        return "stuck"

    def _state_key(self, state: str) -> str:
        if state not in ALL_STATES and state != "wait":
            allowed = ", ".join(ALL_STATES)
            raise InvalidOptionsError(f"state: must be one of {allowed} (or 'wait'), got {state!r}")
        return self.keys.wait if state in ("waiting", "wait") else self.keys.key(state)

    async def get_job_counts(self, *states: StateName) -> dict[str, int]:
        """Counts per state, as Bull's ``getJobCounts`` (all six states by default).

        Keys are spelled as asked: ``"wait"`` (Bull's key name) is ``"waiting"``.
        """
        if not self._format_known and await self._resolve_format():
            return await self.get_job_counts(*states)  # now BullMQ's
        wanted = states or ALL_STATES
        async with self.client.pipeline(transaction=True) as pipe:
            for state in wanted:
                key = self._state_key(state)
                if state in _LIST_STATES:
                    pipe.llen(key)
                else:
                    pipe.zcard(key)
            counts = await pipe.execute()
        return {state: int(n) for state, n in zip(wanted, counts, strict=True)}

    async def get_runnable_count(self) -> int:
        """Jobs a worker runs now or can start now: waiting, active, and delayed ones due.

        Not paused jobs (no worker takes them) and not delayed jobs due later: what
        ``pyqueue worker --burst`` waits for before it exits. Read in one transaction.
        """
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.llen(self.keys.wait)
            pipe.llen(self.keys.active)
            pipe.zcount(self.keys.delayed, 0, due_by_score(now_ms()))
            counts = await pipe.execute()
        return sum(int(n) for n in counts)

    async def get_waiting_count(self) -> int:
        c = await self.get_job_counts("waiting", "paused")
        return c["waiting"] + c["paused"]

    async def get_active_count(self) -> int:
        return (await self.get_job_counts("active"))["active"]

    async def get_completed_count(self) -> int:
        return (await self.get_job_counts("completed"))["completed"]

    async def get_failed_count(self) -> int:
        return (await self.get_job_counts("failed"))["failed"]

    async def get_delayed_count(self) -> int:
        return (await self.get_job_counts("delayed"))["delayed"]

    async def get_paused_count(self) -> int:
        return (await self.get_job_counts("paused"))["paused"]

    async def count(self) -> int:
        """Jobs still to run: waiting + paused + delayed."""
        c = await self.get_job_counts("waiting", "paused", "delayed")
        return sum(c.values())

    async def get_job_ids(
        self, states: Sequence[StateName] | StateName, start: int = 0, end: int = -1,
        *, asc: bool = False,
    ) -> list[str]:
        """Ids per state in Bull's order (lists newest first unless ``asc``)."""
        wanted = [states] if isinstance(states, str) else list(states)
        async with self.client.pipeline(transaction=False) as pipe:
            for state in wanted:
                key = self._state_key(state)
                if state in _LIST_STATES:
                    if asc:
                        pipe.lrange(key, -(end + 1), -(start + 1))
                    else:
                        pipe.lrange(key, start, end)
                elif asc:
                    pipe.zrange(key, start, end)
                else:
                    pipe.zrevrange(key, start, end)
            results = await pipe.execute()
        ids: list[str] = []
        for state, found in zip(wanted, results, strict=True):
            part = [i.decode() for i in found]
            if asc and state in _LIST_STATES:
                part.reverse()
            ids.extend(part)
        return ids

    async def get_jobs(
        self, states: Sequence[StateName] | StateName, start: int = 0, end: int = -1,
        *, asc: bool = False,
    ) -> list[Job[DataT]]:
        """Jobs per state (missing hashes are skipped)."""
        ids = await self.get_job_ids(states, start, end, asc=asc)
        async with self.client.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hgetall(self.keys.job(job_id))
            raws = await pipe.execute()
        return [self.job_from_raw(i, r) for i, r in zip(ids, raws, strict=True) if r]

    async def get_job_logs(
        self, job_id: str, start: int = 0, end: int = -1, *, asc: bool = True
    ) -> tuple[list[str], int]:
        """``(lines, total)`` of a job's log."""
        key = self.keys.logs(job_id)
        async with self.client.pipeline(transaction=False) as pipe:
            if asc:
                pipe.lrange(key, start, end)
            else:
                pipe.lrange(key, -(end + 1), -(start + 1))
            pipe.llen(key)
            lines, total = await pipe.execute()
        decoded = [line.decode("utf-8", "replace") for line in lines]
        if not asc:
            decoded.reverse()
        return decoded, int(total)

    async def get_counts_per_priority(self, priorities: Sequence[int]) -> dict[str, int]:
        counts = await self.scripts.get_counts_per_priority(priorities)
        return {str(p): c for p, c in zip(priorities, counts, strict=True)}

    async def get_metrics(
        self, kind: Literal["completed", "failed"], start: int = 0, end: int = -1
    ) -> dict[str, Any]:
        """Bull 4 metrics: ``{"meta": {...}, "data": [...], "count": n}``."""
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hmget(self.keys.metrics(kind), "count", "prevTS", "prevCount")
            pipe.lrange(self.keys.metrics_data(kind), start, end)
            pipe.llen(self.keys.metrics_data(kind))
            meta, data, count = await pipe.execute()
        names = ("count", "prevTS", "prevCount")
        return {
            "meta": {n: int(v) if v is not None else 0 for n, v in zip(names, meta, strict=True)},
            "data": [d.decode() for d in data],
            "count": int(count),
        }

    async def get_workers(self) -> list[dict[str, str]]:
        """Bull's ``getWorkers``: the CLIENT LIST entries of this queue's workers.

        Each entry is one connection's fields (``id``, ``addr``, ``age``, ``idle``,
        …) with ``name`` set to the queue name, for pyqueue and Node workers
        alike. Empty where CLIENT LIST is disabled.
        """
        wanted = self.keys.worker_client_name
        try:
            clients: list[dict[str, Any]] = await self.client.client_list()
        except ResponseError:
            return []
        found = []
        for entry in clients:
            # Exact match: a prefix match (as Bull does) would also take in the
            # workers of a queue whose base64 name starts with this one's.
            if entry.get("name") == wanted:
                found.append({**{k: str(v) for k, v in entry.items()}, "name": self.keys.queue})
        return found
