"""``pyqueue exporter``: every queue's figures for Prometheus, Node Bull's work included.

Two sources, both covering pyqueue and Node Bull workers alike:

* :class:`QueueCollector` diagnoses each queue (:mod:`pyqueue.tools.diagnosis`)
  every ``interval`` seconds: gauges per state, oldest waiting and oldest
  active age, live workers, stuck active jobs, rate-limiter bounces, overdue
  schedules, and one series per finding.
* :class:`FinishedEvents` counts the ``completed``, ``failed`` and ``stalled@``
  messages Bull (and pyqueue) publish for every job that finishes for good,
  fails for good or is recovered from a stall, on every queue under the prefix.
  These are true counters: ``clean`` or ``removeOnComplete`` cannot make them
  fall (the completed *gauge* does), so ``rate()`` over them is right. They
  start at 0 when the exporter starts (Prometheus handles the reset) and miss
  what finished while the exporter was not subscribed: during a Redis outage
  the counter shows a gap, never a burst. ``pyqueue_events_subscribed`` says
  whether it is listening now.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any, cast

import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from pyqueue import Queue
from pyqueue.tools import diagnosis, overview
from pyqueue.tools.health import ProbeServer, redis_reachable

# channel suffix -> counter name
_KINDS = {"completed": "completed", "failed": "failed", "stalled@": "stalled"}


class FinishedEvents:
    """Counts finished, failed and stalled jobs per queue from Bull's pub/sub channels."""

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self.counts: dict[str, Counter[str]] = {kind: Counter() for kind in _KINDS.values()}
        self.subscribed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # redis-py 8.0-8.2 can lose the cancellation of a task reading pub/sub (issue
        # 26); the loop also stops on this flag, so close() cannot hang on a lost one.
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="pyqueue-exporter-events")

    async def wait_subscribed(self, timeout: float = 10.0) -> None:
        await asyncio.wait_for(self.subscribed.wait(), timeout)

    def queue_of(self, channel: str) -> tuple[str, str] | None:
        """``(queue, kind)`` of a channel name, or None for another channel."""
        head = self._prefix + ":"
        if not channel.startswith(head):
            return None
        rest = channel[len(head):]
        queue, _, suffix = rest.rpartition(":")
        kind = _KINDS.get(suffix)
        return None if kind is None or not queue else (queue, kind)

    async def _run(self) -> None:
        glob = overview.glob_escape(self._prefix)
        while not self._stopping:
            pubsub = self._client.pubsub()
            try:
                await pubsub.psubscribe(*(f"{glob}:*:{suffix}" for suffix in _KINDS))
                self.subscribed.set()
                while not self._stopping:
                    msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if msg is None:
                        continue
                    found = self.queue_of(bytes(msg["channel"]).decode("utf-8", "replace"))
                    if found is not None:
                        self.counts[found[1]][found[0]] += 1
                    await asyncio.sleep(0)  # a burst of messages must not starve the loop
            except (RedisError, OSError):
                self.subscribed.clear()
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(Exception):
                    # Any: redis-py's stubs differ across versions on whether it is typed.
                    await cast("Any", pubsub).aclose()

    async def close(self) -> None:
        if self._task is not None:
            self._stopping = True
            self._task.cancel()
            # At most one get_message timeout (1 s) when the cancellation was lost.
            await asyncio.wait({self._task}, timeout=5)
            if self._task.done() and not self._task.cancelled():
                self._task.exception()  # retrieved: a failure here is not the caller's


