"""What an operator sees first: the queues under a prefix and one line of figures each.

Shared by ``pyqueue queues``, ``pyqueue watch`` and the Prometheus queue collector.
Everything here is a handful of commands per queue (no job is loaded), so it can
run every second against a queue of millions of jobs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from pyqueue import Queue
from pyqueue.monitoring import (
    MAX_WORKERS,
    PROBE_LENGTH,
    BullMQKeys,
    Format,
    QueueKeys,
    WorkerInfo,
    format_from,
    probe_format,
    queue_keys,
    workers_from,
)
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
    # The live workers themselves (``workers`` is how many).
    worker_list: tuple[WorkerInfo, ...] = ()
    # Repeat schedules more than ``repeat_grace_ms`` late, and rate-limiter index
    # entries: counted here so that a diagnosis reads further only where they exist.
    overdue_repeatables: int = 0
    limiter_entries: int = 0
    # "bullmq", or "bull": also a queue no key of either format marks yet, which a
    # protocol=None Queue reads as Bull.
    format: Format = "bull"

    @property
    def oldest_waiting_age(self) -> float | None:
        """Seconds since the oldest waiting (or paused) job became due; None when none."""
        if self.oldest_waiting_ms is None:
            return None
        return max(0.0, self.taken_at - self.oldest_waiting_ms / 1000)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "format": self.format,
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
    return replace(stats, counts=dict.fromkeys(stats.counts, 0), paused=False,
                   oldest_waiting_ms=None, error=error, overdue_repeatables=0,
                   limiter_entries=0)


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


# The states each format counts, in the order of its reads (a BullMQ paused queue keeps
# its jobs in ``wait``, so they count as waiting there, as BullMQ's getJobCounts says).
BULLMQ_STATES = ("waiting", "active", "delayed", "failed", "completed", "paused",
                 "prioritized", "waiting-children")


def _queue_bull_reads(pipe: Any, k: QueueKeys, now_ms: int, grace_ms: int) -> int:
    """Bull 4's counts, paused flags, oldest waiting ids and overdue schedules."""
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
    pipe.zcount(k.repeat, "-inf", now_ms - grace_ms)
    return 11


def _queue_bullmq_reads(pipe: Any, k: BullMQKeys) -> int:
    """BullMQ's counts, its paused flag (``meta``) and oldest waiting ids."""
    pipe.llen(k.wait)
    pipe.llen(k.active)
    pipe.zcard(k.delayed)
    pipe.zcard(k.failed)
    pipe.zcard(k.completed)
    pipe.llen(k.paused)
    pipe.zcard(k.prioritized)
    pipe.zcard(k.waiting_children)
    pipe.hexists(k.meta, "paused")
    pipe.lindex(k.wait, -1)
    pipe.lindex(k.paused, -1)
    return 11


@dataclass(frozen=True, slots=True)
class _Row:
    """One queue's first-round replies, cut by format."""

    format: Format
    counts: dict[str, int]
    paused: bool
    tail: bytes | None
    overdue: int
    limiter: int
    workers: list[Any]


def _row(replies: list[Any]) -> _Row | str:
    """The figures of one queue's first-round replies, or why they cannot be read."""
    probe, rest = replies[:PROBE_LENGTH], replies[PROBE_LENGTH:]
    bull, mq, common = rest[:11], rest[11:22], rest[22:]
    fmt: Format = "bull"
    if not any(isinstance(r, Exception) for r in probe) and format_from(probe) == "bullmq":
        fmt = "bullmq"
    # Only the chosen format's reads count: a Bull job whose id is "prioritized" is
    # a hash, and must not make its queue unreadable.
    mine = mq if fmt == "bullmq" else bull
    broken = next((r for r in (*probe, *mine, *common) if isinstance(r, Exception)), None)
    if broken is not None:
        return str(broken)
    if fmt == "bullmq":
        counts = dict(zip(BULLMQ_STATES, (int(x) for x in mq[:8]), strict=True))
        paused, tails, overdue = bool(mq[8]), mq[9:11], 0
    else:
        counts = dict(zip(STATES, (int(x) for x in bull[:6]), strict=True))
        paused, tails, overdue = bool(bull[6]) or bool(bull[7]), bull[8:10], int(bull[10])
    return _Row(fmt, counts, paused, tails[0] or tails[1], overdue, int(common[0]),
                list(common[1]))


