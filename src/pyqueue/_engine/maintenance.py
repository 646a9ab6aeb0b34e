"""Background duties of a worker: promote due delayed jobs, recover stalled ones.

Delayed promotion is event-driven: producers publish each new due time on the
``delayed`` channel, and the worker sleeps exactly until the earliest known due
time (at most ``guard_interval``), as Node Bull does. Nothing polls faster.
The subscription is checked for silence (see :mod:`pyqueue._protocol.pubsub`): a dead
one would otherwise leave new due times unheard until the next guard run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from pyqueue._engine.outage import retry_delay
from pyqueue._protocol.bull import wire
from pyqueue._protocol.bull.keys import QueueKeys
from pyqueue._protocol.bull.scripts import Scripts
from pyqueue._protocol.fastconn import DEFAULT_TIMEOUT
from pyqueue._protocol.pubsub import SilenceGuard, Subscription

log = logging.getLogger("pyqueue.maintenance")


def _now() -> int:
    return int(time.time() * 1000)


class DelayedPromoter:
    """Runs ``updateDelaySet`` at each due time and listens for earlier ones."""

    def __init__(
        self,
        scripts: Scripts,
        pubsub_client: aioredis.Redis,
        keys: QueueKeys,
        token: str,
        guard_interval: int,
        on_error: Callable[[BaseException], None],
        silence_timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._silence = silence_timeout
        self._scripts = scripts
        self._pubsub_client = pubsub_client
        self._keys = keys
        self._token = token
        self._guard = guard_interval
        self._on_error = on_error
        self._wake = asyncio.Event()
        self._next_run = math.inf

    async def run(self) -> None:
        """Run until cancelled."""
        listener = asyncio.create_task(self._listen())
        try:
            await self._promote_loop()
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    async def _promote_loop(self) -> None:
        failures = 0
        while True:
            try:
                now = _now()
                score = await self._scripts.update_delay_set(now=now, token=self._token)
                failures = 0
                wait_ms = float(self._guard)
                if score is not None:
                    due = score / 4096
                    wait_ms = min(max(due - _now(), 0.0), wait_ms)
            except RedisError as exc:
                self._on_error(exc)
                failures += 1
                # Soon after one error (a failover), backing off to 5 s in an outage.
                wait_ms = 1000 * retry_delay(failures, 5_000)
            self._next_run = _now() + wait_ms
            if wait_ms > 0:
                self._wake.clear()
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a
                # cancellation that races with the event being set.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait_ms / 1000):
                        await self._wake.wait()

    def notify(self, due_ms: float) -> None:
        """A due time was announced; wake up if it is earlier than the next run."""
        if math.ceil(due_ms) < self._next_run:
            self._next_run = math.ceil(due_ms)
            self._wake.set()

    async def _listen(self) -> None:
        # Anything published while we were not subscribed may be missed: promote
        # once right after each (re)subscription.
        async def subscribed() -> None:
            self._wake.set()

        def heard(data: Any) -> None:
            self.notify(float(data))

        await listen(
            self._pubsub_client, self._keys.channel("delayed"), subscribed, heard,
            self._on_error, self._silence,
        )


class StalledChecker:
    """Runs Bull's stalled-job check every ``stalled_interval`` ms."""

    def __init__(
        self,
        scripts: Scripts,
        stalled_interval: int,
        max_stalled_count: int,
        on_result: Callable[[list[str], list[str]], None],
        on_error: Callable[[BaseException], None],
    ) -> None:
        self._scripts = scripts
        self._interval = stalled_interval
        self._max = max_stalled_count
        self._on_result = on_result
        self._on_error = on_error

    async def check_once(self) -> tuple[list[str], list[str]]:
        failed, stalled = await self._scripts.move_stalled_jobs_to_wait(
            max_stalled_count=self._max, now=_now(), stalled_interval=self._interval
        )
        if failed or stalled:
            self._on_result(failed, stalled)
        return failed, stalled

    async def run(self) -> None:
        """Check at start and then every interval, until cancelled."""
        while True:
            try:
                await self.check_once()
            except RedisError as exc:
                self._on_error(exc)
            await asyncio.sleep(self._interval / 1000)


class AbortListener:
    """Hears ``queue.abort(job_id)`` for active jobs on the queue's abort channel.

    Args:
        pubsub_client: The worker's pub/sub client.
        keys: The queue's keys.
        on_abort: ``on_abort(job_id, reason)`` per message (for any worker's jobs).
        on_subscribed: Awaited after each (re)subscription: messages published
            while unsubscribed are lost, so the worker re-reads its jobs' flags.
        on_error: Reports a Redis error; the listener resubscribes.
    """

    def __init__(
        self,
        pubsub_client: aioredis.Redis,
        keys: QueueKeys,
        on_abort: Callable[[str, str], None],
        on_subscribed: Callable[[], Awaitable[None]],
        on_error: Callable[[BaseException], None],
        silence_timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._client = pubsub_client
        self._keys = keys
        self._on_abort = on_abort
        self._on_subscribed = on_subscribed
        self._on_error = on_error
        self._silence = silence_timeout

    async def run(self) -> None:
        """Run until cancelled."""
        await listen(
            self._client, self._keys.abort_channel, self._on_subscribed, self._heard,
            self._on_error, self._silence,
        )

    def _heard(self, data: Any) -> None:
        decoded = wire.loads(data)
        if isinstance(decoded, dict) and isinstance(decoded.get("jobId"), str):
            self._on_abort(decoded["jobId"], str(decoded.get("reason") or "aborted"))


async def listen(
    client: aioredis.Redis,
    channel: str,
    on_subscribed: Callable[[], Awaitable[None]],
    on_message: Callable[[Any], None],
    on_error: Callable[[BaseException], None],
    silence_timeout: float,
) -> None:
    """Hear ``channel`` until cancelled, resubscribing after every Redis error.

    ``on_subscribed`` is awaited after each (re)subscription (what was published
    meanwhile is lost). A message ``on_message`` cannot read (it raises
    ValueError: anyone can publish anything) is skipped, not fatal.
    """
    failures = 0
    while True:
        subscription = Subscription(client)
        try:
            await subscription.subscribe(channel)
            await on_subscribed()
            failures = 0
            guard = SilenceGuard(subscription, silence_timeout)
            while True:
                message = await guard.next_message()
                if message.get("type") != "message":
                    continue
                with contextlib.suppress(ValueError):
                    on_message(message["data"])
        except RedisError as exc:
            on_error(exc)
            failures += 1
            # 50 ms doubling up to 5 s: quick after a failover, quiet in an outage.
            await asyncio.sleep(retry_delay(failures, 5_000))
        finally:
            with contextlib.suppress(RedisError, OSError):
                await subscription.aclose()
