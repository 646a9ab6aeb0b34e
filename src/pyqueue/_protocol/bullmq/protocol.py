"""BullMQ 6's side of :class:`pyqueue._protocol.interface.QueueProtocol`.

:class:`BullMQProtocol` is the object the engine and the API hold for a
queue in BullMQ mode: the script calls of :class:`.scripts_admin.BullMQAdmin`
(inherited, so the per-job path runs them with no extra frame), plus the
plain reads, the marker wait, the events stream and the lock renewal
thread's connection. mypy checks here, by the explicit subclassing of the
protocol, that BullMQ mode offers every operation of the interface.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import redis
from redis.exceptions import ResponseError

from pyqueue._protocol.bullmq import script_args as sa
from pyqueue._protocol.bullmq import script_args_admin as adm
from pyqueue._protocol.bullmq import wire
from pyqueue._protocol.bullmq.backoff import builtin_delay
from pyqueue._protocol.bullmq.events import StreamFeed
from pyqueue._protocol.bullmq.keys import BullMQKeys
from pyqueue._protocol.bullmq.lua import register_sync
from pyqueue._protocol.bullmq.scripts_admin import BullMQAdmin
from pyqueue._protocol.bullmq.scripts_schedulers import SchedulerCalls
from pyqueue._protocol.interface import (
    Dedup,
    EventFeed,
    ParentRef,
    QueueProtocol,
    SyncLocks,
    Wake,
)

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from pyqueue._protocol.connection import ConnectionSpec
    from pyqueue._protocol.fastconn import FastConnection
    from pyqueue.options import JobOptions

# BullMQ's states, by the names getJobCounts and getJobs take.
STATES: tuple[str, ...] = (
    "active", "completed", "delayed", "failed", "prioritized", "waiting", "waiting-children",
    "paused",
)
_LISTS = frozenset({"waiting", "wait", "active", "paused"})


class BullMQProtocol(BullMQAdmin, SchedulerCalls, QueueProtocol):
    """One BullMQ queue's wire format, on one asyncio client.

    Args:
        client: An asyncio client created with ``decode_responses=False``.
        prefix: The key prefix (``bull``, as BullMQ's default).
        queue: The queue name.
    """

    format = "bullmq"
    states = STATES
    limiter_on_fetch_next = True
    promotes_on_fetch = True

    def __init__(self, client: aioredis.Redis, prefix: str, queue: str,
                 fast: FastConnection | None = None) -> None:
        keys = BullMQKeys(prefix, queue)
        super().__init__(client, keys, fast)
        self.keys = keys
        self.base = keys.base

    # --- producing ------------------------------------------------------------

    def encode_options(
        self, opts: JobOptions, *, dedup: Dedup | None = None, parent: ParentRef | None = None,
        timestamp: int = 0,
    ) -> dict[str, Any]:
        """BullMQ's stored ``opts`` (see :func:`.wire.options_to_wire`); BullMQ keeps
        the add's time in the job's ``timestamp`` field only."""
        return wire.options_to_wire(opts, dedup=dedup, parent=parent)

    def check_job_id(self, job_id: str) -> str:
        """BullMQ's custom id rules (see :func:`.wire.check_job_id`)."""
        return wire.check_job_id(job_id)

    # --- reading --------------------------------------------------------------

    def decode_job(self, job_id: str, raw: Mapping[bytes, bytes]) -> wire.BullMQRecord:
        """See :func:`.wire.decode_job`."""
        return wire.decode_job(job_id, raw)

    async def get_job_hash(self, job_id: str) -> dict[bytes, bytes]:
        """HGETALL of the job; empty when there is no such job."""
        raw = await self._client.hgetall(self._keys.job(job_id))
        return cast("dict[bytes, bytes]", raw)

    async def get_job_ids(self, state: str, start: int, end: int, *, asc: bool) -> list[str]:
        """BullMQ's getRanges for one state: lists newest first, sets by score
        (highest first), reversed with ``asc``."""
        key = self._keys.key(adm.state_key_name(state))
        found: list[bytes]
        if state in _LISTS:
            if asc:
                first = 0 if end == -1 else -(end + 1)
                last = 0 if start == -1 else -(start + 1)
                found = cast("list[bytes]", await self._client.lrange(key, first, last))
                found.reverse()
            else:
                found = cast("list[bytes]", await self._client.lrange(key, start, end))
        elif asc:
            found = cast("list[bytes]", await self._client.zrange(key, start, end))
        else:
            found = cast("list[bytes]", await self._client.zrevrange(key, start, end))
        return [i.decode() for i in found]

    async def get_logs(self, job_id: str, start: int, end: int, *, asc: bool) -> tuple[
        list[str], int
    ]:
        """``(lines, total)``, as BullMQ's getJobLogs (a MULTI of LRANGE and LLEN)."""
        key = self._keys.logs(job_id)
        async with self._client.pipeline(transaction=True) as pipe:
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

    async def is_paused(self) -> bool:
        """meta.paused, as BullMQ's isPaused reads it."""
        return bool(await self._client.hexists(self._keys.meta, "paused"))

    # --- a worker's path --------------------------------------------------------

    async def name_worker_connection(self, bclient: aioredis.Redis) -> None:
        """``<prefix>:<base64(queue)>``: what Node's ``Queue.getWorkers`` looks for."""
        with contextlib.suppress(ResponseError):
            await bclient.client_setname(self._keys.worker_client_name)

    async def wait_for_job(self, bclient: aioredis.Redis, timeout: float) -> Wake | None:
        """BZPOPMIN on the marker: ``Wake(due=0)`` when a job is ready, ``Wake(due=ms)``
        when the earliest delayed job is due then, None after ``timeout`` seconds.

        BullMQ caps a wait at 10 s (a longer BZPOPMIN misbehaves across
        reconnections), so this does too.
        """
        reply = await bclient.bzpopmin(self._keys.marker, min(max(timeout, 0.001), 10.0))
        if reply is None:
            return None
        _key, _member, score = reply
        return Wake("", int(float(score)))

    def builtin_backoff(self, backoff: Mapping[str, Any], attempts_made: int) -> float | None:
        """BullMQ's fixed / exponential (with jitter); see :mod:`.backoff`."""
        return builtin_delay(backoff, attempts_made)

    def sync_locks(self, spec: ConnectionSpec, duration: int) -> SyncLocks:
        """extendLocks (one call for every lock) over a blocking connection of its own."""
        return _SyncLocks(spec, self._keys, duration)

    async def promote_due(self, *, now: int, token: str = "") -> int | None:
        """promoteDelayed-8 (fetching does this already in BullMQ mode)."""
        due = await self._run("promoteDelayed", adm.promote_delayed_args(self._keys, now=now))
        return None if due is None else int(due)

    # --- events -----------------------------------------------------------------

    def event_feed(self, client: aioredis.Redis, *, last_id: str = "$") -> EventFeed:
        """The ``events`` stream from ``last_id`` on (see :class:`.events.StreamFeed`)."""
        return StreamFeed(client, self._keys.events, last_id=last_id)


class _SyncLocks:
    """The renewer thread's side: one connection, one script call per renewal pass."""

    def __init__(self, spec: ConnectionSpec, keys: BullMQKeys, duration: int) -> None:
        # A tenth of the lock's life: a silent socket costs a retry, not every lock.
        self._client = spec.sync_client(socket_timeout=max(duration / 10_000, 0.01))
        self._keys = keys
        self._duration = duration
        self._extend = register_sync(self._client, "extendLocks")
        self._release = register_sync(self._client, "moveJobFromActiveToWait")

    def renew(self, job_ids: Sequence[str], tokens: Sequence[str]) -> list[bool | Exception]:
        if not job_ids:
            return []
        keys, args = sa.extend_locks_args(self._keys, job_ids, tokens, self._duration)
        try:
            lost = {i.decode() for i in self._extend(keys=keys, args=args)}
        except redis.RedisError as exc:
            return [exc] * len(job_ids)
        return [job_id not in lost for job_id in job_ids]

    def release(self, job_id: str, token: str) -> None:
        keys, args = sa.release_args(self._keys, job_id, token=token)
        self._release(keys=keys, args=args)

    def list_active(self) -> list[str]:
        found = cast("list[bytes]", self._client.lrange(self._keys.active, 0, -1))
        return [raw.decode() for raw in found]

    def close(self) -> None:
        self._client.close()