class QueueCollector(Collector):
    """Per-queue figures from Redis, as of the last :meth:`refresh`.

    Gauges (labelled by ``queue``): ``pyqueue_queue_jobs{state}``,
    ``pyqueue_queue_oldest_waiting_age_seconds``, ``pyqueue_queue_oldest_active_age_seconds``
    (0: none), ``pyqueue_queue_paused``, ``pyqueue_queue_workers`` (live: pyqueue's by
    heartbeat, Node's by connection), ``pyqueue_queue_stuck_active_jobs`` (active jobs
    no live worker will finish), ``pyqueue_queue_rate_limited_jobs``,
    ``pyqueue_queue_overdue_repeatables`` and ``pyqueue_queue_finding{code,severity}``
    (1 per finding of ``pyqueue doctor``). ``pyqueue_queue_up`` is 0 when the last
    refresh failed (the other figures are then the last good ones). With ``events``,
    the counters ``pyqueue_queue_completed_total``, ``pyqueue_queue_failed_total`` and
    ``pyqueue_queue_stalled_total``, and ``pyqueue_events_subscribed``.
    """

    def __init__(self, client: aioredis.Redis, prefix: str,
                 queues: Sequence[str] | None = None, *,
                 events: FinishedEvents | None = None,
                 limits: diagnosis.Limits | None = None) -> None:
        self._client = client
        self._prefix = prefix
        self._queues = list(queues) if queues is not None else None
        self._found: list[diagnosis.Diagnosis] = []
        self._up = False
        self._events = events
        self._limits = limits or diagnosis.Limits(active_sample=500, limiter_sample=5000)
        self._open: dict[str, Queue[Any]] = {}

    async def refresh(self) -> None:
        try:
            names = self._queues
            if names is None:
                names = await overview.discover_queues(self._client, self._prefix)
            self._found = await diagnosis.diagnose(self._client, self._prefix, names,
                                                   self._limits, queues=self._open)
            self._up = True
        except (RedisError, OSError):
            self._up = False

    async def close(self) -> None:
        for queue in self._open.values():
            await queue.close()
        self._open.clear()

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily("pyqueue_queue_up", "1 when the last read of Redis worked.")
        up.add_metric([], 1 if self._up else 0)
        yield up

        def gauge(name: str, text: str) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, text, labels=["queue"])

        jobs = GaugeMetricFamily("pyqueue_queue_jobs", "Jobs per state.", labels=["queue", "state"])
        formats = GaugeMetricFamily("pyqueue_queue_format",
                                    "1 per queue, labelled with its wire format (bull or bullmq).",
                                    labels=["queue", "format"])
        waiting = gauge("pyqueue_queue_oldest_waiting_age_seconds",
                        "Age of the oldest waiting job since it was due (0: none).")
        active = gauge("pyqueue_queue_oldest_active_age_seconds",
                       "How long the longest-running active job has run (0: none).")
        paused = gauge("pyqueue_queue_paused", "1 when the queue is paused.")
        workers = gauge("pyqueue_queue_workers",
                        "Live workers: pyqueue's by heartbeat, Node Bull's by connection name.")
        stuck = gauge("pyqueue_queue_stuck_active_jobs",
                      "Active jobs no live worker will finish (lock gone, or its owner dead).")
        limited = gauge("pyqueue_queue_rate_limited_jobs",
                        "Delayed jobs the rate limiter parked (not a producer's delay).")
        overdue = gauge("pyqueue_queue_overdue_repeatables",
                        "Repeat schedules whose next run is more than a minute late.")
        findings = GaugeMetricFamily("pyqueue_queue_finding",
                                     "1 per finding of `pyqueue doctor`.",
                                     labels=["queue", "code", "severity"])
        for d in self._found:
            s = d.stats
            for f in d.findings:
                findings.add_metric([s.name, f.code, f.severity], 1)
            if s.error is not None:
                continue  # no figures rather than false zeros
            formats.add_metric([s.name, s.format], 1)
            for state, n in s.counts.items():
                jobs.add_metric([s.name, state], n)
            waiting.add_metric([s.name], s.oldest_waiting_age or 0.0)
            active.add_metric([s.name], d.oldest_active_age or 0.0)
            paused.add_metric([s.name], 1 if s.paused else 0)
            workers.add_metric([s.name], len(d.workers))
            stuck.add_metric([s.name], d.stuck)
            limited.add_metric([s.name], d.rate_limited.count if d.rate_limited else 0)
            overdue.add_metric([s.name], d.overdue_total)
        yield from (jobs, formats, waiting, active, paused, workers, stuck, limited, overdue,
                    findings)
        if self._events is not None:
            yield from self._counters(self._events)

    def _counters(self, events: FinishedEvents) -> Iterable[Metric]:
        subscribed = GaugeMetricFamily("pyqueue_events_subscribed",
                                       "1 while the exporter hears the queues' events.")
        subscribed.add_metric([], 1 if events.subscribed.is_set() else 0)
        yield subscribed
        known = {d.name for d in self._found}
        texts = {
            "completed": "Jobs completed (by any worker, Node's too) since the exporter started.",
            "failed": "Jobs failed for good (by any worker) since the exporter started.",
            "stalled": "Stalled jobs recovered (by any worker's check) since the exporter started.",
        }
        for kind, text in texts.items():
            family = CounterMetricFamily(f"pyqueue_queue_{kind}", text, labels=["queue"])
            counts = events.counts[kind]
            # Every known queue has its series from the start, so rate() works at once.
            for name in sorted(known | set(counts)):
                family.add_metric([name], counts[name])
            yield family


async def refresh_every(collector: QueueCollector, interval: float) -> None:
    while True:
        await collector.refresh()
        await asyncio.sleep(interval)


def exposition(registry: CollectorRegistry) -> Any:
    async def metrics() -> tuple[bytes, str]:
        return generate_latest(registry), CONTENT_TYPE_LATEST

    return metrics


async def run_exporter(client: aioredis.Redis, prefix: str, host: str, port: int,
                       interval: float, *, started: asyncio.Event | None = None) -> None:
    """``pyqueue exporter``: serve every queue's figures until cancelled."""
    registry = CollectorRegistry()
    events = FinishedEvents(client, prefix)
    events.start()
    collector = QueueCollector(client, prefix, events=events)
    registry.register(collector)
    await collector.refresh()

    async def ready() -> tuple[bool, str]:
        problem = await redis_reachable(client)
        return (problem is None), problem or "ready"

    refresher = asyncio.create_task(refresh_every(collector, interval))
    try:
        with contextlib.suppress(TimeoutError):
            await events.wait_subscribed()
        async with ProbeServer(host, port, ready=ready, metrics=exposition(registry)) as server:
            print(f"pyqueue exporter: serving http://{host}:{server.port}/metrics", flush=True)
            if started is not None:
                started.set()
            await asyncio.Event().wait()
    finally:
        refresher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await refresher
        await events.close()
        await collector.close()
