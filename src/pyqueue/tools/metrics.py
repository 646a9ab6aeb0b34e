"""Prometheus metrics for workers and queues: ``pip install 'pyqueue-bull[metrics]'``.

Three sources:

* :class:`WorkerMetrics` listens to a worker's local events, in the process that
  runs the worker. Sandboxed handlers run in child processes, but every attempt is
  finished (and its event emitted) by the parent, so children need no
  multi-process collection: the parent's counts are the whole truth.
* :class:`WorkerGauges` reads what the workers hold at each scrape: attempts in
  flight, slot use, the oldest active attempt's age.
* :class:`~pyqueue.tools.exporter.QueueCollector` reads each queue's figures from
  Redis (bounded reads, no job loaded), refreshed in the background; scrapes get
  the last figures.

Serve them with :func:`serve_worker` (a worker's own opt-in port, with ``/healthz``
and ``/readyz``) or ``pyqueue exporter`` (:func:`~pyqueue.tools.exporter.run_exporter`,
every queue under a prefix, Node Bull's throughput included).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pyqueue import Job, Worker
from pyqueue.tools.exporter import QueueCollector, exposition, refresh_every, run_exporter
from pyqueue.tools.health import ProbeServer, workers_ready

__all__ = ["QueueCollector", "WorkerGauges", "WorkerMetrics", "run_exporter", "serve_worker"]

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


class WorkerGauges(Collector):
    """What a process's workers hold now, read at each scrape (labelled by ``queue``).

    ``pyqueue_worker_jobs_in_flight`` (attempts running), ``pyqueue_worker_slots``
    (concurrency), ``pyqueue_worker_slot_use_ratio`` (in flight / slots) and
    ``pyqueue_worker_oldest_active_age_seconds`` (how long the longest-running
    attempt has run; 0: none): five jobs hung for ten minutes show here, where
    the processed counters say nothing until they finish.
    """

    def __init__(self) -> None:
        self._workers: list[Worker] = []

    def watch(self, worker: Worker) -> None:
        self._workers.append(worker)

    def collect(self) -> Iterable[Metric]:
        now_ms = time.time() * 1000
        in_flight: dict[str, int] = {}
        slots: dict[str, int] = {}
        oldest: dict[str, float] = {}
        for worker in self._workers:
            queue = worker.queue.name
            jobs = worker.active_jobs
            in_flight[queue] = in_flight.get(queue, 0) + len(jobs)
            slots[queue] = slots.get(queue, 0) + worker.options.concurrency
            ages = [now_ms - j.processed_on for j in jobs if j.processed_on is not None]
            oldest[queue] = max([oldest.get(queue, 0.0), *(a / 1000 for a in ages)])
        families = (
            ("pyqueue_worker_jobs_in_flight", "Attempts this process's workers run now.",
             in_flight),
            ("pyqueue_worker_slots", "Concurrency slots of this process's workers.", slots),
            ("pyqueue_worker_slot_use_ratio", "Attempts running / concurrency slots.",
             {q: in_flight[q] / slots[q] for q in slots if slots[q]}),
            ("pyqueue_worker_oldest_active_age_seconds",
             "How long the longest-running attempt has run (0: none).", oldest),
        )
        for name, text, values in families:
            family = GaugeMetricFamily(name, text, labels=["queue"])
            for queue, value in sorted(values.items()):
                family.add_metric([queue], value)
            yield family


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
    gauges = WorkerGauges()
    registry.register(gauges)
    for worker in group:
        job_metrics.watch(worker)
        gauges.watch(worker)
    tasks: list[asyncio.Task[None]] = []
    collector: QueueCollector | None = None
    if queue_stats and group:
        first = group[0].queue
        collector = QueueCollector(first.client, first.prefix, [w.queue.name for w in group])
        registry.register(collector)
        await collector.refresh()
        tasks.append(asyncio.create_task(refresh_every(collector, interval)))
    server = ProbeServer(host, port, ready=workers_ready(group), metrics=exposition(registry))
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
        if collector is not None:
            await collector.close()
