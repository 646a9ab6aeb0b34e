"""RQ: ``Queue.enqueue``/``enqueue_many``; an in-process ``SimpleWorker``.

RQ runs one job at a time per worker process, so the high-concurrency W2 cell is
n/a; W5 scales it with processes. Drains use ``burst=True``; the latency workloads
run a non-burst worker (``with_scheduler=True`` for the delayed one, whose
scheduler polls once a second and has no knob on the worker).

Completion end point: a ``SimpleWorker`` subclass whose ``handle_job_success``
counts the job after RQ's own one has saved the result and moved the job to the
finished registry. RQ's ``work()`` blocks the main thread, so the count reporter
is a thread here (the only adapter where it is).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import threading
import time
from datetime import timedelta
from typing import Any

from redis import Redis
from rq import Queue, SimpleWorker
from rq.exceptions import StopRequested

from benchmarks.peers import _common as c


def noop(data: dict[str, Any]) -> None:
    c.STATS.on_start(data)


class BenchWorker(SimpleWorker):
    def handle_job_success(self, job: Any, *args: Any, **kwargs: Any) -> None:
        super().handle_job_success(job, *args, **kwargs)
        c.STATS.on_complete(job.args[0]["i"])


def _enqueue(args: argparse.Namespace, q: Queue) -> None:
    t0 = time.perf_counter()
    added = 0
    if args.bulk or args.mode == "fill":
        for ids in c.chunks(args.n):
            jobs = q.enqueue_many([Queue.prepare_data(noop, (c.plain_payload(i),)) for i in ids])
            added += len(jobs)
    else:
        for i in range(args.n):
            q.enqueue(noop, c.plain_payload(i))
            added += 1
    seconds = time.perf_counter() - t0
    if args.mode == "fill":
        c.emit({"event": "result", "n": added})
    else:
        c.enqueue_result(args.n, seconds, added)


def _produce(args: argparse.Namespace, q: Queue) -> None:
    delay = timedelta(milliseconds=args.delay_ms)

    def add(data: dict[str, Any]) -> object:
        if args.delay_ms:
            return q.enqueue_in(delay, noop, data)
        return q.enqueue(noop, data)

    c.produce_sync(args.n, args.rate, args.delay_ms, add)


def _worker(args: argparse.Namespace) -> None:
    c.emit({"event": "ready"})
    c.wait_line("go")
    t_go, cpu_go = time.time(), c.cpu_seconds()
    reporter = c.Reporter()
    reporter.start()
    # Constructed after go, as in every adapter: start-up is inside the timed window.
    conn = Redis.from_url(args.url)
    worker = BenchWorker([Queue(args.queue, connection=conn)], connection=conn)
    cpu_stop: list[float] = []
    working = threading.Event()
    working.set()

    def wait_stop() -> None:
        c.wait_line("stop")
        cpu_stop.append(c.cpu_seconds())
        if working.is_set():
            os.kill(os.getpid(), signal.SIGTERM)  # RQ's warm shutdown

    stopper = threading.Thread(target=wait_stop, daemon=True)
    stopper.start()
    # "stop" can race a burst worker's own teardown; its jobs are already counted.
    with contextlib.suppress(StopRequested):
        worker.work(burst=args.burst, with_scheduler=bool(args.delay_ms), logging_level="WARNING")
    working.clear()
    stopper.join()
    reporter.halt()
    c.emit(c.worker_result(t_go, cpu_go, cpu_stop[0]))


def main(args: argparse.Namespace) -> None:
    if args.mode == "worker":
        _worker(args)
        return
    q = Queue(args.queue, connection=Redis.from_url(args.url))
    if args.mode in ("enqueue", "fill"):
        _enqueue(args, q)
    else:
        _produce(args, q)
