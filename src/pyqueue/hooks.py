"""A worker's lifecycle hooks and the context its handlers share (arq's ``ctx``, SAQ's hooks).

::

    async def startup(ctx: Context) -> None:
        ctx["db"] = await create_pool(DSN)

    async def shutdown(ctx: Context) -> None:
        await ctx["db"].close()

    async def handler(job: Job[Any]) -> None:
        async with job.context["db"].acquire() as conn: ...

    Worker("orders", handler, on_startup=startup, on_shutdown=shutdown)

Hooks may be ``async def`` or plain functions; plain ones run on the event loop,
so they must not block. None of them talks to Redis: they add no round trip.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from pyqueue.job import Job

Context: TypeAlias = dict[str, Any]


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """What ``after_process`` learns about the attempt that just ended.

    Attributes:
        result: The handler's return value (None when it failed).
        error: The exception the attempt failed with, or None if it completed.
        final: True if the job is done for good (completed, or failed without a
            retry to follow); False if it failed and will be retried.
    """

    result: Any
    error: BaseException | None
    final: bool

    @property
    def ok(self) -> bool:
        return self.error is None


LifecycleHook: TypeAlias = Callable[[Context], Awaitable[None] | None]
BeforeProcess: TypeAlias = Callable[["Job[Any]"], Awaitable[None] | None]
AfterProcess: TypeAlias = Callable[["Job[Any]", JobOutcome], Awaitable[None] | None]


async def call_hook(hook: Callable[..., Awaitable[None] | None], *args: Any) -> None:
    """Call a sync or async hook and wait for it."""
    result = hook(*args)
    if inspect.isawaitable(result):
        await result
