"""Prometheus metrics for workers and queues: ``pip install 'pyqueue-bull[metrics]'``.

Two sources:

* :class:`WorkerMetrics` listens to a worker's local events, in the process that
  runs the worker. Sandboxed handlers run in child processes, but every attempt is
  finished (and its event emitted) by the parent, so children need no
  multi-process collection: the parent's counts are the whole truth.
* :class:`QueueCollector` reads each queue's figures from Redis (a few commands per
  queue, no job loaded), refreshed in the background; scrapes get the last figures.

Serve them with :func:`serve_worker` (a worker's own opt-in port, with ``/healthz``
and ``/readyz``) or ``pyqueue exporter`` (:func:`run_exporter`, every queue under a prefix).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from pyqueue import Job, Worker
from pyqueue.tools import overview
from pyqueue.tools.health import ProbeServer, redis_reachable, workers_ready

# Seconds. Jobs range from milliseconds (cache refreshes) to many minutes (exports).
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300,
                    600, 1800, 3600)
# Job names are usually a small fixed set, but nothing stops a producer from
# putting ids in them; past this many distinct names per queue, the rest are "other",
# so one bad producer cannot blow up the series count.
MAX_JOB_NAMES = 100
OUTCOMES = ("completed", "failed", "retried", "stalled", "discarded")


class WorkerMetrics:
    """Per-process job metrics, fed by the local events of the workers given to :meth:`watch`.

    Metrics (all labelled by ``queue``; job metrics by ``job_name`` too):

    * ``pyqueue_jobs_processed_total{outcome}``: outcome is ``completed``, ``failed`` (for
      good), ``retried`` (an attempt failed, another follows), ``discarded`` (failed
      for good by ``job.discard()``) or ``stalled`` (``job_name="unknown"``: the stalled
      checker sees ids only).
    * ``pyqueue_job_processing_seconds``: handler start to finish, per attempt.
    * ``pyqueue_job_wait_seconds``: from when the job was due (created + delay) to its
      first attempt's start.
    * ``pyqueue_lock_renewal_failures_total`` and ``pyqueue_redis_errors_total``.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.processed = Counter(
            "pyqueue_jobs_processed", "Job attempts finished, by outcome.",
            ("queue", "job_name", "outcome"), registry=self.registry,
        )
        self.processing = Histogram(
            "pyqueue_job_processing_seconds", "Time from handler start to finish, per attempt.",
            ("queue", "job_name"), buckets=DURATION_BUCKETS, registry=self.registry,
        )
        self.waiting = Histogram(
            "pyqueue_job_wait_seconds", "Time from when a job was due to its first start.",
            ("queue", "job_name"), buckets=DURATION_BUCKETS, registry=self.registry,
        )
        self.lock_failures = Counter(
            "pyqueue_lock_renewal_failures", "Job locks this process failed to renew.",
            ("queue",), registry=self.registry,
        )
        self.redis_errors = Counter(
            "pyqueue_redis_errors", "Errors reported by workers (Redis and maintenance).",
            ("queue",), registry=self.registry,
        )
        self._started: dict[tuple[str, str], float] = {}
        self._names: dict[str, set[str]] = {}

    def _name(self, queue: str, name: str) -> str:
        known = self._names.setdefault(queue, set())
        if name in known:
            return name
        if len(known) >= MAX_JOB_NAMES:
            return "other"
        known.add(name)
        return name

    def watch(self, worker: Worker) -> None:
        """Count this worker's jobs from now on."""
        queue = worker.queue.name
        # Series exist from the start, so rate() works before the first failure.
        self.lock_failures.labels(queue)
        self.redis_errors.labels(queue)

        def active(job: Job[Any]) -> None:
            self._started[(queue, job.id)] = time.monotonic()
            if job.attempts_made == 0:
                due_ms = job.timestamp + job.delay
                self.waiting.labels(queue, self._name(queue, job.name)).observe(
                    max(0.0, time.time() - due_ms / 1000)
                )

        def finished(job: Job[Any], outcome: str) -> None:
            name = self._name(queue, job.name)
            self.processed.labels(queue, name, outcome).inc()
            started = self._started.pop((queue, job.id), None)
            if started is not None:
                self.processing.labels(queue, name).observe(time.monotonic() - started)

        def failed(job: Job[Any], exc: BaseException) -> None:
            del exc
            if job.finished_on is None:
                finished(job, "retried")
            else:
                finished(job, "discarded" if job.discarded else "failed")

        worker.on("active", active)
        worker.on("completed", lambda job, result: finished(job, "completed"))
        worker.on("failed", failed)
        worker.on("stalled", lambda job_id: self.processed.labels(
            queue, "unknown", "stalled").inc())
        # A lock found gone (pyqueue's lock-lost) and Bull's lock-extension-failed (Redis
        # failed while extending) are both renewals that did not happen.
        for event in ("lock-lost", "lock-extension-failed"):
            worker.on(event, lambda *_: self.lock_failures.labels(queue).inc())
        worker.on("error", lambda exc: self.redis_errors.labels(queue).inc())


