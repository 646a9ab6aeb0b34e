"""Many ``job.finished()`` waits of a BullMQ-mode queue on one ``events`` stream reader.

A blocking XREAD holds its connection, so a reader per wait would cost a
connection per waiter (a thousand waiters, a thousand connections). Here one
reader task per queue object reads the stream and wakes the waiters of each job
the entries name; a woken waiter reads the job's outcome again, which says
whether it ended (a ``failed`` entry may be an attempt a retry follows).

No end is missed: a waiter registers first, then the reader's start is pinned
(the stream's newest entry id, read on the reader's own connection), and only
then does the waiter read the job's outcome. An end before the pin is in that
outcome; an end after it is an entry the reader will see. The reader lingers for
one read after its last waiter leaves, so waits one after another reuse it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from pyqueue._protocol.interface import EventFeed

# Seconds one XREAD blocks: also how long the reader lingers without waiters.
_BLOCK_S = 5.0
# Seconds between two tries of a reader whose connection failed.
_RETRY_S = 0.5


class StreamWaiters:
    """The waits of one queue object, on one reader.

    Args:
        open_client: A new connection for the reader (it blocks on XREAD).
        open_feed: The stream from an entry id on, over that connection.
        stream_key: The queue's ``events`` stream key (to pin the start).
    """

    def __init__(
        self, open_client: Callable[[], aioredis.Redis],
        open_feed: Callable[[aioredis.Redis, str], EventFeed], stream_key: str,
    ) -> None:
        self._open_client = open_client
        self._open_feed = open_feed
        self._key = stream_key
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._started: asyncio.Future[None] | None = None

    @property
    def reading(self) -> bool:
        """Whether a reader task (and its connection) is up."""
        return self._reader is not None

    @contextlib.asynccontextmanager
    async def watching(self, job_id: str) -> AsyncIterator[asyncio.Event]:
        """An event set whenever the stream names ``job_id``, from before the caller's
        next outcome read on. Clear it before each read of the outcome."""
        woken = asyncio.Event()
        self._waiters.setdefault(job_id, set()).add(woken)
        try:
            await self.ensure()
            yield woken
        finally:
            waiters = self._waiters.get(job_id)
            if waiters is not None:
                waiters.discard(woken)
                if not waiters:
                    del self._waiters[job_id]

    async def aclose(self) -> None:
        """Stop the reader now (the queue closes); waiters left are woken."""
        reader, self._reader = self._reader, None
        self._wake_all()
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader

    async def ensure(self) -> None:
        """Start the reader unless it runs; return once its start is pinned.

        A waiter calls it again after each wake: a reader that died (its
        exception is the waiter's next outcome read's too) is replaced.
        """
        if self._reader is None or self._started is None:
            loop = asyncio.get_running_loop()
            self._started = started = loop.create_future()
            self._reader = reader = loop.create_task(self._read(started))
            # Its failure reaches the waiters through their own reads.
            reader.add_done_callback(lambda t: t.cancelled() or t.exception())
        # Shielded: one waiter's cancellation must not cancel the others' start.
        await asyncio.shield(self._started)

    def _wake_all(self) -> None:
        for waiters in self._waiters.values():
            for woken in waiters:
                woken.set()

    def _dispatch(self, job_ids: set[str]) -> None:
        for job_id in job_ids:
            for woken in self._waiters.get(job_id, ()):
                woken.set()

    async def _read(self, started: asyncio.Future[None]) -> None:
        client = self._open_client()
        feed: EventFeed | None = None
        try:
            newest: Any = await client.xrevrange(self._key, "+", "-", count=1)
            feed = self._open_feed(client, newest[0][0].decode() if newest else "0-0")
            started.set_result(None)
            await self._follow(feed)
        except BaseException as exc:
            if self._reader is asyncio.current_task():
                self._reader = None  # the next waiter starts another
            if not started.done():
                started.set_exception(
                    exc if isinstance(exc, Exception) else RedisConnectionError("reader stopped"))
                started.exception()  # retrieved here; the waiters raise it
            self._wake_all()
            raise
        finally:
            with contextlib.suppress(Exception):
                if feed is not None:
                    await feed.aclose()
                await client.aclose()

    async def _follow(self, feed: EventFeed) -> None:
        """Wake the waiters of each job the stream names, until none is left."""
        while True:
            try:
                batch = await feed.next_batch(_BLOCK_S)
            except (RedisConnectionError, RedisTimeoutError, OSError):
                # Waiters read the outcome again (and raise if Redis is gone); the
                # feed resumes after its last entry, so nothing is skipped.
                self._wake_all()
                await asyncio.sleep(_RETRY_S)
                batch = []
            self._dispatch({event.job_id for event in batch})
            if not self._waiters:
                # Decided with no await in between: a waiter that comes after
                # this sees no reader and starts its own.
                if self._reader is asyncio.current_task():
                    self._reader = None
                return
