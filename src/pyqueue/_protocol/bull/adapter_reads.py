"""Bull 4's reads for :class:`.adapter.BullProtocol`, and its lock renewer's side.

:class:`BullReads` answers the interface's read operations (a job's hash and
state, counts, ids, logs, outcome, pause flag) the way Bull's ``Queue`` reads
them; :class:`BullSyncLocks` renews locks from the renewer thread with one
pipelined ``extendLock`` per lock, over a blocking connection of its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, cast

import redis

from pyqueue._protocol.bull import wire
from pyqueue._protocol.bull.lua import load_source
from pyqueue._protocol.bull.script_args import extend_lock_args, retry_job_args

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from pyqueue._protocol.bull.keys import QueueKeys
    from pyqueue._protocol.bull.scripts import Scripts
    from pyqueue._protocol.connection import ConnectionSpec

_LISTS = frozenset({"waiting", "wait", "active", "paused"})


class BullReads:
    """Read operations of the interface in Bull mode (a mixin of BullProtocol)."""

    keys: QueueKeys
    client: aioredis.Redis
    scripts: Scripts

    def decode_job(self, job_id: str, raw: Mapping[bytes, bytes]) -> wire.JobRecord:
        """See :func:`.wire.decode_job`."""
        return wire.decode_job(job_id, raw)

    async def get_job_hash(self, job_id: str) -> dict[bytes, bytes]:
        return cast("dict[bytes, bytes]", await self.client.hgetall(self.keys.job(job_id)))

    async def get_state(self, job_id: str) -> str:
        """Bull's getState: the first structure holding the id, else ``stuck``."""
        k = self.keys
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.zscore(k.completed, job_id)
            pipe.zscore(k.failed, job_id)
            pipe.zscore(k.delayed, job_id)
            pipe.lpos(k.active, job_id)
            pipe.lpos(k.wait, job_id)
            pipe.lpos(k.paused, job_id)
            found = await pipe.execute()
        for state, hit in zip(("completed", "failed", "delayed", "active", "waiting", "paused"),
                              found, strict=True):
            if hit is not None:
                return state
        return "stuck"

    def _state_key(self, state: str) -> str:
        return self.keys.wait if state in ("waiting", "wait") else self.keys.key(state)

    async def get_counts(self, states: Sequence[str]) -> dict[str, int]:
        async with self.client.pipeline(transaction=True) as pipe:
            for state in states:
                key = self._state_key(state)
                if state in _LISTS:
                    pipe.llen(key)
                else:
                    pipe.zcard(key)
            counts = await pipe.execute()
        return {state: int(n) for state, n in zip(states, counts, strict=True)}

    async def get_job_ids(self, state: str, start: int, end: int, *, asc: bool) -> list[str]:
        key = self._state_key(state)
        found: list[bytes]
        if state in _LISTS:
            if asc:
                found = cast("list[bytes]", await self.client.lrange(key, -(end + 1),
                                                                     -(start + 1)))
                found.reverse()
            else:
                found = cast("list[bytes]", await self.client.lrange(key, start, end))
        elif asc:
            found = cast("list[bytes]", await self.client.zrange(key, start, end))
        else:
            found = cast("list[bytes]", await self.client.zrevrange(key, start, end))
        return [i.decode() for i in found]

    async def get_logs(self, job_id: str, start: int, end: int, *, asc: bool) -> tuple[
        list[str], int
    ]:
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

    async def finished_outcome(self, job_id: str) -> tuple[int, str | None]:
        state = await self.scripts.is_finished(job_id)
        if state is None:
            exists = await self.client.exists(self.keys.job(job_id))
            return (0 if exists else -1), None
        field = "returnvalue" if state == 1 else "failedReason"
        value = cast("bytes | None", await self.client.hget(self.keys.job(job_id), field))
        return state, None if value is None else value.decode("utf-8", "replace")

    async def is_paused(self) -> bool:
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.exists(self.keys.meta_paused)
            pipe.hexists(self.keys.meta, "paused")
            flag, meta = await pipe.execute()
        return bool(flag) or bool(meta)

    async def get_counts_per_priority(self, priorities: Sequence[int]) -> list[int]:
        return await self.scripts.get_counts_per_priority(priorities)


class BullSyncLocks:
    """The renewer thread's side in Bull mode: one pipelined extendLock per lock."""

    def __init__(self, spec: ConnectionSpec, keys: QueueKeys, duration: int) -> None:
        self._client = spec.sync_client(socket_timeout=max(duration / 10_000, 0.01))
        self._keys = keys
        self._duration = duration
        self._extend = self._client.register_script(load_source("extendLock-2"))
        self._retry = self._client.register_script(load_source("retryJob-7"))

    def renew(self, job_ids: Sequence[str], tokens: Sequence[str]) -> list[bool | Exception]:
        pipe = self._client.pipeline(transaction=False)
        for job_id, token in zip(job_ids, tokens, strict=True):
            k, a = extend_lock_args(self._keys, job_id, token=token, duration=self._duration)
            self._extend(keys=k, args=a, client=pipe)
        try:
            replies = pipe.execute(raise_on_error=False)
        except redis.RedisError as exc:
            return [exc] * len(job_ids)
        return [r if isinstance(r, Exception) else int(r) == 1 for r in replies]

    def release(self, job_id: str, token: str) -> None:
        k, a = retry_job_args(self._keys, job_id, token=token, lifo=True)
        self._retry(keys=k, args=a)

    def list_active(self) -> list[str]:
        found = cast("list[bytes]", self._client.lrange(self._keys.active, 0, -1))
        return [raw.decode() for raw in found]

    def close(self) -> None:
        self._client.close()
