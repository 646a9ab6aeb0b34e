"""Running one handler call: async or threaded, with Bull's timeout semantics.

A timeout counts from when the handler starts: for a plain ``def`` handler, from when
its thread picks the call up, not while the call waits for a free thread (a thread
that outran an earlier timeout runs on, and holds its slot until it returns). When a
timeout fires the attempt fails with :class:`~pyqueue.JobTimeoutError` and
``job.aborted`` says so, which is all a thread can be told.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import traceback
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, Future
from typing import TYPE_CHECKING, Any, TypeAlias, cast

from pyqueue._engine.threaded import ThreadJob
from pyqueue._handlers import AsyncHandler
from pyqueue._handlers import Handler as _TypedHandler
from pyqueue.errors import InvalidOptionsError, JobTimeoutError, MissingHandlerError
from pyqueue.handle import JobHandle
from pyqueue.job import Job

if TYPE_CHECKING:
    from pyqueue._engine.sandbox import SandboxPool

# ``async def`` handlers get a Job; plain ``def`` and sandboxed ones a JobHandle.
Handler: TypeAlias = _TypedHandler[Any]


def normalise_processors(processor: object) -> dict[str, Handler]:
    """``{name: handler}``, where ``"*"`` handles every name without its own handler.

    Raises:
        InvalidOptionsError: a handler is not callable, a name is not a string, or
            the table is empty.
    """
    if callable(processor):
        return {"*": cast("Handler", processor)}
    if not isinstance(processor, Mapping):
        raise InvalidOptionsError(
            f"processor: must be a handler or {{job name: handler}}, got {processor!r}"
        )
    table = dict(processor)
    for name, fn in table.items():
        if not isinstance(name, str) or not name:
            raise InvalidOptionsError(f"processor: job names must be strings, got {name!r}")
        if not callable(fn):
            raise InvalidOptionsError(f"processor[{name!r}]: must be callable, got {fn!r}")
    if not table:
        raise InvalidOptionsError("processor: at least one handler is required")
    return table


def find_handler(table: Mapping[str, Handler], name: str) -> Handler:
    handler = table.get(name) or table.get("*")
    if handler is None:
        raise MissingHandlerError(f"Missing process handler for job type {name}")
    return handler


def is_async_handler(handler: Handler) -> bool:
    target = handler.func if isinstance(handler, functools.partial) else handler
    return inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(
        getattr(target, "__call__", None)  # noqa: B004 - callable objects with async __call__
    )


async def run_handler(
    handler: Handler,
    job: Job[Any],
    executor: Executor | None,
    timeout_ms: int | None,
    sandbox: SandboxPool | None = None,
    threads: dict[str, Future[Any]] | None = None,
    is_async: bool | None = None,
) -> Any:
    """Call ``handler(job)``; sync handlers run in ``executor`` with a copied context.

    A sync handler gets a :class:`~pyqueue._engine.threaded.ThreadJob` over ``job``,
    whose blocking operations run on this loop.

    With ``sandbox``, the call runs in one of its child processes instead (see
    :meth:`SandboxPool.run_job`), which a timeout kills. ``threads`` maps a job
    id to its handler's thread call while that call has not returned (the
    worker's close tells from it which jobs are really stopped). ``is_async``
    is :func:`is_async_handler` of ``handler``, when the caller knows it.

    Raises:
        JobTimeoutError: ``timeout_ms`` after the handler started (see the module
            docstring); ``job.aborted`` is set then. A threaded handler cannot be
            interrupted and keeps running to its end.
    """
    if sandbox is not None:
        return await sandbox.run_job(handler, job, timeout_ms)
    if is_async_handler(handler) if is_async is None else is_async:
        result = await _timed(cast("AsyncHandler[Any]", handler)(job), job, timeout_ms)
    else:
        result = await _in_thread(
            cast("Callable[[JobHandle[Any]], Any]", handler), job, executor, timeout_ms, threads
        )
    if result is not None and inspect.isawaitable(result):
        # A sync function that returned a coroutine (e.g. a lambda around one).
        result = await result
    return result


async def _timed(awaitable: Any, job: Job[Any], timeout_ms: int | None) -> Any:
    """Await ``awaitable``; past ``timeout_ms``, fail the attempt as a timeout."""
    if timeout_ms is None:
        return await awaitable
    try:
        async with asyncio.timeout(timeout_ms / 1000) as scope:
            return await awaitable
    except TimeoutError:
        if not scope.expired():
            raise  # the handler's own TimeoutError, not ours
        error = JobTimeoutError(timeout_ms)
        job.mark_timed_out(str(error))
        raise error from None


async def _in_thread(
    handler: Callable[[JobHandle[Any]], Any],
    job: Job[Any],
    executor: Executor | None,
    timeout_ms: int | None,
    threads: dict[str, Future[Any]] | None,
) -> Any:
    """Run a sync handler in a thread; its timeout starts when the thread does."""
    ctx = contextvars.copy_context()
    loop = asyncio.get_running_loop()
    handle = ThreadJob(job, loop)
    started = loop.create_future()

    def call() -> Any:
        loop.call_soon_threadsafe(_set_done, started)
        return ctx.run(handler, handle)

    if executor is None:
        awaitable: asyncio.Future[Any] = loop.run_in_executor(None, call)
    else:
        submitted = executor.submit(call)
        if threads is not None:
            _track(threads, job.id, submitted)
        awaitable = asyncio.wrap_future(submitted)
    if timeout_ms is None:
        return await awaitable
    try:
        # No timeout while the call waits for a free thread.
        await asyncio.wait({started, awaitable}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        awaitable.cancel()  # a call still queued never starts
        raise
    return await _timed(awaitable, job, timeout_ms)


def _set_done(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_result(None)


def _track(threads: dict[str, Future[Any]], job_id: str, call: Future[Any]) -> None:
    threads[job_id] = call

    def forget(done: Future[Any]) -> None:
        # Runs on the handler's thread; a newer call for the same id stays.
        if threads.get(job_id) is done:
            threads.pop(job_id, None)

    call.add_done_callback(forget)


def error_stack(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)).rstrip()


def trimmed_stacktrace(previous: list[str], new: str, limit: int | None) -> list[str]:
    """The newest ``limit`` traces, as Bull 4.15+ keeps them (``slice(-limit)``).

    Bull up to 4.14 kept the oldest ``limit - 1`` plus the newest instead; the
    newer rule is the one that shows why the last attempts failed. A limit of
    0 is falsy in JavaScript, so it keeps everything, as does no limit.
    """
    traces = [*previous, new]
    return traces[-limit:] if limit else traces