async def queue_stats(
    client: aioredis.Redis, prefix: str, names: list[str],
    clients: list[dict[str, Any]] | None = None, *, repeat_grace_ms: int = 60_000,
) -> list[QueueStats]:
    """Figures for each queue: format, counts per state, paused, workers, oldest waiting job.

    Three pipelined round trips whatever the number of queues (two pipelines and
    one CLIENT LIST, unless ``clients`` is given). The first learns each queue's
    format (:func:`pyqueue.monitoring.probe_format`) and reads both
    formats' figures, keeping the one that applies: the keys of each come from
    its protocol's key module. Workers are listed as
    :func:`pyqueue.monitoring.get_workers` lists them: pyqueue's by heartbeat,
    Node's by connection name.
    """
    all_keys = [queue_keys(prefix, n) for n in names]
    if clients is None:
        clients = await client_entries(client) or []
    now_ms = int(time.time() * 1000)
    lengths: list[int] = []
    async with client.pipeline(transaction=False) as pipe:
        for k in all_keys:
            probe_format(pipe, prefix, k.queue)
            n = PROBE_LENGTH + _queue_bull_reads(pipe, k, now_ms, repeat_grace_ms)
            n += _queue_bullmq_reads(pipe, BullMQKeys(prefix, k.queue))
            # pyqueue's own keys, the same in both formats.
            pipe.hlen(k.limiter_index)
            pipe.zrangebyscore(k.workers, now_ms, "+inf", start=0, num=MAX_WORKERS)
            lengths.append(n + 2)
        # One queue whose keys are broken must not hide the others: errors come back
        # as values and mark that queue alone.
        replies = await pipe.execute(raise_on_error=False)
    rows: list[_Row | str] = []
    at = 0
    for n in lengths:
        rows.append(_row(replies[at:at + n]))
        at += n
    async with client.pipeline(transaction=False) as pipe:
        for k, row in zip(all_keys, rows, strict=True):
            if isinstance(row, str):
                continue
            if row.tail:
                # Both formats keep a job's hash at <prefix>:<queue>:<id>.
                pipe.hmget(k.job(bytes(row.tail).decode()), "timestamp", "delay")
            for worker_id in row.workers:
                pipe.get(k.worker(bytes(worker_id).decode()))
        second = iter(await pipe.execute(raise_on_error=False))
    now = time.time()
    out = []
    for k, row in zip(all_keys, rows, strict=True):
        if isinstance(row, str):
            out.append(QueueStats(k.queue, dict.fromkeys(STATES, 0), False, 0, None, now,
                                  error=row))
            continue
        due: int | None = None
        if row.tail:
            stamp = next(second)
            if not isinstance(stamp, Exception) and stamp[0] is not None:
                # Due = created + delay: a promoted delayed job has waited since it was due.
                due = int(stamp[0]) + int(stamp[1] or 0)
        records = [next(second) for _ in row.workers]
        listed = tuple(workers_from(k, records, clients))
        out.append(QueueStats(
            k.queue, row.counts, row.paused, len(listed), due, now,
            worker_list=listed, overdue_repeatables=row.overdue,
            limiter_entries=row.limiter, format=row.format,
        ))
    return out


def open_queue(client: aioredis.Redis, prefix: str, name: str,
               protocol: Format | None = None) -> Queue[Any]:
    """A :class:`Queue` on an existing client (closing it leaves the client open).

    ``protocol``: the queue's format when known; None lets the queue detect it.
    """
    return Queue(name, connection=client, prefix=prefix, protocol=protocol)
