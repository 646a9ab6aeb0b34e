"""What every Python adapter shares: arguments, the job counters, the worker protocol.

The protocol between the harness and an adapter process is one JSON object per
line on stdout:

* ``enqueue``/``fill``/``produce`` modes print a single ``{"event": "result", ...}``.
* ``worker`` mode prints ``{"event": "ready"}`` once the process is up (libraries
  imported, nothing constructed), waits for ``go`` on stdin, then constructs and
  starts the worker (so its start-up is inside the timed window), prints
  ``{"event": "count", "n": k}`` about every 20 ms while the number of *completed*
  jobs changes, and on ``stop`` closes the worker and prints
  ``{"event": "result", ...}`` with its counts, both end points, latencies, CPU time
  and peak RSS.

Every job is timed at two end points: its handler's start (``Stats.on_start``) and
its completion as the library itself reports it (``Stats.on_complete``: a
completed event or an after-job hook that runs once the result is stored).

Payloads are ``{"i": 7}``; timed jobs also carry ``"t"`` (the producer's wall clock
just before the add call) and ``"d"`` (the requested delay, seconds), so the
handler can compute add→start latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

QUEUE_NAME = "bench"
REPORT_EVERY_S = 0.02
BULK_CHUNK = 1000

_emit_lock = threading.Lock()


def emit(obj: dict[str, Any]) -> None:
    """Print one JSON line and flush it."""
    line = json.dumps(obj, separators=(",", ":"))
    with _emit_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.peers")
    p.add_argument("lib")
    p.add_argument("mode", choices=["enqueue", "fill", "worker", "produce"])
    p.add_argument("--url", required=True)
    p.add_argument("--queue", default=QUEUE_NAME)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--bulk", action="store_true", help="enqueue through the bulk API")
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--burst", action="store_true", help="worker drains a prefilled queue")
    p.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio",
                   help="pyqueue only: the event loop (pyqueue.loops.run)")
    p.add_argument("--protocol", choices=["bull", "bullmq"], default="bull",
                   help="pyqueue only: the wire format (Queue(protocol=...))")
    p.add_argument("--floor", action="store_true",
                   help="pyqueue only: drain with the finishing script in a bare loop, no Worker")
    p.add_argument("--rate", type=float, default=200.0, help="produce: jobs per second")
    p.add_argument("--delay-ms", type=int, default=0, help="produce: delay of each job")
    return p.parse_args(argv)


def cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM).

    Not ru_maxrss: Linux carries the parent's high-water mark across fork+exec into
    it, so every child would report at least the harness's size.
    """
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def plain_payload(i: int) -> dict[str, Any]:
    return {"i": i}


def timed_payload(i: int, delay_s: float) -> dict[str, Any]:
    return {"i": i, "t": time.time(), "d": delay_s}


def chunks(n: int, size: int = BULK_CHUNK) -> Iterator[range]:
    for start in range(0, n, size):
        yield range(start, min(n, start + size))


class Stats:
    """Counts handler starts and completions; records add→start latency of timed payloads."""

    def __init__(self) -> None:
        self.started = 0
        self.completed = 0
        self.seen_start: set[int] = set()
        self.seen_done: set[int] = set()
        self.latencies: list[float] = []
        self.first_start = 0.0
        self.last_start = 0.0
        self.last_completed = 0.0

    def on_start(self, data: dict[str, Any]) -> None:
        """Call first thing in the handler."""
        now = time.time()
        if self.started == 0:
            self.first_start = now
        self.started += 1
        self.last_start = now
        self.seen_start.add(data["i"])
        t = data.get("t")
        if t is not None:
            self.latencies.append(now - t - data.get("d", 0.0))

    def on_complete(self, i: int) -> None:
        """Call from the library's own completion signal, with the job's ``i``."""
        self.completed += 1
        self.last_completed = time.time()
        self.seen_done.add(i)


STATS = Stats()


