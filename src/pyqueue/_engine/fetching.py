"""The worker's fetch loop: one chain of jobs per free concurrency slot.

While jobs are waiting, the loop starts the next one with moveToActive. Once
that finds none (the queue is drained) it blocks on the wait list with BLMOVE,
on the worker's connection for blocking commands; it never polls. Each fetched
job starts a chain task, which runs it and then each job its finishing call
fetched, and gives its slot back when a finish fetches nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError, ResponseError

from pyqueue._engine.outage import is_connection_error, retry_delay
from pyqueue.errors import ScriptError
from pyqueue.job import now_ms

_log = logging.getLogger("pyqueue.worker")
_ORPHAN_SETTLE = 1.0
"""Seconds between the two looks for jobs locked by a lost fetch reply."""
_ORPHAN_BATCH = 500

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from pyqueue._engine.context import WorkerContext
    from pyqueue._protocol.bull.scripts import JobReply


class Fetcher:
    """Fills the worker's free concurrency slots with chains of jobs.

    Args:
        ctx: The worker's context (queue, token, options, local pause, events).
        bclient: The worker's connection for blocking commands (one connection).
        process: Runs one job and finishes it; returns the next job when the
            finishing call fetched one.
    """

    def __init__(
        self,
        ctx: WorkerContext,
        bclient: aioredis.Redis,
        process: Callable[
            [str, dict[bytes, bytes], asyncio.Task[Any]], Awaitable[JobReply | None]
        ],
    ) -> None:
        self._ctx = ctx
        self._queue = ctx.queue
        self._bclient = bclient
        self._options = ctx.options
        self._process = process
        self._bclient_id: int | None = None
        self._slots = asyncio.Semaphore(ctx.options.concurrency)
        self._drained = True
        self._fetching = False
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        # Lost fetch replies (see _requeue_orphans): suspected after a connection
        # error, looked for once the connection works again.
        self._orphans_suspected = False
        self._recovery: asyncio.Task[None] | None = None
        self._running: set[str] = set()
        # The running chains, one per busy slot (the worker waits for them).
        self.chains: set[asyncio.Task[None]] = set()

    def start(self) -> asyncio.Task[None]:
        """Start the fetch loop; returns its task."""
        self._task = asyncio.create_task(self._loop(), name="pyqueue-fetch")
        return self._task

    async def unblock(self) -> None:
        """Wake a fetch blocked on the wait list, which then finds nothing."""
        self._wake.set()
        if self._fetching and self._bclient_id is not None:
            # Wake a blocked BLMOVE cleanly instead of cancelling it mid-reply,
            # which could strand a moved id in active without a lock.
            with contextlib.suppress(RedisError, OSError):
                await self._queue.client.client_unblock(self._bclient_id)

    async def stop(self) -> None:
        """Stop fetching for good and wait (up to 2 s) for the loop to end."""
        self._stopping = True
        self._ctx.resumed.set()
        await self.unblock()
        fetch = self._task
        if fetch is not None:
            try:
                await asyncio.wait_for(asyncio.shield(fetch), 2.0)
            except TimeoutError:
                fetch.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await fetch
        recovery = self._recovery
        if recovery is not None:
            recovery.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await recovery

    async def _loop(self) -> None:
        failures = 0
        while not self._stopping:
            await self._slots.acquire()
            await self._ctx.resumed.wait()
            if self._stopping:
                self._slots.release()
                break
            if self._orphans_suspected and self._recovery is None:
                # Aside, not before the fetch: that may block for drain_delay.
                self._orphans_suspected = False
                self._recovery = asyncio.create_task(self._requeue_orphans())
            try:
                reply = await self._fetch()
                failures = 0
                self._ctx.healthy()
            except Exception as exc:  # a Redis error, or a reply we could not read
                self._slots.release()
                self._bclient_id = None
                self._ctx.report(exc)
                if is_connection_error(exc):
                    self._orphans_suspected = True
                failures += 1
                await asyncio.sleep(retry_delay(failures, self._options.retry_process_delay))
                continue
            if reply is None:
                self._slots.release()
                continue
            chain = asyncio.create_task(self._run_chain(reply))
            self.chains.add(chain)
            chain.add_done_callback(self.chains.discard)

    async def _fetch(self) -> JobReply | None:
        o = self._options
        limiter = o.limiter
        lim: dict[str, Any] = {}
        if limiter is not None:
            lim = {"limiter_max": limiter.max, "limiter_duration": limiter.duration,
                   "bounce_back": limiter.bounce_back, "group_key": limiter.group_key is not None}
        job_id = ""
        if self._drained:
            if self._bclient_id is None:
                self._bclient_id = await self._identify()
            self._fetching = True
            try:
                moved = await self._bclient.blmove(
                    self._queue.keys.wait, self._queue.keys.active,
                    o.drain_delay, "RIGHT", "LEFT",  # type: ignore[arg-type]  # Redis takes float seconds
                )
            finally:
                self._fetching = False
            if moved is None:
                return None
            job_id = moved.decode() if isinstance(moved, bytes) else str(moved)
        reply = await self._queue.scripts.move_to_active(
            token=self._ctx.token, lock_duration=o.lock_duration, now=now_ms(), job_id=job_id,
            worker=self._ctx.identity, **lim,
        )
        if isinstance(reply, int):
            # Rate limited. A job parked in delayed frees wait for the next fetch
            # (Bull parks every job that comes); a bounced one is back on wait, so
            # fetching again now would only get it back: wait out the window.
            self._drained = False
            if limiter is not None and limiter.bounce_back:
                await self._nap(min(reply, limiter.duration) / 1000)
            return None
        if reply is None:
            if not self._drained:
                self._drained = True
                self._ctx.emit("drained")
            return None
        self._drained = False
        return reply

    async def _nap(self, seconds: float) -> None:
        """Sleep, but wake at once when the worker stops or pauses."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()

    @property
    def client_id(self) -> int | None:
        """The ``CLIENT ID`` of the blocking connection, once it was named (None after a drop)."""
        return self._bclient_id

    async def _identify(self) -> int:
        """Name the blocking connection as Bull does; return its id for CLIENT UNBLOCK.

        Runs again after every reconnection, which drops the name.
        """
        # Some managed Redis services disable CLIENT SETNAME: the worker still works,
        # only Bull's getWorkers() does not list it (Bull shrugs this off too).
        with contextlib.suppress(ResponseError):
            await self._bclient.client_setname(self._queue.keys.worker_client_name)
        return int(await self._bclient.client_id())

    async def _locked_by_us(self) -> set[str]:
        """Ids in active whose lock holds this worker's token, that it does not run."""
        keys = self._queue.keys
        client = self._queue.client
        ids = [i.decode() if isinstance(i, bytes) else str(i)
               for i in await client.lrange(keys.active, 0, -1)]
        found: set[str] = set()
        for start in range(0, len(ids), _ORPHAN_BATCH):
            chunk = ids[start:start + _ORPHAN_BATCH]
            locks = await client.mget([keys.lock(i) for i in chunk])
            token = self._ctx.token.encode()
            found.update(i for i, lock in zip(chunk, locks, strict=True) if lock == token)
        return found - self._running

    async def _requeue_orphans(self) -> None:
        """Put back jobs a lost fetch reply moved to active, instead of waiting out their lock.

        moveToActive (and a finishing call that fetches the next job) locks the
        job with this worker's token before replying; when the connection drops
        first, the job sits in active under a lock nobody renews nor releases, and
        used to wait the whole ``lock_duration`` plus a stalled check. Two looks,
        :data:`_ORPHAN_SETTLE` apart, so that a reply still on its way (its job
        then runs here) is not mistaken for a lost one.
        """
        try:
            first = await self._locked_by_us()
            if first:
                await asyncio.sleep(_ORPHAN_SETTLE)
                orphans = first & await self._locked_by_us()
                for job_id in sorted(orphans):
                    with contextlib.suppress(ScriptError):  # finished, or taken meanwhile
                        # Back to the front of wait without counting an attempt.
                        await self._ctx.scripts.retry_job(
                            job_id, token=self._ctx.token, lifo=True
                        )
                        _log.info("requeued job %s: the reply that fetched it was lost", job_id)
        except (RedisError, OSError):
            # Redis is not back yet (the fetch loop reports that): look again later.
            self._orphans_suspected = True
        finally:
            self._recovery = None

    async def _run_chain(self, reply: JobReply | None) -> None:
        # Looked up once per chain, not per job: current_task() is not free.
        task = asyncio.current_task()
        assert task is not None
        running = self._running
        try:
            while reply is not None:
                raw, job_id = reply
                running.add(job_id)
                try:
                    reply = await self._process(job_id, raw, task)
                finally:
                    running.discard(job_id)
        except Exception as exc:
            # Last resort (process settles its own failures): never die silently.
            self._ctx.report(exc)
        finally:
            self._slots.release()
