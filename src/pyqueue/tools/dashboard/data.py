"""What the dashboard reads from Redis, through pyqueue's public API.

Every read here is bounded: counts are LLEN/ZCARD, listings are one page of a
range read, throughput is at most ``MINUTES`` points per queue. The one
unbounded walk, finding the queues under a prefix, is a SCAN whose result is
cached (and skipped entirely when the app is given its queue names).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from pyqueue import Job, PyQueueError, Queue
from pyqueue.tools.diagnosis import Diagnosis, Finding, Limits, diagnose, diagnose_queue

QUEUES_AT_ONCE = 16
STATES: tuple[str, ...] = ("waiting", "active", "completed", "failed", "delayed", "paused")
# A BullMQ queue's page adds the states only BullMQ has.
BULLMQ_STATES: tuple[str, ...] = (*STATES, "prioritized", "waiting-children")
# Bull's clean() names the waiting list "wait".
CLEAN_STATES: dict[str, str] = {
    "completed": "completed", "failed": "failed", "delayed": "delayed",
    "waiting": "wait", "active": "active", "paused": "paused",
}
MINUTES = 60
PAGE_SIZE = 20
# The Clean form's "at most" default: a clean never means "all" unless someone types a number.
CLEAN_LIMIT = 1000
LOG_LINES = 200
# Latency figures come from this many of the newest completed jobs.
LATENCY_SAMPLE = 100
# Longest JSON shown for one field; a job's data can be megabytes.
MAX_FIELD_CHARS = 100_000
_DISCOVERY_TTL = 30.0
_SCAN_COUNT = 10_000
# Keys that exist only per queue, with their Redis type.
# ``meta`` (a hash) is BullMQ's queue marker, written by its Queue and its pause.
_QUEUE_SUFFIXES: dict[str, str] = {":id": "string", ":meta-paused": "string", ":repeat": "zset",
                                   ":meta": "hash"}
# A page load reads each queue's diagnosis at most this often (the overview polls).
DIAGNOSIS_TTL = 2.0
# Bounds per queue for the pages (the CLI's doctor looks further).
LIMITS = Limits(active_sample=200, limiter_sample=2000)


@dataclass(frozen=True, slots=True)
class QueueSummary:
    name: str
    counts: dict[str, int]
    paused: bool
    workers: int
    repeatable: int
    # Why the queue could not be read (a key of the wrong type, say).
    error: str | None = None
    diagnosis: Diagnosis | None = None

    @property
    def states(self) -> tuple[str, ...]:
        """The states the queue page offers: BullMQ's own two with a BullMQ queue."""
        return BULLMQ_STATES if self.format == "bullmq" else STATES

    @property
    def format(self) -> str:
        """``bullmq``, or ``bull`` (also a queue no key of either format marks yet)."""
        return "bull" if self.diagnosis is None else self.diagnosis.stats.format

    @property
    def findings(self) -> list[Finding]:
        return [] if self.diagnosis is None else self.diagnosis.findings

    @property
    def flags(self) -> list[str]:
        return [] if self.diagnosis is None else self.diagnosis.flags

    def to_json(self) -> dict[str, Any]:
        d = self.diagnosis
        return {
            "name": self.name, "format": self.format, "counts": self.counts, "paused": self.paused,
            "workers": self.workers, "repeatable": self.repeatable, "error": self.error,
            "flags": self.flags, "findings": [f.to_json() for f in self.findings],
            "workerList": [] if d is None else [w.to_json() for w in d.workers],
            "stuck": 0 if d is None else d.stuck,
            "heldByOthers": [] if d is None else d.held_by_others,
        }


@dataclass(slots=True)
class Throughput:
    """Completed and failed jobs per minute, oldest minute first."""

    start_ms: int
    completed: list[int]
    failed: list[int]
    source: str

    def to_json(self) -> dict[str, Any]:
        return {
            "start": self.start_ms, "completed": self.completed,
            "failed": self.failed, "source": self.source,
        }