async def report_counts() -> None:
    """Print the completed count every REPORT_EVERY_S while it changes.

    An asyncio task on the worker's own loop (as bench.js uses setInterval), not a
    thread: a thread would take the GIL from the loop it measures every 20 ms.
    """
    sent = -1
    while True:
        await asyncio.sleep(REPORT_EVERY_S)
        n = STATS.completed
        if n != sent:
            emit({"event": "count", "n": n})
            sent = n


class Reporter(threading.Thread):
    """The thread form of report_counts, for RQ only: its worker blocks the main thread."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self._halt = threading.Event()

    def run(self) -> None:
        sent = -1
        while not self._halt.wait(REPORT_EVERY_S):
            n = STATS.completed
            if n != sent:
                emit({"event": "count", "n": n})
                sent = n

    def halt(self) -> None:
        self._halt.set()
        self.join()
        emit({"event": "count", "n": STATS.completed})


def worker_result(t_go: float, cpu_go: float, cpu_stop: float, **extra: Any) -> dict[str, Any]:
    return {
        "event": "result",
        "count": STATS.completed,
        "unique": len(STATS.seen_done),
        "started": STATS.started,
        "unique_started": len(STATS.seen_start),
        "t_go": t_go,
        "first_start": STATS.first_start,
        "last_start": STATS.last_start,
        "last_completed": STATS.last_completed,
        "cpu_s": cpu_stop - cpu_go,
        "rss_mb": peak_rss_mb(),
        "latencies": STATS.latencies,
        "pid": os.getpid(),
        **extra,
    }


def wait_line(expected: str) -> None:
    """Read one line from fd 0 without sys.stdin, whose lock a fork must not inherit held.

    (RQ's scheduler is a forked process, and multiprocessing closes sys.stdin in the
    child: a thread blocked in sys.stdin.readline() would deadlock it.)
    """
    buf = bytearray()
    while not buf.endswith(b"\n"):
        chunk = os.read(0, 1)
        if not chunk:
            break
        buf += chunk
    line = buf.decode().strip()
    if line != expected:
        raise SystemExit(f"expected {expected!r} on stdin, got {line!r}")


async def run_async_worker(
    start: Callable[[], Awaitable[None]],
    stop: Callable[[], Awaitable[None]],
) -> None:
    """The worker protocol for asyncio libraries.

    ``start`` constructs the library's worker objects and starts consuming; it is
    called after ``go``, inside the timed window. ``stop`` closes them.
    """
    loop = asyncio.get_running_loop()
    emit({"event": "ready"})
    await loop.run_in_executor(None, wait_line, "go")
    t_go, cpu_go = time.time(), cpu_seconds()
    reporter = asyncio.create_task(report_counts())
    await start()
    await loop.run_in_executor(None, wait_line, "stop")
    cpu_stop = cpu_seconds()
    reporter.cancel()
    await asyncio.gather(reporter, return_exceptions=True)
    emit({"event": "count", "n": STATS.completed})
    await stop()
    emit(worker_result(t_go, cpu_go, cpu_stop))


async def produce_async(
    n: int, rate: float, delay_ms: int, add: Callable[[dict[str, Any]], Awaitable[object]]
) -> None:
    """Add n timed jobs at a steady rate; print the achieved rate."""
    delay_s = delay_ms / 1000.0
    t0 = time.monotonic()
    for i in range(n):
        wait = t0 + i / rate - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        await add(timed_payload(i, delay_s))
    elapsed = time.monotonic() - t0
    emit({"event": "result", "sent": n, "rate": n / elapsed if elapsed else 0.0})


def produce_sync(
    n: int, rate: float, delay_ms: int, add: Callable[[dict[str, Any]], object]
) -> None:
    delay_s = delay_ms / 1000.0
    t0 = time.monotonic()
    for i in range(n):
        wait = t0 + i / rate - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        add(timed_payload(i, delay_s))
    elapsed = time.monotonic() - t0
    emit({"event": "result", "sent": n, "rate": n / elapsed if elapsed else 0.0})


def enqueue_result(n: int, seconds: float, added: int) -> None:
    if added != n:
        raise SystemExit(f"added {added} jobs, expected {n}")
    emit({"event": "result", "n": n, "seconds": seconds, "jobs_per_s": n / seconds})
