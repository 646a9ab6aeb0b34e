"""The three handler kinds, lifecycle hooks, a shared context, and an abort.

    REDIS_URL=redis://127.0.0.1:6379/0 python examples/handler_kinds.py

* ``resize`` is ``async def``: it gets a ``Job`` and awaits its operations.
* ``report`` is a plain ``def``: it runs in a thread and gets a ``JobHandle``
  whose ``progress``/``log`` block; it checks ``raise_if_aborted()`` between steps.
* ``crunch`` is sandboxed (``WorkerOptions(sandbox=True)``): it runs in a child
  process and gets a ``JobHandle`` too.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any

from pyqueue import Job, JobFailedError, JobHandle, Queue, Worker, WorkerOptions
from pyqueue.hooks import Context, JobOutcome

# No silent default: a worker must not quietly use a Redis you did not name.
REDIS_URL = os.environ.get("REDIS_URL") or sys.exit("set REDIS_URL first, e.g. REDIS_URL=redis://127.0.0.1:6379/0")
FAST = WorkerOptions(drain_delay=1, shutdown_grace=5)


class Counter:
    """Stands for a shared resource (a database pool, an HTTP client)."""

    def __init__(self) -> None:
        self.calls = 0


async def startup(ctx: Context) -> None:
    ctx["counter"] = Counter()


def shutdown(ctx: Context) -> None:
    print(f"shutdown: the handlers used the shared counter {ctx['counter'].calls} time(s)")


def after(job: Job[Any], outcome: JobOutcome) -> None:
    state = "completed" if outcome.ok else f"failed ({outcome.error})"
    print(f"after_process: {job.queue.name}/{job.id} {state}")


async def resize(job: Job[dict[str, int]]) -> dict[str, int]:
    job.context["counter"].calls += 1
    await job.progress(50)
    await job.log(f"resizing to {job.data['width']}")
    return {"width": job.data["width"] // 2}


def report(job: JobHandle[dict[str, int]]) -> str:
    job.context["counter"].calls += 1
    for page in range(job.data["pages"]):
        job.raise_if_aborted()  # a thread cannot be interrupted: it stops where it checks
        job.progress(int(100 * page / job.data["pages"]))
        time.sleep(0.05)
    job.log("report written")
    return f"{job.data['pages']} pages"


def crunch(job: JobHandle[dict[str, int]]) -> int:
    job.log(f"crunching in process {os.getpid()}")
    job.progress(100)
    return sum(range(job.data["n"]))


async def main() -> None:
    images: Queue[dict[str, int]] = Queue("images", REDIS_URL)
    reports: Queue[dict[str, int]] = Queue("reports", REDIS_URL)
    numbers: Queue[dict[str, int]] = Queue("numbers", REDIS_URL)
    async with images, reports, numbers:
        # One context for two workers; the first one started (and closed last) owns the
        # lifecycle hooks. (`pyqueue worker` settings do this for every queue.)
        context: Context = {}
        async with Worker(images, resize, options=FAST, context=context, after_process=after,
                          on_startup=startup, on_shutdown=shutdown), \
                Worker(reports, report, options=FAST, context=context, after_process=after), \
                Worker(numbers, crunch, options=WorkerOptions(sandbox=True, drain_delay=1)):
            image = await images.add({"width": 800})
            short = await reports.add({"pages": 3})
            long = await reports.add({"pages": 1000})
            number = await numbers.add({"n": 10})
            print("resize:", await image.finished(timeout=30))
            print("report:", await short.finished(timeout=30))
            print("crunch:", await number.finished(timeout=30))
            while await long.get_state() != "active":  # noqa: ASYNC110 - polls Redis
                await asyncio.sleep(0.05)
            print("abort:", await long.abort("not needed any more"))
            try:
                await long.finished(timeout=30)
            except JobFailedError as exc:
                print("aborted report:", exc.reason)


if __name__ == "__main__":  # sandboxed children import this module again
    asyncio.run(main())
