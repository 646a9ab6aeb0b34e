"""What an operator sees first: the queues under a prefix and one line of figures each.

Shared by ``pyqueue queues``, ``pyqueue watch`` and the Prometheus queue collector.
Everything here is a handful of commands per queue (no job is loaded), so it can
run every second against a queue of millions of jobs.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field, replace
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from pyqueue import Queue
from pyqueue.monitoring import QueueKeys, queue_keys, workers_of
from pyqueue.tools import deployments

STATES = ("waiting", "active", "delayed", "failed", "completed", "paused")
# Keys whose presence says "a queue lives here". ``id`` is Bull's job counter,
# incremented by every add (custom ids too), so it finds almost every queue;
# the others find queues that were only paused or only given a schedule.
_MARKER_SUFFIXES = ("id", "meta", "meta-paused", "repeat", "wait", "failed", "completed")
_GLOB_SPECIAL = {ord(c): f"\\{c}" for c in "*?[]\\"}


def glob_escape(text: str) -> str:
    """``text`` with SCAN/PSUBSCRIBE glob characters escaped."""
    return text.translate(_GLOB_SPECIAL)


@dataclass(frozen=True, slots=True)
class QueueStats:
    """One queue's figures at one moment."""

    name: str
    counts: dict[str, int]
    paused: bool
    workers: int
    oldest_waiting_ms: int | None
    taken_at: float = field(default_factory=time.time)
    # Why the queue could not be read (a key of the wrong type, say); its figures are 0.
    error: str | None = None

    @property
    def oldest_waiting_age(self) -> float | None:
        """Seconds since the oldest waiting (or paused) job became due; None when none."""
        if self.oldest_waiting_ms is None:
            return None
        return max(0.0, self.taken_at - self.oldest_waiting_ms / 1000)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "counts": self.counts,
            "paused": self.paused,
            "workers": self.workers,
            "oldestWaitingAgeSeconds": self.oldest_waiting_age,
            "error": self.error,
        }


async def discover_queues(client: aioredis.Redis, prefix: str) -> list[str]:
    """Names of every queue under ``prefix``, sorted, by SCAN (never KEYS)."""
    head = f"{prefix}:"
    found: set[str] = set()
    for suffix in _MARKER_SUFFIXES:
        pattern = f"{glob_escape(prefix)}:*:{suffix}"
        async for raw in client.scan_iter(match=pattern, count=1000):
            key = bytes(raw).decode("utf-8", "replace")
            name = key[len(head):-(len(suffix) + 1)]
            # A job hash of a queue "a" whose id ends in ":meta" must not invent
            # queue "a:x": keep the shortest name that has a marker.
            if name:
                found.add(name)
    return sorted(_shortest(found))


def _shortest(names: set[str]) -> set[str]:
    return {n for n in names if not any(n.startswith(f"{o}:") for o in names if o != n)}


async def queue_exists(client: aioredis.Redis, keys: QueueKeys) -> bool:
    """True when any of the queue's marker keys exists."""
    found = await client.exists(*(keys.key(s) for s in _MARKER_SUFFIXES), keys.active,
                                keys.delayed, keys.paused)
    return int(found) > 0


async def client_entries(client: aioredis.Redis) -> list[dict[str, Any]] | None:
    """One CLIENT LIST (of every master of a cluster); None where CLIENT is forbidden."""
    try:
        return await deployments.client_lists(client)
    except ResponseError:
        return None


def unreadable(stats: QueueStats, error: str) -> QueueStats:
    """``stats`` marked unreadable: figures 0, ``error`` saying why."""
    return replace(stats, counts=dict.fromkeys(STATES, 0), paused=False,
                   oldest_waiting_ms=None, error=error)


def compact(n: int) -> str:
    """A count in at most 5 characters: exact to 99999, then ``177k``, ``1.2M``, ``35M``."""
    if n < 100_000:
        return str(n)
    if n < 1_000_000:
        return f"{n // 1000}k"
    if n < 10_000_000:
        return f"{n // 100_000 / 10:.1f}M"  # floored: 9.99M is "9.9M", never "10.0M"
    if n < 1_000_000_000:
        return f"{n // 1_000_000}M"
    return f"{n // 100_000_000 / 10:.1f}G"


