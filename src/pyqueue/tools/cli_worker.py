"""``pyqueue worker package.module:settings``: run workers from a settings object.

The settings are a :class:`pyqueue.WorkerSettings`, or any object or dict with the same
fields (``queues`` is required)::

    # myapp/jobs.py
    settings = WorkerSettings(queues=[QueueEntry("emails", send_email, concurrency=20)],
                              cron=[Cron(send_digest, "0 7 * * *", tz="Europe/Paris")])

    $ pyqueue worker myapp.jobs:settings --concurrency 4

SIGTERM or SIGINT closes every worker gracefully (active jobs get the grace period,
then go back to waiting); a second signal exits at once (status 130), and the
stalled check puts its active jobs back.

``--burst`` exits once nothing is waiting or active in any of the queues, as RQ's and
arq's burst modes do: delayed jobs due later (a retry's backoff, the next run of a
cron schedule) do not hold it; a delayed job already due is run first.

Logs: a completed job and a failed attempt that will be retried are INFO lines; a
final failure is one ERROR line with the exception type and its traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from pyqueue import InvalidOptionsError, SandboxError, Worker, WorkerSettings, shutdown_signals
from pyqueue.group import WorkerGroup
from pyqueue.hooks import LifecycleHook, call_hook

__all__ = [
    "DEFAULT_URL",
    "SettingsError",
    "WorkerSettings",
    "build_workers",
    "configure_logging",
    "load_settings",
    "run_workers",
    "shutdown_signals",
]

log = logging.getLogger("pyqueue.cli.worker")
DEFAULT_URL = "redis://127.0.0.1:6379/0"


class SettingsError(Exception):
    """The settings reference or object is unusable (exit status 2)."""


def load_settings(reference: str) -> WorkerSettings:
    """``package.module:attribute`` -> settings (the attribute may be a zero-argument factory)."""
    module_name, sep, attribute = reference.partition(":")
    if not sep or not module_name or not attribute:
        raise SettingsError(f"settings: expected package.module:attribute, got {reference!r}")
    # Like `python -m`, find modules of the current directory.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SettingsError(f"settings: cannot import {module_name!r}: {exc}") from None
    try:
        found: Any = getattr(module, attribute)
    except AttributeError:
        raise SettingsError(f"settings: {module_name!r} has no attribute {attribute!r}") from None
    if callable(found) and not isinstance(found, type):
        found = found()
    return _as_settings(found, reference)


def _as_settings(found: Any, reference: str) -> WorkerSettings:
    try:
        if isinstance(found, WorkerSettings):
            return found
        names = [f.name for f in dataclasses.fields(WorkerSettings) if f.init]
        if isinstance(found, Mapping):
            values = {n: found[n] for n in names if n in found}
        else:
            values = {n: getattr(found, n) for n in names if hasattr(found, n)}
        if "queues" not in values:
            raise SettingsError(f"settings: {reference} has no 'queues'")
        return WorkerSettings(**values)
    except InvalidOptionsError as exc:
        raise SettingsError(f"settings: {reference}: {exc}") from None


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": round(record.created, 3), "level": record.levelname.lower(),
            "logger": record.name, "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(fmt: str, level: str) -> None:
    handler = logging.StreamHandler(sys.stdout)
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def _log(message: str, **fields: Any) -> None:
    log.info(message, extra={"fields": fields})


def _wire_logging(worker: Worker) -> None:
    """Log each job's end: one line per completion or retried attempt, and one ERROR
    line with the exception type and traceback per final failure (logged here only:
    the library logs its own errors, not handlers' failures)."""
    queue = worker.queue.name

    def completed(job: Any, result: Any) -> None:
        del result
        _log(f"{queue}: job {job.id} ({job.name}) completed", event="completed", queue=queue,
             job_id=job.id, job_name=job.name)

    def failed(job: Any, exc: BaseException, final: bool) -> None:
        kind = type(exc).__name__
        if isinstance(exc, SandboxError) and exc.remote_type:
            kind = exc.remote_type  # the handler's own error, raised in its process
        fields = {"event": "failed", "queue": queue, "job_id": job.id, "job_name": job.name,
                  "final": final, "reason": str(exc), "error_type": kind}
        if not final:
            log.info("%s: job %s (%s) failed, will retry: %s: %s", queue, job.id, job.name,
                     kind, exc, extra={"fields": fields})
            return
        log.error("%s: job %s (%s) failed: %s: %s", queue, job.id, job.name, kind, exc,
                  exc_info=(type(exc), exc, exc.__traceback__), extra={"fields": fields})

    worker.on("completed", completed)
    worker.on("failed", failed)
    # Errors are not logged here: the worker logs each one already ("queue <name>:
    # ..."), an outage once when lost and once when back (issue 29: twice was noise).


def build_workers(settings: WorkerSettings, redis_url: str, prefix: str,
                  concurrency: int | None) -> WorkerGroup:
    """The workers of ``settings`` (one per queue, one shared context), not started.

    The settings' ``on_startup``/``on_shutdown`` are left to :func:`run_workers`, which
    is given them.

    Raises:
        SettingsError: a queue's worker cannot be made; the message says why.
    """
    try:
        bare = dataclasses.replace(settings, on_startup=None, on_shutdown=None)
        return WorkerGroup(bare, redis_url=redis_url, prefix=prefix, concurrency=concurrency)
    except InvalidOptionsError as exc:
        raise SettingsError(f"settings: {exc}") from None


async def run_workers(
    workers: WorkerGroup, *, burst: bool, metrics: tuple[str, int] | None,
    on_ready: Callable[[int | None], None] | None = None,
    on_startup: LifecycleHook | None = None,
    on_shutdown: LifecycleHook | None = None,
    loop_name: str | None = None,
) -> None:
    """Run until a signal (or, with ``burst``, until nothing waits or runs).

    ``on_startup(context)`` runs before the first worker starts and
    ``on_shutdown(context)`` after the last one closed, with the workers' shared
    context. ``loop_name`` is told in the "started" line.
    """
    async with shutdown_signals() as stop:
        if on_startup is not None:
            await call_hook(on_startup, workers.context)
        try:
            await _run(workers, stop, burst=burst, metrics=metrics, on_ready=on_ready,
                       loop_name=loop_name)
        finally:
            if on_shutdown is not None:
                await call_hook(on_shutdown, workers.context)


async def _run(
    group: WorkerGroup, stop: asyncio.Event, *, burst: bool,
    metrics: tuple[str, int] | None, on_ready: Callable[[int | None], None] | None,
    loop_name: str | None,
) -> None:
    workers = group.workers
    for worker in workers:
        _wire_logging(worker)
    await group.start()
    began = time.monotonic()
    async with contextlib.AsyncExitStack() as stack:
        port: int | None = None
        if metrics is not None:
            from pyqueue.tools.metrics import serve_worker  # noqa: PLC0415 - optional extra

            server = await stack.enter_async_context(
                serve_worker(workers, host=metrics[0], port=metrics[1]))
            port = server.port
        _log(f"started {len(workers)} worker(s): "
             f"{', '.join(w.queue.name for w in workers)}"
             + (f" ({loop_name} event loop)" if loop_name is not None else "")
             + (f"; metrics on port {port}" if port is not None else ""),
             event="started", queues=[w.queue.name for w in workers], metrics_port=port,
             loop=loop_name)
        if on_ready is not None:
            on_ready(port)
        if burst:
            await group.run_until_idle(stop)
        else:
            await stop.wait()
        closing = time.monotonic()
        await group.close()
        done = time.monotonic()
        # Two durations: how long the workers ran, and how long the graceful close
        # (in-flight jobs finishing) took, which is what an operator tunes grace by.
        _log(f"stopped after running {done - began:.1f}s (shutdown took {done - closing:.1f}s)",
             event="stopped", ran_s=round(done - began, 3), shutdown_s=round(done - closing, 3))
