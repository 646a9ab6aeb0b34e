"""One subscriber per queue for every ``finished()`` waiter.

Shape::

    waiter ──register──► {job id: futures} ◄──resolve── reader task (pub/sub connection)
                 └──check soon──► checker task (one pipeline at a time) ──resolve──┘

Every waiter of a :class:`~pyqueue.Queue` is served by two connections, however many
wait: the reader's subscription to the ``completed`` and ``failed`` channels, and the
checker's reads of job states. A waiter registers a future and awaits only that
future, never a shared task, so cancelling a waiter (or its timeout firing) cannot
cancel the reader, and the reader's lifetime is the queue's.

The checker reads the state of a job when its first waiter registers (it may have
ended already), after every (re)subscription (messages may have been missed), on a
local removal, and every :data:`RECHECK_EVERY` seconds (removal by another client
publishes nothing). A job found missing is reported only once the reader has read
past a PING sent after that read: its end message, if one was published before the
job was deleted (``removeOnComplete``), is then already delivered.

Shutdown does not rely on cancellation alone (redis-py 8.0-8.2 can lose the
cancellation of a task reading a subscription): the reader reads with a short
timeout and checks a flag between reads, :meth:`FinishedWaiters.close` cancels until
the tasks are done, and the client is closed whatever happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from pyqueue._protocol.bull import outcomes
from pyqueue._protocol.bull.keys import QueueKeys
from pyqueue._protocol.bull.outcomes import Outcome
from pyqueue._protocol.connection import ConnectionSpec
from pyqueue.errors import JobFailedError, JobNotFound, QueueClosedError

log = logging.getLogger("pyqueue.queue")

# Seconds between two reads of every waited job's state (a removal by another client
# publishes nothing, so only reading finds it).
RECHECK_EVERY = 5.0
# Seconds one read of the subscription may block: how soon the reader sees close().
_READ_SLICE = 1.0
_CONFIRM_TIMEOUT = 10.0
_BARRIER_TIMEOUT = 5.0
_RECONNECT = (0.1, 5.0)


class FinishedWaiters:
    """The shared waiting of one queue (see the module docstring).

    Args:
        spec: How to connect (the queue's connection spec).
        keys: The queue's keys.
        name: The queue's name, for messages.
        idle: Seconds without traffic after which the subscription is PINGed; no
            reply within as long again counts as a dropped connection.
    """

    def __init__(self, spec: ConnectionSpec, keys: QueueKeys, name: str, idle: float) -> None:
        self._spec = spec
        self._keys = keys
        self._name = name
        self._idle = idle
        self._waiters: dict[str, set[asyncio.Future[Outcome]]] = {}
        self._to_check: set[str] = set()
        self._wake = asyncio.Event()
        self._subscribed = asyncio.Event()
        self._barriers: dict[str, asyncio.Future[None]] = {}
        self._barrier_ids = itertools.count(1)
        self._client: aioredis.Redis | None = None
        self._pubsub: PubSub | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False

    # --- waiters ----------------------------------------------------------------

    async def wait(self, job_id: str) -> Any:
        """The job's return value once it completes.

        Raises:
            JobFailedError: it failed for good.
            JobNotFound: it does not exist, or stopped existing, before it ended.
            QueueClosedError: the queue was closed first.
        """
        if self._closing:
            raise QueueClosedError(f"queue {self._name!r} is closed")
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(job_id, set()).add(future)
        self._start()
        self.check(job_id)
        try:
            outcome = await future
        finally:
            waiting = self._waiters.get(job_id)
            if waiting is not None:
                waiting.discard(future)
                if not waiting:
                    del self._waiters[job_id]
        if outcome.kind == "completed":
            return outcome.value
        if outcome.kind == "failed":
            raise JobFailedError(job_id, str(outcome.value))
        raise JobNotFound(f"job {job_id!r} does not exist (removed, or never added)",
                          job_id=job_id, code=-1)

    def check(self, *job_ids: str) -> None:
        """Read these jobs' states soon (all waited jobs when none are given)."""
        if not self._tasks:
            return
        self._to_check.update(job_ids or self._waiters)
        self._wake.set()

    def _resolve(self, job_id: str, outcome: Outcome) -> None:
        for future in self._waiters.get(job_id, ()):
            if not future.done():
                future.set_result(outcome)

    # --- lifecycle ----------------------------------------------------------------

    def _start(self) -> None:
        if self._tasks:
            return
        client = self._spec.async_client(max_connections=2, socket_timeout=None)
        # Reconnecting is the reader's job: redis-py's silent retry would resubscribe
        # without telling it, hiding the gap in which messages were lost.
        client.connection_pool.connection_kwargs["retry"] = Retry(NoBackoff(), 0)
        self._client = client
        self._tasks = [
            asyncio.create_task(self._read(), name=f"pyqueue-finished-reader-{self._name}"),
            asyncio.create_task(self._check(), name=f"pyqueue-finished-checker-{self._name}"),
        ]

    async def close(self) -> None:
        """End every wait with :class:`QueueClosedError` and release the connections."""
        if self._closing:
            return
        self._closing = True
        closed = QueueClosedError(f"queue {self._name!r} is closed")
        for futures in list(self._waiters.values()):
            for future in futures:
                if not future.done():
                    future.set_exception(closed)
        for barrier in self._barriers.values():
            if not barrier.done():
                barrier.cancel()
        tasks, self._tasks = self._tasks, []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5.0
        pending = {t for t in tasks if not t.done()}
        while pending and loop.time() < deadline:
            for task in pending:
                task.cancel()  # again each round: one cancellation can be lost
            _, pending = await asyncio.wait(pending, timeout=0.1)
        for task in tasks:
            if task.done() and not task.cancelled():
                task.exception()  # retrieved: a failure here was already logged
        if pending:
            log.warning("queue %r: %d finished() task(s) did not stop", self._name, len(pending))
        await self._drop_pubsub()
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(RedisError, OSError):
                await client.aclose()

    # --- the reader ---------------------------------------------------------------

    async def _read(self) -> None:
        delay, most = _RECONNECT
        while not self._closing:
            try:
                await self._subscribe()
                delay = _RECONNECT[0]
                self.check()  # anything may have ended while we were not listening
                await self._listen()
            except (RedisError, OSError) as exc:
                if not self._closing:
                    log.info("queue %r: finished() subscription lost: %s", self._name, exc)
            self._subscribed.clear()
            await self._drop_pubsub()
            if self._closing:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, most)

    async def _subscribe(self) -> None:
        assert self._client is not None
        pubsub = self._client.pubsub()
        self._pubsub = pubsub
        names = outcomes.channels(self._keys)
        await pubsub.subscribe(*names)
        pending = len(names)
        async with asyncio.timeout(_CONFIRM_TIMEOUT):
            while pending:
                message = await pubsub.get_message(timeout=_READ_SLICE)
                if message is None:
                    continue
                if message["type"] == "subscribe":
                    pending -= 1
                else:
                    self._dispatch(message)
        self._subscribed.set()

    async def _listen(self) -> None:
        pubsub = self._pubsub
        assert pubsub is not None
        loop = asyncio.get_running_loop()
        last = loop.time()
        pinged = False
        while not self._closing:
            message = await pubsub.get_message(timeout=_READ_SLICE)
            now = loop.time()
            if message is not None:
                last, pinged = now, False
                self._dispatch(message)
                continue
            if now - last < self._idle:
                continue
            if pinged:
                raise RedisConnectionError(
                    f"pub/sub connection silent for {2 * self._idle:g} s (no reply to PING)"
                )
            await pubsub.ping()
            pinged, last = True, now

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "pong":
            barrier = self._barriers.pop(_text(message.get("data")), None)
            if barrier is not None and not barrier.done():
                barrier.set_result(None)
            return
        if kind != "message":
            return
        found = outcomes.parse_message(self._keys, _text(message["channel"]),
                                       _text(message["data"]))
        if found is not None:
            self._resolve(*found)

    async def _drop_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            # Typed in redis-py 8, untyped before: called through Any for both.
            aclose: Any = pubsub.aclose
            with contextlib.suppress(RedisError, OSError):
                await aclose()

    # --- the checker --------------------------------------------------------------

    async def _check(self) -> None:
        loop = asyncio.get_running_loop()
        next_full = loop.time() + RECHECK_EVERY
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, next_full - loop.time())):
                    await self._wake.wait()
            self._wake.clear()
            if loop.time() >= next_full:
                self._to_check.update(self._waiters)
                next_full = loop.time() + RECHECK_EVERY
            await self._subscribed.wait()
            ids = [job_id for job_id in self._to_check if job_id in self._waiters]
            self._to_check.clear()
            if ids:
                await self._check_ids(ids)

    async def _check_ids(self, ids: list[str]) -> None:
        assert self._client is not None
        try:
            found = await outcomes.read(self._client, self._keys, ids)
        except (RedisError, OSError) as exc:
            log.info("queue %r: finished() could not read job states: %s", self._name, exc)
            self._to_check.update(ids)
            await asyncio.sleep(_RECONNECT[1] / 10)
            self._wake.set()
            return
        missing = []
        for job_id, outcome in zip(ids, found, strict=True):
            if outcome is outcomes.MISSING:
                missing.append(job_id)
            elif outcome is not None:
                self._resolve(job_id, outcome)
        if missing:
            if await self._barrier():
                for job_id in missing:
                    self._resolve(job_id, outcomes.MISSING)
            else:
                self._to_check.update(missing)

    async def _barrier(self) -> bool:
        """True once the reader has read everything published before this call."""
        pubsub = self._pubsub
        if pubsub is None or not self._subscribed.is_set():
            return False
        token = f"pyqueue-barrier-{next(self._barrier_ids)}"
        barrier: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._barriers[token] = barrier
        try:
            # Only written here: the reader task reads the PONG, in order.
            await pubsub.ping(token)
            async with asyncio.timeout(_BARRIER_TIMEOUT):
                await barrier
        except (RedisError, OSError, TimeoutError):
            self._barriers.pop(token, None)
            return False
        return True


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)