async def _worker_counts(
    client: aioredis.Redis, all_keys: list[QueueKeys], clients: list[dict[str, Any]],
    now_ms: int,
) -> dict[str, int]:
    listed = await asyncio.gather(
        *(workers_of(client, k, clients=clients, now_ms=now_ms) for k in all_keys),
        return_exceptions=True,
    )
    workers: dict[str, int] = {}
    for k, found in zip(all_keys, listed, strict=True):
        if isinstance(found, ResponseError):  # pq-workers of the wrong type
            workers[k.queue] = 0
        elif isinstance(found, BaseException):
            raise found
        else:
            workers[k.queue] = len(found)
    return workers


async def queue_stats(
    client: aioredis.Redis, prefix: str, names: list[str],
    clients: list[dict[str, Any]] | None = None,
) -> list[QueueStats]:
    """Figures for each queue: counts per state, paused, workers, oldest waiting job.

    Workers are counted as :func:`pyqueue.monitoring.get_workers` lists them
    (pyqueue workers by heartbeat, Node's by connection name) from one CLIENT
    LIST, or from ``clients`` when the caller read it already.
    """
    all_keys = [queue_keys(prefix, n) for n in names]
    if clients is None:
        clients = await client_entries(client) or []
    now_ms = int(time.time() * 1000)
    async with client.pipeline(transaction=False) as pipe:
        for k in all_keys:
            pipe.llen(k.wait)
            pipe.llen(k.active)
            pipe.zcard(k.delayed)
            pipe.zcard(k.failed)
            pipe.zcard(k.completed)
            pipe.llen(k.paused)
            pipe.exists(k.meta_paused)
            pipe.hexists(k.meta, "paused")
            # The oldest waiting job is the tail of the list (workers take from there).
            pipe.lindex(k.wait, -1)
            pipe.lindex(k.paused, -1)
        # One queue whose keys are broken must not hide the others: errors come back
        # as values and mark that queue alone.
        replies = await pipe.execute(raise_on_error=False)
    per = 10
    errors: list[str | None] = []
    oldest_ids: list[str | None] = []
    for i in range(len(all_keys)):
        mine = replies[i * per: (i + 1) * per]
        bad = next((r for r in mine if isinstance(r, Exception)), None)
        errors.append(None if bad is None else str(bad))
        tail = None if bad is not None else (mine[8] or mine[9])
        oldest_ids.append(bytes(tail).decode() if tail else None)
    async with client.pipeline(transaction=False) as pipe:
        for k, job_id in zip(all_keys, oldest_ids, strict=True):
            if job_id is not None:
                pipe.hmget(k.job(job_id), "timestamp", "delay")
        found = iter(await pipe.execute(raise_on_error=False))
    stamps: list[list[Any]] = []
    for job_id in oldest_ids:
        stamp = next(found) if job_id is not None else [None, None]
        stamps.append([None, None] if isinstance(stamp, Exception) else stamp)
    workers = await _worker_counts(client, all_keys, clients, now_ms)
    now = time.time()
    out = []
    for i, k in enumerate(all_keys):
        if errors[i] is not None:
            out.append(QueueStats(k.queue, dict.fromkeys(STATES, 0), False, workers[k.queue],
                                  None, now, error=errors[i]))
            continue
        r = replies[i * per: (i + 1) * per]
        counts = dict(zip(STATES, (int(x) for x in r[:6]), strict=True))
        due: int | None = None
        created, delay = stamps[i]
        if created is not None:
            # Due = created + delay: a promoted delayed job has waited since it was due.
            due = int(created) + int(delay or 0)
        out.append(QueueStats(k.queue, counts, bool(r[6]) or bool(r[7]), workers[k.queue],
                              due, now))
    return out


def open_queue(client: aioredis.Redis, prefix: str, name: str) -> Queue[Any]:
    """A :class:`Queue` on an existing client (closing it leaves the client open)."""
    return Queue(name, connection=client, prefix=prefix)
