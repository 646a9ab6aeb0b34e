"""A worker's heartbeat: the record that lists it, by name, among a queue's live workers.

Node Bull's only trace of a worker is the name of its blocking connection in
``CLIENT LIST``, which says neither host, process nor jobs, and is lost with
the connection: after a Redis restart a busy pyqueue worker, whose blocking
connection sits idle while every slot runs a job, would not be named again
until its next blocking fetch. So each pyqueue worker also writes a small
record (:class:`~pyqueue._protocol.bull.wire_workers.WorkerRecord`) every
:data:`HEARTBEAT_EVERY` seconds, with a TTL of :data:`RECORD_TTL`: one
pipelined write per interval, never one per job. A failed write is tried again
every :data:`RETRY_EVERY` seconds, so a worker is listed again within a second
of Redis coming back. :meth:`Presence.leave` takes the record away on close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from pyqueue._protocol.bull.wire_workers import (
    WorkerIdentity,
    WorkerRecord,
    identity_json,
    record_json,
)

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from pyqueue._protocol.bull.keys import QueueKeys

log = logging.getLogger("pyqueue.worker")

HEARTBEAT_EVERY = 10.0
"""Seconds between two heartbeats of a worker."""
RECORD_TTL = 35.0
"""Seconds a record outlives its heartbeat: three missed beats and a margin."""
RETRY_EVERY = 1.0
"""Seconds between tries while Redis refuses or cannot be reached."""
IDENTIFY_WAIT = 2.0
"""Seconds the first record waits for the blocking connection's id (a paused worker has none)."""


def _version() -> str:
    # Read from the imported package: the engine cannot import it at module level
    # (pyqueue/__init__ imports the worker, which imports this module).
    return str(getattr(sys.modules.get("pyqueue"), "__version__", "unknown"))


class Presence:
    """Writes one worker's heartbeat record until cancelled.

    Args:
        client: The queue's client (any deployment: the pipeline is not a transaction).
        keys: The queue's keys.
        worker_id: The worker's id (its lock token).
        concurrency: The worker's concurrency.
        current_jobs: The ids of the jobs the worker runs now.
        client_id: The ``CLIENT ID`` of the worker's blocking connection, when known.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        keys: QueueKeys,
        worker_id: str,
        concurrency: int,
        current_jobs: Callable[[], Iterable[str]],
        client_id: Callable[[], int | None],
    ) -> None:
        self._client = client
        self._keys = keys
        self.identity = WorkerIdentity(worker_id, socket.gethostname(), os.getpid())
        self.identity_json = identity_json(self.identity)
        self._concurrency = concurrency
        self._current_jobs = current_jobs
        self._client_id = client_id
        self._started = int(time.time() * 1000)
        self.beats = 0

    def record(self, now_ms: int) -> WorkerRecord:
        """The record a heartbeat at ``now_ms`` writes."""
        return WorkerRecord(
            identity=self.identity, queue=self._keys.queue, lib="pyqueue", version=_version(),
            concurrency=self._concurrency, jobs=tuple(self._current_jobs()),
            started_ms=self._started, beat_ms=now_ms, ttl_ms=int(RECORD_TTL * 1000),
            client_id=self._client_id(),
        )

    async def beat(self) -> None:
        """Write the record and its index entry; drop index entries that have expired."""
        now = int(time.time() * 1000)
        ttl_ms = int(RECORD_TTL * 1000)
        worker_id = self.identity.id
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.set(self._keys.worker(worker_id), record_json(self.record(now)), px=ttl_ms)
            pipe.zadd(self._keys.workers, {worker_id: now + ttl_ms})
            pipe.zremrangebyscore(self._keys.workers, "-inf", now)
            await pipe.execute()
        self.beats += 1

    async def run(self) -> None:
        """Beat every :data:`HEARTBEAT_EVERY` s until cancelled; retry faster after a failure.

        Between beats the blocking connection's id is looked at (locally, every
        :data:`RETRY_EVERY` s): when the fetch loop has (re)named it, the record
        is rewritten at once, so the tools never take that connection for a
        Node worker's.
        """
        # The first record waits (briefly) for the fetch loop to name its connection, so
        # that it carries the connection's id from the start: until then the tools would
        # count the named connection as a Node worker besides this one.
        waited = 0.0
        while self._client_id() is None and waited < IDENTIFY_WAIT:
            await asyncio.sleep(0.02)
            waited += 0.02
        failing = False
        while True:
            written = self._client_id()
            try:
                await self.beat()
            except (RedisError, OSError) as exc:
                # Other parts of the worker report the outage; this one only says so once.
                if not failing:
                    log.debug("worker heartbeat failed, trying every %gs: %s", RETRY_EVERY, exc)
                failing = True
                await asyncio.sleep(RETRY_EVERY)
                continue
            failing = False
            waited = 0.0
            while waited < HEARTBEAT_EVERY and self._client_id() == written:
                step = min(RETRY_EVERY, HEARTBEAT_EVERY - waited)
                await asyncio.sleep(step)
                waited += step

    async def leave(self) -> None:
        """Remove the record, so the worker leaves the list at once (best effort)."""
        worker_id = self.identity.id
        with contextlib.suppress(RedisError, OSError):
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.delete(self._keys.worker(worker_id))
                pipe.zrem(self._keys.workers, worker_id)
                await pipe.execute()
