"""Reading a subscribed connection that may go silent.

A subscribed connection only ever reads. When the server vanishes without a FIN
or RST (a NAT entry expired, a host lost power, a route is black-holed), the
read just waits, and the subscriber stops hearing events without noticing. So
after ``idle`` seconds without traffic we send PING and give the reply as long
again: a connection that answers nothing in that time is treated as dropped,
which the callers already handle by resubscribing.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio.client import PubSub
from redis.exceptions import ConnectionError as RedisConnectionError


class SilenceGuard:
    """Yields the messages of one subscription; raises when it goes silent."""

    def __init__(self, pubsub: PubSub, idle: float) -> None:
        self._pubsub = pubsub
        self._idle = idle

    async def next_message(self) -> dict[str, Any]:
        """The next message other than a PING reply.

        Raises:
            redis.exceptions.ConnectionError: nothing arrived for ``idle`` seconds,
                nor within ``idle`` more after a PING.
        """
        pinged = False
        while True:
            message: dict[str, Any] | None = await self._pubsub.get_message(
                timeout=self._idle
            )
            if message is None:
                if pinged:
                    raise RedisConnectionError(
                        f"pub/sub connection silent for {2 * self._idle:g} s "
                        "(no reply to PING); reconnecting"
                    )
                await self._pubsub.ping()
                pinged = True
                continue
            pinged = False
            if message.get("type") != "pong":
                return message
