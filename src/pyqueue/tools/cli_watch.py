"""``pyqueue watch``: a live, in-place view of queues that outlives a Redis outage.

Throughput comes from the queues' ``completed`` and ``failed`` pub/sub channels,
which Bull and pyqueue publish on every finished job, so it is right even when
jobs are removed on completion (where counting the completed set would show 0).
Each frame also carries the flags of :mod:`pyqueue.tools.diagnosis` (why a
queue may be stuck), diagnosed with the frame's counts (bounded reads).

When Redis goes away the view stays: the last figures are kept, marked stale,
under a line saying "Redis unreachable since <time>", until Redis answers again
(the client reconnects by itself; the subscription is made anew). The view
runs on the terminal's alternate screen: Ctrl-C restores the screen and the
cursor as they were and exits with status 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from typing import Any

import click
import redis.asyncio as aioredis
from redis.exceptions import RedisError
from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from pyqueue import Queue
from pyqueue.tools import diagnosis, overview
from pyqueue.tools.cli_support import CliError, Settings, existing_queue, run
from pyqueue.tools.cli_tables import LEGEND, queue_table

REDISCOVER_EVERY = 10  # frames between looking for new queues, when none were named


class _Finished:
    """Counts finished jobs per queue from the completed/failed channels."""

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self.counts: Counter[str] = Counter()
        self._reader: asyncio.Task[None] | None = None
        self.subscribed = asyncio.Event()

    async def start(self) -> None:
        self._reader = asyncio.create_task(self._run())
        # The first subscription before the first frame, so no finish is missed.
        waiter = asyncio.create_task(self.subscribed.wait())
        await asyncio.wait({waiter, self._reader}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if self._reader.done():
            self._reader.result()

    async def _run(self) -> None:
        while True:
            pubsub = self._client.pubsub()
            try:
                glob = overview.glob_escape(self._prefix)
                await pubsub.psubscribe(f"{glob}:*:completed", f"{glob}:*:failed")
                self.subscribed.set()
                await self._read(pubsub)
            except (RedisError, OSError):
                # Redis went away: finishes meanwhile are not heard (the rate shows a
                # gap, never a burst); subscribe again once it answers.
                self.subscribed.clear()
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]

    async def _read(self, pubsub: Any) -> None:
        # A reader that waits on the socket: polling with timeout=0 leaves messages
        # that arrived in one read buffered (and uncounted) until more data comes.
        while True:
            msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if msg is None:
                continue
            channel = bytes(msg["channel"]).decode("utf-8", "replace")
            queue = channel[len(self._prefix) + 1:].rsplit(":", 1)[0]
            self.counts[queue] += 1
            # Buffered messages are parsed without suspending: yield, or a busy
            # queue's stream of events would starve the refresh loop.
            await asyncio.sleep(0)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader


def render(found: list[diagnosis.Diagnosis], rates: dict[str, float], prefix: str,
           interval: float, down_since: float | None = None, error: str = "") -> Group:
    """One frame: the head line, an outage line when Redis is unreachable, the table."""
    clock = time.strftime("%H:%M:%S")
    head = Text(f"pyqueue watch  prefix={prefix}  every {interval:g}s  {clock}  (Ctrl-C quits)")
    parts: list[Any] = [head]
    if down_since is not None:
        since = time.strftime("%H:%M:%S", time.localtime(down_since))
        seconds = int(time.time() - down_since)
        parts.append(Text(f"Redis unreachable since {since} ({seconds}s): {error}; "
                          "figures below are from before, retrying", style="bold red"))
    if not found:
        parts.append(Text(f"no queues under prefix {prefix!r} yet"))
        return Group(*parts)
    parts.append(queue_table(found, rates))
    parts.append(Text(LEGEND + "; /s finished jobs per second", style="dim"))
    return Group(*parts)


class _View:
    """The state of a live view between frames."""

    def __init__(self, client: aioredis.Redis, settings: Settings, named: list[str]) -> None:
        self.client = client
        self.settings = settings
        self.named = named
        self.names: list[str] = list(named)
        self.queues: dict[str, Queue[Any]] = {}
        self.found: list[diagnosis.Diagnosis] = []
        self.down_since: float | None = None
        self.error = ""

    async def refresh(self, frame: int) -> None:
        """Read the figures; on a Redis error keep the last ones and note the outage."""
        try:
            if not self.named and (frame % REDISCOVER_EVERY == 0 or not self.names):
                self.names = await overview.discover_queues(self.client, self.settings.prefix)
            # Every frame: the flags must agree with the counts shown beside them.
            self.found = await diagnosis.diagnose(
                self.client, self.settings.prefix, self.names, queues=self.queues)
            self.down_since = None
        except (RedisError, OSError) as exc:
            if self.down_since is None:
                self.down_since = time.time()
            self.error = str(exc) or type(exc).__name__


async def _loop(client: aioredis.Redis, settings: Settings, named: list[str], interval: float,
                once: bool) -> None:
    for name in named:
        await existing_queue(client, settings, name)
    finished = _Finished(client, settings.prefix)
    await finished.start()
    console = Console(highlight=False)
    view = _View(client, settings, named)
    last_counts: Counter[str] = Counter()
    last_time = time.monotonic()
    rates: dict[str, float] = {}
    try:
        await view.refresh(0)
        if view.down_since is not None:
            raise RedisError(view.error)
        if once:
            console.print(render(view.found, rates, settings.prefix, interval))
            return
        with Live(render(view.found, rates, settings.prefix, interval), console=console,
                  screen=True, auto_refresh=False) as live:
            frame = 0
            while True:
                await asyncio.sleep(interval)
                frame += 1
                await view.refresh(frame)
                now = time.monotonic()
                elapsed = max(now - last_time, 1e-6)
                if view.down_since is None:
                    rates = {q: (finished.counts[q] - last_counts[q]) / elapsed
                             for q in view.names}
                    last_counts, last_time = Counter(finished.counts), now
                live.update(render(view.found, rates, settings.prefix, interval,
                                   view.down_since, view.error), refresh=True)
    finally:
        await finished.close()


def watch(settings: Settings, named: list[str], interval: float, *, once: bool) -> None:
    """Run the live view until Ctrl-C (then return normally: exit status 0).

    Redis must answer at start (a wrong URL is one error line and exit 4);
    after that an outage is shown in the view, which waits for Redis to return.
    """

    async def body(client: aioredis.Redis) -> Any:
        await _loop(client, settings, named, interval, once)

    try:
        run(settings, body)
    except KeyboardInterrupt:
        click.echo("")
    except CliError:
        raise
