"""Reading a subscribed connection: cancels that arrive, and silence that is noticed.

**Cancels.** A task waiting on pub/sub must stop when it is cancelled, wherever the
cancel lands. redis-py can swallow one: on Python 3.11, ``asyncio.wait_for``, which
redis-py awaits around every write when the connection has a ``socket_timeout``,
returns the write's result instead of raising when the cancel arrives after the
write has finished (CPython gh-86296; 3.12 rebuilt ``wait_for`` on
``asyncio.timeout``). redis-py 8 writes several commands before reading a reply
while it sets up a connection (HELLO, CLIENT SETINFO, then SUBSCRIBE), so a
subscriber cancelled then carried on and waited for a message for ever, holding its
connection: 15-75 of 200 did on redis-py 8.0-8.2 and none on 5.2-7.4. Python counts
every cancel request (``Task.cancelling()``) even when the ``CancelledError`` is
swallowed, so :func:`deliver_cancel` compares the count before and after each
redis-py call and raises the lost cancel itself. :class:`Subscription` does that
for every call of one subscription; any code that subscribes uses it.

**Silence.** A subscribed connection only ever reads. When the server vanishes
without a FIN or RST (a NAT entry expired, a host lost power, a route is
black-holed), the read just waits, and the subscriber stops hearing events without
noticing. So after ``idle`` seconds without traffic we send PING and give the reply
as long again: a connection that answers nothing in that time is treated as
dropped, which the callers already handle by resubscribing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.exceptions import ConnectionError as RedisConnectionError

T = TypeVar("T")


async def deliver_cancel(call: Awaitable[T]) -> T:
    """Await ``call``; if this task was cancelled meanwhile and ``call`` swallowed
    the ``CancelledError``, raise it now.

    Raises:
        asyncio.CancelledError: the task was cancelled during ``call``.
    """
    task = asyncio.current_task()
    before = task.cancelling() if task is not None else 0
    result = await call
    if task is not None and task.cancelling() > before:
        raise asyncio.CancelledError
    return result


class Subscription:
    """One pub/sub connection of ``client``'s pool whose every call delivers cancels.

    Use as ``async with Subscription(client) as sub``: leaving it (cancelled or not)
    unsubscribes and returns or closes the connection.
    """

    def __init__(self, client: aioredis.Redis) -> None:
        self.pubsub: PubSub = client.pubsub()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def subscribe(self, *channels: str) -> None:
        """SUBSCRIBE; the confirmations arrive as messages of type ``subscribe``."""
        await deliver_cancel(self.pubsub.subscribe(*channels))

    async def psubscribe(self, *patterns: str) -> None:
        """PSUBSCRIBE; the confirmations arrive as messages of type ``psubscribe``."""
        await deliver_cancel(self.pubsub.psubscribe(*patterns))

    async def get_message(
        self, timeout: float | None, *, ignore_subscribe_messages: bool = False
    ) -> dict[str, Any] | None:
        """The next message, or None after ``timeout`` seconds (None: wait for one)."""
        message: dict[str, Any] | None = await deliver_cancel(
            self.pubsub.get_message(
                ignore_subscribe_messages=ignore_subscribe_messages, timeout=timeout
            )
        )
        return message

    async def ping(self) -> None:
        """PING; on a subscribed connection the reply arrives as a ``pong`` message."""
        await deliver_cancel(self.pubsub.ping())

    async def aclose(self) -> None:
        """Unsubscribe and give the connection back (redis-py shields this from cancels)."""
        await self.pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]


class SilenceGuard:
    """Yields the messages of one subscription; raises when it goes silent."""

    def __init__(self, subscription: Subscription, idle: float) -> None:
        self._sub = subscription
        self._idle = idle

    async def next_message(self) -> dict[str, Any]:
        """The next message other than a PING reply.

        Raises:
            redis.exceptions.ConnectionError: nothing arrived for ``idle`` seconds,
                nor within ``idle`` more after a PING.
        """
        pinged = False
        while True:
            message = await self._sub.get_message(timeout=self._idle)
            if message is None:
                if pinged:
                    raise RedisConnectionError(
                        f"pub/sub connection silent for {2 * self._idle:g} s "
                        "(no reply to PING); reconnecting"
                    )
                await self._sub.ping()
                pinged = True
                continue
            pinged = False
            if message.get("type") != "pong":
                return message

