"""``pyqueue watch``: a live, in-place view of queues.

Throughput comes from the queues' ``completed`` and ``failed`` pub/sub channels,
which Bull and pyqueue publish on every finished job, so it is right even when
jobs are removed on completion (where counting the completed set would show 0).
The view runs on the terminal's alternate screen: Ctrl-C restores the screen and
the cursor as they were and exits with status 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from typing import Any

import click
import redis.asyncio as aioredis
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from pyqueue.tools import overview
from pyqueue.tools.cli_support import CliError, Settings, existing_queue, format_age, run

REDISCOVER_EVERY = 10  # frames between looking for new queues, when none were named


class _Finished:
    """Counts finished jobs per queue from the completed/failed channels."""

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._pubsub = client.pubsub()
        self._prefix = prefix
        self.counts: Counter[str] = Counter()
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        glob = overview.glob_escape(self._prefix)
        await self._pubsub.psubscribe(f"{glob}:*:completed", f"{glob}:*:failed")
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        # A reader that waits on the socket: polling with timeout=0 leaves messages
        # that arrived in one read buffered (and uncounted) until more data comes.
        while True:
            msg = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
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
        with contextlib.suppress(Exception):
            await self._pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]


def _rate(value: float | None) -> str:
    # None until two frames exist: no rate is known yet, which is not a rate of 0.
    return "-" if value is None else f"{value:.1f}"


def render(stats: list[overview.QueueStats], rates: dict[str, float], prefix: str,
           interval: float) -> Group:
    table = Table("queue", "waiting", "active", "delayed", "failed", "completed", "paused",
                  "jobs/s", "oldest waiting", "workers", "state")
    for s in stats:
        c = s.counts
        table.add_row(s.name, str(c["waiting"]), str(c["active"]), str(c["delayed"]),
                      str(c["failed"]), str(c["completed"]), str(c["paused"]),
                      _rate(rates.get(s.name)), format_age(s.oldest_waiting_age),
                      str(s.workers), "paused" if s.paused else "running")
    clock = time.strftime("%H:%M:%S")
    head = Text(f"pyqueue watch  prefix={prefix}  every {interval:g}s  {clock}  (Ctrl-C quits)")
    if not stats:
        return Group(head, Text(f"no queues under prefix {prefix!r} yet"))
    return Group(head, table)


async def _loop(client: aioredis.Redis, settings: Settings, named: list[str], interval: float,
                once: bool) -> None:
    for name in named:
        await existing_queue(client, settings, name)
    finished = _Finished(client, settings.prefix)
    await finished.start()
    console = Console(highlight=False)
    names = named or await overview.discover_queues(client, settings.prefix)
    last_counts: Counter[str] = Counter()
    last_time = time.monotonic()
    rates: dict[str, float] = {}
    try:
        stats = await overview.queue_stats(client, settings.prefix, names)
        if once:
            console.print(render(stats, rates, settings.prefix, interval))
            return
        with Live(render(stats, rates, settings.prefix, interval), console=console,
                  screen=True, auto_refresh=False) as live:
            frame = 0
            while True:
                await asyncio.sleep(interval)
                frame += 1
                if not named and frame % REDISCOVER_EVERY == 0:
                    names = await overview.discover_queues(client, settings.prefix)
                now = time.monotonic()
                elapsed = max(now - last_time, 1e-6)
                rates = {q: (finished.counts[q] - last_counts[q]) / elapsed for q in names}
                last_counts, last_time = Counter(finished.counts), now
                stats = await overview.queue_stats(client, settings.prefix, names)
                live.update(render(stats, rates, settings.prefix, interval), refresh=True)
    finally:
        await finished.close()


def watch(settings: Settings, named: list[str], interval: float, *, once: bool) -> None:
    """Run the live view until Ctrl-C (then return normally: exit status 0)."""

    async def body(client: aioredis.Redis) -> Any:
        await _loop(client, settings, named, interval, once)

    try:
        run(settings, body)
    except KeyboardInterrupt:
        click.echo("")
    except CliError:
        raise