class QueueCollector(Collector):
    """Per-queue figures from Redis, as of the last :meth:`refresh`.

    ``pyqueue_queue_jobs{queue,state}``, ``pyqueue_queue_oldest_waiting_age_seconds``,
    ``pyqueue_queue_paused`` (1 or 0) and ``pyqueue_queue_workers`` (Redis connections
    named as Bull workers: Node's count too). ``pyqueue_queue_up`` is 0 when the last
    refresh failed (the other figures are then the last good ones).
    """

    def __init__(self, client: aioredis.Redis, prefix: str,
                 queues: Sequence[str] | None = None) -> None:
        self._client = client
        self._prefix = prefix
        self._queues = list(queues) if queues is not None else None
        self._stats: list[overview.QueueStats] = []
        self._up = False

    async def refresh(self) -> None:
        try:
            names = self._queues
            if names is None:
                names = await overview.discover_queues(self._client, self._prefix)
            self._stats = await overview.queue_stats(self._client, self._prefix, names)
            self._up = True
        except (RedisError, OSError):
            self._up = False

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily("pyqueue_queue_up", "1 when the last read of Redis worked.")
        up.add_metric([], 1 if self._up else 0)
        yield up
        jobs = GaugeMetricFamily("pyqueue_queue_jobs", "Jobs per state.", labels=["queue", "state"])
        age = GaugeMetricFamily("pyqueue_queue_oldest_waiting_age_seconds",
                                "Age of the oldest waiting job since it was due (0: none).",
                                labels=["queue"])
        paused = GaugeMetricFamily("pyqueue_queue_paused", "1 when the queue is paused.",
                                   labels=["queue"])
        workers = GaugeMetricFamily("pyqueue_queue_workers", "Workers connected to the queue.",
                                    labels=["queue"])
        for s in self._stats:
            if s.error is not None:
                continue  # no figures rather than false zeros
            for state, n in s.counts.items():
                jobs.add_metric([s.name, state], n)
            age.add_metric([s.name], s.oldest_waiting_age or 0.0)
            paused.add_metric([s.name], 1 if s.paused else 0)
            workers.add_metric([s.name], s.workers)
        yield from (jobs, age, paused, workers)


async def _refresh_every(collector: QueueCollector, interval: float) -> None:
    while True:
        await collector.refresh()
        await asyncio.sleep(interval)


def _exposition(registry: CollectorRegistry) -> Any:
    async def metrics() -> tuple[bytes, str]:
        return generate_latest(registry), CONTENT_TYPE_LATEST

    return metrics


@contextlib.asynccontextmanager
async def serve_worker(
    workers: Worker | Sequence[Worker],
    *,
    host: str = "127.0.0.1",
    port: int = 9464,
    queue_stats: bool = False,
    interval: float = 5.0,
) -> AsyncIterator[ProbeServer]:
    """Serve ``/metrics``, ``/healthz`` and ``/readyz`` for these workers while in the block.

    Args:
        queue_stats: Also export the :class:`QueueCollector` figures of the workers'
            queues (leave off when many replicas run: use ``pyqueue exporter`` once).
    """
    group = [workers] if isinstance(workers, Worker) else list(workers)
    registry = CollectorRegistry()
    job_metrics = WorkerMetrics(registry)
    for worker in group:
        job_metrics.watch(worker)
    tasks: list[asyncio.Task[None]] = []
    if queue_stats and group:
        first = group[0].queue
        collector = QueueCollector(first.client, first.prefix, [w.queue.name for w in group])
        registry.register(collector)
        await collector.refresh()
        tasks.append(asyncio.create_task(_refresh_every(collector, interval)))
    server = ProbeServer(host, port, ready=workers_ready(group), metrics=_exposition(registry))
    await server.start()
    try:
        yield server
    finally:
        await server.close()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def run_exporter(client: aioredis.Redis, prefix: str, host: str, port: int,
                       interval: float, *, started: asyncio.Event | None = None) -> None:
    """``pyqueue exporter``: serve every queue's figures until cancelled."""
    registry = CollectorRegistry()
    collector = QueueCollector(client, prefix)
    registry.register(collector)
    await collector.refresh()

    async def ready() -> tuple[bool, str]:
        problem = await redis_reachable(client)
        return (problem is None), problem or "ready"

    refresher = asyncio.create_task(_refresh_every(collector, interval))
    try:
        async with ProbeServer(host, port, ready=ready, metrics=_exposition(registry)) as server:
            print(f"pyqueue exporter: serving http://{host}:{server.port}/metrics", flush=True)
            if started is not None:
                started.set()
            await asyncio.Event().wait()
    finally:
        refresher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await refresher
