"""Reading BullMQ's ``events`` stream: what Node's ``QueueEvents`` consumes.

Every script appends ``event``, ``jobId`` and the event's own fields to the
stream (XADD, most of them trimmed to about meta's ``opts.maxLenEvents``).
:class:`StreamFeed` reads it in order with a blocking XREAD on a connection of
its own, resuming after the last entry it returned, so that nothing between two
reads is missed (Node starts from ``$`` on every reconnection; a feed asked to
start from ``$`` pins that to the stream's newest entry on its first read).
:func:`decode_entry` turns one entry into a :class:`QueueEvent`, and
:func:`node_args` gives the arguments Node's ``QueueEvents`` emits with.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pyqueue._protocol.bull.wire import loads
from pyqueue._protocol.interface import QueueEvent

if TYPE_CHECKING:
    import redis.asyncio as aioredis


def decode_entry(entry_id: bytes | str, raw: Mapping[bytes, bytes]) -> QueueEvent:
    """One stream entry as a :class:`QueueEvent` (fields decoded as UTF-8)."""
    fields = {k.decode("utf-8", "replace"): v.decode("utf-8", "replace") for k, v in raw.items()}
    name = fields.pop("event", "")
    job_id = fields.pop("jobId", "")
    ident = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return QueueEvent(name, job_id, fields, ident)


def node_args(event: QueueEvent) -> dict[str, Any]:
    """The object Node's ``QueueEvents`` passes to listeners of this event.

    As Node: ``progress`` data and a ``completed`` returnvalue are JSON-decoded,
    a ``delayed`` delay is a number; other fields stay strings.
    """
    args: dict[str, Any] = dict(event.fields)
    if event.job_id:
        args["jobId"] = event.job_id
    try:
        if event.name == "progress" and "data" in args:
            args["data"] = loads(args["data"])
        elif event.name == "completed" and "returnvalue" in args:
            args["returnvalue"] = loads(args["returnvalue"])
        elif event.name == "delayed" and "delay" in args:
            args["delay"] = float(args["delay"])
    except ValueError:
        pass  # written by another client: passed on as text
    return args


class StreamFeed:
    """The queue's events, in order, from one XREAD connection.

    Args:
        client: A connection used only by this feed (XREAD BLOCK holds it).
        key: The queue's ``events`` stream key.
        last_id: Start after this entry id; ``"$"``: after the newest entry
            when the feed first reads; ``"0"``: from the oldest kept.
    """

    def __init__(self, client: aioredis.Redis, key: str, *, last_id: str = "$",
                 count: int = 1000) -> None:
        self._client = client
        self._key = key
        self._last = last_id
        self._count = count

    @property
    def last_id(self) -> str:
        """The id after which the next read starts."""
        return self._last

    async def _pin_start(self) -> None:
        newest: Any = await self._client.xrevrange(self._key, "+", "-", count=1)
        self._last = newest[0][0].decode() if newest else "0-0"

    async def next_batch(self, timeout: float) -> list[QueueEvent]:
        """The entries after the last one returned, waiting up to ``timeout`` s for one."""
        if self._last == "$":
            await self._pin_start()
        block = max(int(timeout * 1000), 1)
        reply: Any = await self._client.xread({self._key: self._last}, count=self._count,
                                              block=block)
        events: list[QueueEvent] = []
        streams = reply.items() if isinstance(reply, dict) else reply or []  # RESP3 / RESP2
        for _stream, entries in streams:
            for entry_id, raw in entries:
                events.append(decode_entry(entry_id, raw))
        if events:
            self._last = events[-1].id
        return events

    async def aclose(self) -> None:
        """Close the feed's connection."""
        await self._client.aclose()