@dataclass(slots=True)
class Repository:
    """Queues under one prefix on one Redis, with the dashboard's reads.

    Args:
        client: The Redis client every :class:`Queue` here shares.
        prefix: Bull's key prefix.
        queues: Fixed queue names; None finds them by scanning for ``<prefix>:*:id``.
    """

    client: aioredis.Redis
    prefix: str
    queues: Sequence[str] | None = None
    _open: dict[str, Queue[Any]] = field(default_factory=dict)
    _found: tuple[float, list[str]] | None = None
    _refreshing: asyncio.Future[list[str]] | None = None
    # Queues read at once by the overview: redis-py's pool holds 100 connections and one
    # queue's summary uses up to four, so reading hundreds of queues at once ran it dry.
    _reads: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(QUEUES_AT_ONCE))
    _diagnoses: dict[str, Diagnosis] = field(default_factory=dict)

    def queue(self, name: str) -> Queue[Any]:
        """The (cached) Queue object for ``name``; raises InvalidOptionsError for a bad name."""
        found = self._open.get(name)
        if found is None:
            found = Queue(name, connection=self.client, prefix=self.prefix)
            self._open[name] = found
        return found

    async def _speaks(self, name: str, format: str) -> None:
        """Reopen ``name``'s Queue in BullMQ mode once its keys show BullMQ's: a
        protocol=None Queue learns it only on its first script, and the pages ask for
        BullMQ's states (prioritized...) before any."""
        found = self._open.get(name)
        if format == "bullmq" and (found is None or found.format != "bullmq"):
            self._open[name] = Queue(name, connection=self.client, prefix=self.prefix,
                                     protocol="bullmq")
            if found is not None:
                await found.close()  # the shared client stays open

    async def close(self) -> None:
        if self._refreshing is not None:
            self._refreshing.cancel()
        for queue in self._open.values():
            await queue.close()
        self._open.clear()

    async def queue_names(self, wait: float | None = None) -> list[str] | None:
        """The queues, or None while the first scan has run longer than ``wait`` s.

        The SCAN walks the whole keyspace (seconds on millions of keys), so it
        runs as a background task: pages wait for it at most ``wait`` seconds
        (None: until done), and once a list exists it is served at once and
        refreshed in the background when older than ``_DISCOVERY_TTL``.
        """
        if self.queues is not None:
            return list(self.queues)
        if self._found is not None:
            if time.monotonic() - self._found[0] > _DISCOVERY_TTL:
                self._start_scan()
            return self._found[1]
        task = self._start_scan()
        try:
            return await asyncio.wait_for(asyncio.shield(task), wait)
        except TimeoutError:
            return None

    def _start_scan(self) -> asyncio.Future[list[str]]:
        if self._refreshing is None:
            self._refreshing = asyncio.ensure_future(self._rescan())
            self._refreshing.add_done_callback(self._refreshed)
        return self._refreshing

    async def _rescan(self) -> list[str]:
        names = await discover_queues(self.client, self.prefix)
        self._found = (time.monotonic(), names)
        return names

    def _refreshed(self, task: asyncio.Future[list[str]]) -> None:
        self._refreshing = None
        if not task.cancelled():
            task.exception()  # a failed scan is started again by the next read

    async def knows(self, name: str) -> bool:
        """Whether ``name`` is a queue here: listed, or its keys exist (made since the scan)."""
        if self.queues is not None and name not in self.queues:
            return False
        if self._found is not None and name in self._found[1]:
            return True
        try:
            keys = self.queue(name).keys
        except PyQueueError:
            return False
        return bool(await self.client.exists(keys.id, keys.repeat, keys.meta_paused, keys.wait,
                                             keys.meta))

    async def summaries(self, wait: float | None = None) -> list[QueueSummary] | None:
        """Every queue's summary: diagnosed together (a few pipelined round trips for all,
        more only for queues with active jobs, limiter entries or overdue schedules),
        at most every :data:`DIAGNOSIS_TTL` seconds (every open page polls this)."""
        names = await self.queue_names(wait)
        if names is None:
            return None
        now = time.time()
        stale = [n for n in names if n not in self._diagnoses
                 or now - self._diagnoses[n].taken_at > DIAGNOSIS_TTL]
        if stale:
            for name in stale:
                self.queue(name)  # the Queue objects diagnose reuses
            for found in await diagnose(self.client, self.prefix, stale, LIMITS,
                                        queues=self._open):
                self._diagnoses[found.name] = found
                await self._speaks(found.name, found.stats.format)
        async with self.client.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.zcard(self.queue(name).keys.repeat)
            repeatable = await pipe.execute(raise_on_error=False)
        return [self._summary_of(name, self._diagnoses[name], count)
                for name, count in zip(names, repeatable, strict=True)]

    @staticmethod
    def _summary_of(name: str, found: Diagnosis, repeatable: Any) -> QueueSummary:
        s = found.stats
        error = s.error or (str(repeatable) if isinstance(repeatable, Exception) else None)
        if error is not None:
            return QueueSummary(name, dict.fromkeys(STATES, 0), False, 0, 0, error=error,
                                diagnosis=found)
        return QueueSummary(name, s.counts, s.paused, len(found.workers), int(repeatable),
                            diagnosis=found)

    def forget(self, name: str) -> None:
        """Drop the cached diagnosis of ``name`` (an action changed the queue)."""
        self._diagnoses.pop(name, None)

    async def summary(
        self, name: str, clients: list[dict[str, Any]] | None = None, *, cached: bool = False,
    ) -> QueueSummary:
        """Counts, workers and what may hold the queue.

        ``cached``: a diagnosis up to :data:`DIAGNOSIS_TTL` seconds old will do (the
        overview of many queues, which every open page polls).
        """
        queue = self.queue(name)
        found = self._diagnoses.get(name) if cached else None
        if found is None or time.time() - found.taken_at > DIAGNOSIS_TTL:
            found = await diagnose_queue(queue, LIMITS, clients=clients)
            self._diagnoses[name] = found
            await self._speaks(name, found.stats.format)
            queue = self.queue(name)
        try:
            repeatable: Any = await queue.get_repeatable_count()
        except ResponseError as exc:
            repeatable = exc
        return self._summary_of(name, found, repeatable)

    async def throughput(self, names: Sequence[str], now_ms: int | None = None) -> Throughput:
        """Per-minute completed/failed over the last ``MINUTES`` minutes, summed over queues."""
        now = int(time.time() * 1000) if now_ms is None else now_ms
        start = (now // 60_000 - (MINUTES - 1)) * 60_000
        total = Throughput(start, [0] * MINUTES, [0] * MINUTES, "none")
        sources: set[str] = set()
        found = await asyncio.gather(
            *(self._bounded_throughput(n, start) for n in names), return_exceptions=True
        )
        for series in found:
            if isinstance(series, ResponseError):
                continue  # an unreadable queue adds nothing to the chart
            if isinstance(series, BaseException):
                raise series
            sources.add(series.source)
            for i in range(MINUTES):
                total.completed[i] += series.completed[i]
                total.failed[i] += series.failed[i]
        total.source = "+".join(sorted(sources)) if sources else "none"
        return total

    async def _bounded_throughput(self, name: str, start: int) -> Throughput:
        async with self._reads:
            return await self._queue_throughput(name, start)

    async def _queue_throughput(self, name: str, start: int) -> Throughput:
        queue = self.queue(name)
        out = Throughput(start, [0] * MINUTES, [0] * MINUTES, "metrics")
        have_metrics = False
        for kind, series in (("completed", out.completed), ("failed", out.failed)):
            metrics = await queue.get_metrics(kind, 0, MINUTES - 1)  # type: ignore[arg-type]
            if metrics["meta"]["prevTS"]:
                have_metrics = True
                _place_metrics(metrics, start, series)
        if have_metrics:
            return out
        out.source = "finished"
        await _finished_per_minute(queue, start, out)
        return out

    async def latency(self, name: str) -> Latency:
        recent = await self.queue(name).get_jobs("completed", 0, LATENCY_SAMPLE - 1)
        return latency_of(recent)

    async def jobs_page(self, name: str, state: str, page: int) -> tuple[list[Job[Any]], int]:
        """One page of a state, in Bull's getter order, and that state's count."""
        queue = self.queue(name)
        start = (page - 1) * PAGE_SIZE
        jobs, counts = await asyncio.gather(
            queue.get_jobs(state, start, start + PAGE_SIZE - 1),  # type: ignore[arg-type]
            queue.get_job_counts(state),  # type: ignore[arg-type]
        )
        return jobs, counts[state]


@dataclass(frozen=True, slots=True)
class Latency:
    """Wait (created to started) and run (started to finished) times, in ms."""

    jobs: int
    wait_p50: int | None
    wait_p95: int | None
    run_p50: int | None
    run_p95: int | None


def _percentile(values: list[int], fraction: float) -> int | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def latency_of(jobs: Sequence[Job[Any]]) -> Latency:
    waits, runs = [], []
    for job in jobs:
        started = job.processed_on
        if started is None:
            continue
        # A delayed job waits from when it became due, not from when it was added.
        waits.append(max(0, started - job.timestamp - job.delay))
        if job.finished_on is not None:
            runs.append(max(0, job.finished_on - started))
    return Latency(len(waits), _percentile(waits, 0.5), _percentile(waits, 0.95),
                   _percentile(runs, 0.5), _percentile(runs, 0.95))


def _place_metrics(metrics: dict[str, Any], start: int, series: list[int]) -> None:
    """Put Bull's metrics points into minute buckets starting at ``start``.

    Bull LPUSHes one point per whole minute since ``prevTS``, so ``data[i]`` is
    the minute ending ``i`` minutes before ``prevTS``; the jobs counted since
    ``prevTS`` are ``count - prevCount``.
    """
    meta = metrics["meta"]
    prev_ts = int(meta["prevTS"])
    current = int(meta["count"]) - int(meta["prevCount"])
    _add_at(series, start, prev_ts, current)
    for i, point in enumerate(metrics["data"]):
        try:
            value = int(point)
        except ValueError:
            continue
        _add_at(series, start, prev_ts - (i + 1) * 60_000, value)


def _add_at(series: list[int], start: int, at_ms: int, value: int) -> None:
    index = (at_ms - start) // 60_000
    if 0 <= index < len(series):
        series[index] += value


async def _finished_per_minute(queue: Queue[Any], start: int, out: Throughput) -> None:
    """ZCOUNT per minute over the finished sets, whose scores are finishing times."""
    async with queue.client.pipeline(transaction=False) as pipe:
        for kind in ("completed", "failed"):
            key = queue.keys.finished_set(kind)
            for i in range(MINUTES):
                low = start + i * 60_000
                pipe.zcount(key, low, f"({low + 60_000}")
        found = await pipe.execute()
    out.completed[:] = [int(n) for n in found[:MINUTES]]
    out.failed[:] = [int(n) for n in found[MINUTES:]]


async def discover_queues(client: aioredis.Redis, prefix: str) -> list[str]:
    """Names of the queues under ``prefix``, from one SCAN of the keyspace.

    A queue is known by its ``id`` counter (Bull's addJob increments it for every
    job, custom id or not), its ``meta-paused`` flag or its ``repeat`` set. The
    glob keeps Redis from sending back the job hashes, logs and locks; a job hash
    whose id ends in ``:id`` is told from a counter by its type.
    """
    head = f"{prefix}:"
    candidates: dict[str, str] = {}
    pattern = _glob_escape(head) + "*:[imr][de]*"
    async for key in client.scan_iter(match=pattern, count=_SCAN_COUNT):
        text = key.decode() if isinstance(key, bytes) else str(key)
        for suffix in _QUEUE_SUFFIXES:
            if text.endswith(suffix) and len(text) > len(head) + len(suffix):
                candidates[text] = text[len(head):-len(suffix)]
                break
    names: set[str] = set()
    keys = list(candidates)
    async with client.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.type(key)
        kinds = await pipe.execute()
    for key, kind in zip(keys, kinds, strict=True):
        kind_text = kind.decode() if isinstance(kind, bytes) else str(kind)
        if kind_text == _QUEUE_SUFFIXES[key[key.rindex(":"):]]:
            names.add(candidates[key])
    return sorted(names)


def _glob_escape(text: str) -> str:
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


def pretty_json(value: Any) -> str:
    """Indented JSON for display, cut at ``MAX_FIELD_CHARS``."""
    text = json.dumps(value, indent=2, ensure_ascii=False, default=str, sort_keys=False)
    if len(text) > MAX_FIELD_CHARS:
        return text[:MAX_FIELD_CHARS] + f"\n… ({len(text) - MAX_FIELD_CHARS} more characters)"
    return text


def preview_json(value: Any, limit: int = 120) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def format_duration(ms: int | None) -> str:
    """A duration in ms, short: ``850 ms``, ``12.3 s``, ``4 min 05 s``; ``—`` when unknown."""
    if ms is None or ms < 0:
        return "—"
    if ms < 1000:
        return f"{ms} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    seconds = ms // 1000
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    if seconds < 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    return f"{seconds // 86400} d {seconds % 86400 // 3600:02d} h"


def format_ms(value: int | None) -> str:
    if not value:
        return "—"
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(value / 1000))
    return f"{stamp}.{value % 1000:03d} UTC"
