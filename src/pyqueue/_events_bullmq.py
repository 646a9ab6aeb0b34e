"""BullMQ mode of :class:`pyqueue.QueueEvents`: the queue's ``events`` stream.

``QueueEvents(name, url, protocol="bullmq")`` makes a :class:`BullMQQueueEvents`.
It reads the stream with the protocol's :class:`~pyqueue._protocol.interface.EventFeed`
on a connection of its own, from the newest entry at :meth:`start` (or from
``last_event_id``), and after a dropped connection it resumes after the last entry
it emitted: unlike pub/sub, nothing written meanwhile is lost.

Events Bull mode also has are emitted with Bull mode's arguments, so a listener
works in both modes::

    waiting(job_id)   active(job_id, prev)   stalled(job_id)   duplicated(job_id)
    progress(job_id, data)   completed(job_id, return_value, prev)
    failed(job_id, reason, prev)   paused()   resumed()   drained()

Every other BullMQ event (``added``, ``delayed``, ``removed``, ``deduplicated``,
``retries-exhausted``, ``cleaned``, ``waiting-children``...) is emitted with one
argument: the object Node's ``QueueEvents`` passes (``{"jobId": ..., ...}``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from redis.exceptions import RedisError

from pyqueue._protocol.bullmq.events import node_args
from pyqueue._protocol.formats import open_protocol
from pyqueue._protocol.interface import EventFeed, QueueEvent
from pyqueue.errors import QueueClosedError
from pyqueue.events import _FORMAT_CLASSES, QueueEvents

log = logging.getLogger("pyqueue.events")

_NO_ARGS = frozenset({"paused", "resumed", "drained"})
_ID_ONLY = frozenset({"waiting", "stalled", "duplicated"})


class BullMQQueueEvents(QueueEvents):
    """A :class:`~pyqueue.QueueEvents` over BullMQ's ``events`` stream.

    Made by ``QueueEvents(..., protocol="bullmq")``, which takes this class in its
    ``__init__``; its ``last_event_id`` is where reading starts.
    """

    _feed: EventFeed | None

    def _adopted(self) -> None:
        self._feed = None

    def _open_feed(self, last_id: str) -> EventFeed:
        client = self._spec.async_client(socket_timeout=None)
        return open_protocol("bullmq", client, self.prefix, self.name).event_feed(
            client, last_id=last_id
        )

    async def start(self) -> None:
        """Open the stream; returns once its starting point is fixed.

        Raises:
            QueueClosedError: after :meth:`close`.
            redis.exceptions.ConnectionError: Redis is unreachable.
        """
        if self._closed:
            raise QueueClosedError(f"events of queue {self.name!r} are closed")
        if self._task is not None:
            return
        feed = self._open_feed(self._last_event_id)
        try:
            # The first read pins "$" to the newest entry: what follows start() is heard.
            first = await feed.next_batch(0.001)
        except BaseException:
            await feed.aclose()
            raise
        self._feed = feed
        for event in first:
            self._emit_event(event)
        self._task = asyncio.create_task(self._read(), name=f"pyqueue-events-{self.name}")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            while not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=0.1)
            with contextlib.suppress(asyncio.CancelledError):
                await task
        feed, self._feed = self._feed, None
        if feed is not None:
            with contextlib.suppress(RedisError, OSError):
                await feed.aclose()

    async def _read(self) -> None:
        delay, most = self._delays
        while not self._closed:
            feed = self._feed
            assert feed is not None
            try:
                batch = await feed.next_batch(5.0)
            except (RedisError, OSError) as exc:
                log.warning("queue %r events: connection lost: %s", self.name, exc)
                self.emit("error", exc)
                last = getattr(feed, "last_id", self._last_event_id)
                with contextlib.suppress(RedisError, OSError):
                    await feed.aclose()
                await asyncio.sleep(delay)
                delay = min(delay * 2, most)
                self._feed = self._open_feed(last)  # resumes after the last entry emitted
                continue
            delay = self._delays[0]
            for event in batch:
                self._emit_event(event)

    def _emit_event(self, event: QueueEvent) -> None:
        name = event.name
        args = node_args(event)
        prev = event.fields.get("prev", "")
        if name in _NO_ARGS:
            self.emit(name)
        elif name in _ID_ONLY:
            self.emit(name, event.job_id)
        elif name == "active":
            self.emit("active", event.job_id, prev or "waiting")
        elif name == "progress":
            self.emit("progress", event.job_id, args.get("data"))
        elif name == "completed":
            self.emit("completed", event.job_id, args.get("returnvalue"), prev or "active")
        elif name == "failed":
            self.emit("failed", event.job_id, event.fields.get("failedReason", ""),
                      prev or "active")
        else:
            self.emit(name, args)


_FORMAT_CLASSES["bullmq"] = BullMQQueueEvents
