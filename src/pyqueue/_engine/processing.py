"""Running one handler call: async or threaded, with Bull's timeout semantics."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import traceback
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Executor, Future
from typing import TYPE_CHECKING, Any, TypeAlias, cast

from pyqueue._engine.threaded import ThreadJob
from pyqueue.errors import JobTimeoutError, MissingHandlerError
from pyqueue.handle import JobHandle
from pyqueue.job import Job

if TYPE_CHECKING:
    from pyqueue._engine.sandbox import SandboxPool

# ``async def`` handlers get a Job; plain ``def`` and sandboxed ones a JobHandle.
Handler: TypeAlias = Callable[[Job[Any]], Any] | Callable[[JobHandle[Any]], Any]


def normalise_processors(processor: Handler | Mapping[str, Handler]) -> dict[str, Handler]:
    """``{name: handler}``, where ``"*"`` handles every name without its own handler."""
    if callable(processor):
        return {"*": processor}
    table = dict(processor)
    for name, fn in table.items():
        if not isinstance(name, str) or not callable(fn):
            raise TypeError(f"processor for {name!r} must be callable")
    if not table:
        raise TypeError("at least one processor is required")
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
        JobTimeoutError: after ``timeout_ms``, with Bull's message. A threaded
            handler cannot be interrupted and keeps running to its end.
    """
    if sandbox is not None:
        return await sandbox.run_job(handler, job, timeout_ms)
    awaitable: Awaitable[Any]
    if is_async_handler(handler) if is_async is None else is_async:
        awaitable = handler(job)  # type: ignore[arg-type]
    else:
        ctx = contextvars.copy_context()
        loop = asyncio.get_running_loop()
        handle = ThreadJob(job, loop)
        sync_handler = cast("Callable[[JobHandle[Any]], Any]", handler)
        if executor is None:
            awaitable = loop.run_in_executor(None, ctx.run, sync_handler, handle)
        else:
            call = executor.submit(ctx.run, sync_handler, handle)
            if threads is not None:
                _track(threads, job.id, call)
            awaitable = asyncio.wrap_future(call)
    if timeout_ms is None:
        result = await awaitable
    else:
        try:
            result = await asyncio.wait_for(awaitable, timeout_ms / 1000)
        except TimeoutError:
            raise JobTimeoutError(f"Promise timed out after {timeout_ms} milliseconds") from None
    if result is not None and inspect.isawaitable(result):
        # A sync function that returned a coroutine (e.g. a lambda around one).
        result = await result
    return result


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

