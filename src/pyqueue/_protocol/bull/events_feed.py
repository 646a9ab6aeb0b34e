"""Bull's pub/sub events as an :class:`pyqueue._protocol.interface.EventFeed`.

Bull publishes each state change on a channel named after it (bull-protocol.md
§4.1); this feed subscribes to all of them on one connection and hands them
out as :class:`QueueEvent` objects named and shaped as BullMQ's stream entries
(``completed`` with ``returnvalue``, ``failed`` with ``failedReason``,
``progress`` with ``data``, ``debounced`` as ``deduplicated``...), so that a
reader of either format sees one vocabulary. Pub/sub keeps nothing: events
published while the feed is not subscribed are lost, as they are for Node.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any, cast

from pyqueue._protocol.bull.wire import dumps, loads
from pyqueue._protocol.interface import QueueEvent

if TYPE_CHECKING:
    import redis.asyncio as aioredis
    from redis.asyncio.client import PubSub

    from pyqueue._protocol.bull.keys import QueueKeys

_PLAIN = ("progress", "completed", "failed", "delayed", "paused", "resumed", "drained")
_GLOB_SPECIAL = str.maketrans({c: "\\" + c for c in "\\*?[]"})


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _decode(event: str, data: str) -> QueueEvent:
    """One Bull message as a BullMQ-named event (ValueError when unreadable)."""
    if event in ("waiting", "stalled", "duplicated"):
        return QueueEvent(event, data, {})
    if event == "active":
        return QueueEvent("active", data, {"prev": "waiting"})
    if event == "debounced":
        return QueueEvent("deduplicated", data, {})
    if event == "delayed":
        return QueueEvent("delayed", "", {"delay": data})
    if event in ("paused", "resumed", "drained"):
        return QueueEvent(event, "", {})
    payload: Any = loads(data)
    if not isinstance(payload, dict) or "jobId" not in payload:
        raise ValueError(f"unreadable {event} message {data!r}")
    job_id = str(payload["jobId"])
    if event == "progress":
        return QueueEvent("progress", job_id, {"data": dumps(payload.get("progress"))})
    val = payload.get("val")
    if event == "completed":
        value = val if isinstance(val, str) else "null"
        return QueueEvent("completed", job_id, {"returnvalue": value, "prev": "active"})
    reason = val if isinstance(val, str) else ""
    return QueueEvent("failed", job_id, {"failedReason": reason, "prev": "active"})


class PubSubFeed:
    """Bull's channels of one queue, subscribed on ``client``'s pub/sub connection."""

    def __init__(self, client: aioredis.Redis, keys: QueueKeys) -> None:
        self._client = client
        self._pubsub: PubSub | None = None
        self._channels = {keys.channel(e): e for e in _PLAIN}
        self._patterns: dict[str, tuple[str, str]] = {}
        for event, head in (
            ("waiting", keys.waiting_channel("")), ("active", keys.active_channel("")),
            ("stalled", keys.stalled_channel), ("duplicated", keys.channel("duplicated")),
            ("debounced", keys.debounced_channel("")),
        ):
            self._patterns[head.translate(_GLOB_SPECIAL) + "*"] = (event, head)

    async def _subscribed(self) -> PubSub:
        if self._pubsub is None:
            pubsub = self._client.pubsub()
            await pubsub.subscribe(*self._channels)
            await pubsub.psubscribe(*self._patterns)
            self._pubsub = pubsub
        return self._pubsub

    def _event(self, message: dict[str, Any]) -> QueueEvent | None:
        data = _text(message["data"])
        if message["type"] == "message":
            event = self._channels.get(_text(message["channel"]))
            if event is None:
                return None
        elif message["type"] == "pmessage":
            event, head = self._patterns[_text(message["pattern"])]
            # An empty token marks a publish Node's listeners ignore too.
            if event == "waiting" and _text(message["channel"]) == head:
                return None
        else:
            return None
        try:
            return _decode(event, data)
        except ValueError:
            return None  # anyone may publish anything on a channel

    async def next_batch(self, timeout: float) -> list[QueueEvent]:
        """Messages that arrived, waiting up to ``timeout`` seconds for the first."""
        pubsub = await self._subscribed()
        events: list[QueueEvent] = []
        wait: float | None = timeout
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True,
                                               timeout=wait if wait else 0.0)
            if message is None:
                if events or loop.time() >= deadline:
                    return events
                wait = deadline - loop.time()
                continue
            event = self._event(message)
            if event is not None:
                events.append(event)
                wait = 0.0

    async def aclose(self) -> None:
        """Unsubscribe and close the connection."""
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                # Any: redis-py's stubs type aclose() only from release 8 on.
                await cast("Any", self._pubsub).aclose()
        await self._client.aclose()
