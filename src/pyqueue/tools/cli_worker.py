"""``pyqueue worker package.module:settings``: run workers from a settings object.

The settings are a :class:`WorkerSettings`, or any object or dict with the same
fields (``queues`` is required)::

    # myapp/jobs.py
    settings = WorkerSettings(queues={"emails": send_email, "reports": {"daily": daily}})

    $ pyqueue worker myapp.jobs:settings --concurrency 4

SIGTERM or SIGINT closes every worker gracefully (active jobs get the grace period,
then go back to waiting); a second signal exits at once (status 130), and the
stalled check puts its active jobs back. ``--burst``
exits once every queue is empty.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pyqueue import InvalidOptionsError, Queue, Worker, WorkerOptions
from pyqueue.hooks import AfterProcess, BeforeProcess, Context, LifecycleHook, call_hook

log = logging.getLogger("pyqueue.cli.worker")
DEFAULT_URL = "redis://127.0.0.1:6379/0"
_BURST_POLL = 0.1
EXIT_COLD = 130


class SettingsError(Exception):
    """The settings reference or object is unusable (exit status 2)."""


@dataclass(frozen=True)
class WorkerSettings:
    """What ``pyqueue worker`` runs.

    Args:
        queues: ``{queue name: handler or {job name: handler}}``, one worker each.
        redis_url: Used unless ``--redis-url`` or ``REDIS_URL`` is given.
        prefix: Bull key prefix (default ``bull``), unless ``--prefix`` is given.
        options: :class:`pyqueue.WorkerOptions` for every worker (``--concurrency``
            overrides its concurrency).
        context: The dict every worker's handlers reach as ``job.context``; one
            dict, shared by the workers of all queues (default: a new empty dict).
        on_startup: ``hook(context)``, awaited once before any worker starts (open
            database pools and clients here); if it raises, nothing starts.
        on_shutdown: ``hook(context)``, awaited once after every worker closed.
        before_process, after_process: Given to every worker; see :class:`pyqueue.Worker`.
    """

    queues: Mapping[str, Any]
    redis_url: str | None = None
    prefix: str | None = None
    options: WorkerOptions | None = None
    context: Context | None = None
    on_startup: LifecycleHook | None = None
    on_shutdown: LifecycleHook | None = None
    before_process: BeforeProcess | None = None
    after_process: AfterProcess | None = None


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
    if isinstance(found, WorkerSettings):
        settings = found
    else:
        names = [f.name for f in dataclasses.fields(WorkerSettings)]
        if isinstance(found, Mapping):
            values = {n: found[n] for n in names if n in found}
        else:
            values = {n: getattr(found, n) for n in names if hasattr(found, n)}
        if "queues" not in values:
            raise SettingsError(f"settings: {reference} has no 'queues'")
        settings = WorkerSettings(**values)
    if not isinstance(settings.queues, Mapping) or not settings.queues:
        raise SettingsError(f"settings: {reference}.queues must be a non-empty mapping")
    if settings.options is not None and not isinstance(settings.options, WorkerOptions):
        raise SettingsError(f"settings: {reference}.options must be a WorkerOptions")
    if settings.context is not None and not isinstance(settings.context, dict):
        raise SettingsError(f"settings: {reference}.context must be a dict")
    for hook in ("on_startup", "on_shutdown", "before_process", "after_process"):
        if getattr(settings, hook) is not None and not callable(getattr(settings, hook)):
            raise SettingsError(f"settings: {reference}.{hook} must be callable")
    return settings


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
    queue = worker.queue.name

    def completed(job: Any, result: Any) -> None:
        del result
        _log(f"{queue}: job {job.id} ({job.name}) completed", event="completed", queue=queue,
             job_id=job.id, job_name=job.name)

    def failed(job: Any, exc: BaseException, final: bool) -> None:
        _log(f"{queue}: job {job.id} ({job.name}) failed{'' if final else ', will retry'}: {exc}",
             event="failed", queue=queue, job_id=job.id, job_name=job.name, final=final,
             reason=str(exc))

    worker.on("completed", completed)
    worker.on("failed", failed)
    # Errors are not logged here: the worker logs each one already ("queue <name>:
    # ..."), an outage once when lost and once when back (issue 29: twice was noise).


def build_workers(settings: WorkerSettings, redis_url: str, prefix: str,
                  concurrency: int | None) -> list[Worker]:
    options = settings.options or WorkerOptions()
    if concurrency is not None:
        options = dataclasses.replace(options, concurrency=concurrency)
    workers = []
    # One context for every queue's worker: one database pool per process, not per queue.
    context: Context = {} if settings.context is None else settings.context
    try:
        for name, handler in settings.queues.items():
            queue: Queue[Any] = Queue(name, redis_url, prefix=prefix)
            workers.append(Worker(
                queue, handler, options=options, context=context,
                before_process=settings.before_process, after_process=settings.after_process,
            ))
    except InvalidOptionsError as exc:
        raise SettingsError(f"settings: {exc}") from None
    return workers


async def _drained(workers: list[Worker]) -> bool:
    for worker in workers:
        counts = await worker.queue.get_job_counts("waiting", "active", "delayed")
        if sum(counts.values()):
            return False
    return True


async def run_workers(
    workers: list[Worker], *, burst: bool, metrics: tuple[str, int] | None,
    on_ready: Callable[[int | None], None] | None = None,
    on_startup: LifecycleHook | None = None,
    on_shutdown: LifecycleHook | None = None,
    loop_name: str | None = None,
) -> None:
    """Run until a signal (or, with ``burst``, until the queues are empty).

    ``on_startup(context)`` runs before the first worker starts and
    ``on_shutdown(context)`` after the last one closed, with the workers' shared
    context (the first worker's). ``loop_name`` is told in the "started" line.
    """
    context = workers[0].context if workers else {}
    async with shutdown_signals() as stop:
        if on_startup is not None:
            await call_hook(on_startup, context)
        try:
            await _run(workers, stop, burst=burst, metrics=metrics, on_ready=on_ready,
                       loop_name=loop_name)
        finally:
            if on_shutdown is not None:
                await call_hook(on_shutdown, context)


async def _run(
    workers: list[Worker], stop: asyncio.Event, *, burst: bool,
    metrics: tuple[str, int] | None, on_ready: Callable[[int | None], None] | None,
    loop_name: str | None,
) -> None:
    for worker in workers:
        _wire_logging(worker)
        await worker.start()
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
            streak = 0
            while streak < 2 and not stop.is_set():
                streak = streak + 1 if await _drained(workers) else 0
                await asyncio.sleep(_BURST_POLL)
        else:
            await stop.wait()
        started = time.monotonic()
        await asyncio.gather(*(w.close() for w in workers))
        _log(f"stopped after {time.monotonic() - started:.1f}s", event="stopped")


@contextlib.asynccontextmanager
async def shutdown_signals(
    signals: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT),
) -> AsyncIterator[asyncio.Event]:
    """An event set by the first SIGTERM or SIGINT; a second one exits the process at once.

    What ``pyqueue worker`` uses, for programs that run their workers themselves::

        async with shutdown_signals() as stop:
            await worker.start()
            await stop.wait()
            await worker.close()   # active jobs get the shutdown grace

    The second signal is Celery's "cold shutdown": the process exits with status 130
    without closing, the locks of its active jobs expire, and the stalled check (of
    any worker, Node's too) puts those jobs back. The handlers are removed on exit.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    received = 0

    def on_signal(signum: int) -> None:
        nonlocal received
        received += 1
        name = signal.Signals(signum).name
        if received == 1:
            _log(f"received {name}: closing gracefully", event="stopping", signal=name)
            stop.set()
        else:
            _log("second signal: exiting now; active jobs are recovered as stalled",
                 event="abort")
            logging.shutdown()
            os._exit(EXIT_COLD)

    for signum in signals:
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        yield stop
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
