"""What the engine's parts share about the one worker they serve.

The fetch loop and the finisher both act for one worker: same queue, lock
token, options and local pause, and they report to the same listeners. A
:class:`WorkerContext` holds that once, instead of each part taking it (and the
worker's callbacks) as constructor arguments of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from pyqueue._protocol.bull.keys import QueueKeys
    from pyqueue._protocol.bull.scripts import Scripts
    from pyqueue.options import WorkerOptions


class QueueSide(Protocol):
    """What the engine needs of a queue (a Queue is one; no import of ``queue`` here)."""

    client: aioredis.Redis
    keys: QueueKeys
    scripts: Scripts


@dataclass(eq=False, slots=True)
class WorkerContext:
    """One worker's identity, settings and state, as its engine parts see them.

    Args:
        queue: The worker's queue (client, keys, scripts).
        token: The worker's lock token.
        options: The worker's options.
        emit: Emits a local event on the worker's emitter.
        report: Reports an error (the ``error`` event); work goes on.
        identity: The worker's identity JSON, stored in the hash of each job it
            starts (``pqWorker``); set once, when the worker starts.
    """

    queue: QueueSide
    token: str
    options: WorkerOptions
    emit: Callable[..., None]
    report: Callable[[BaseException], None]
    # Set while the worker is not paused locally.
    resumed: asyncio.Event = field(default_factory=asyncio.Event)
    closing: bool = False
    # Called after each Redis call of the fetch loop that succeeded: ends an
    # outage in the worker's log (see pyqueue._engine.outage).
    healthy: Callable[[], None] = field(default=lambda: None)
    identity: str = ""

    def __post_init__(self) -> None:
        self.resumed.set()

    @property
    def scripts(self) -> Scripts:
        return self.queue.scripts

    def may_fetch_next(self) -> bool:
        """Whether finishing a job may fetch the next one in the same call.

        Not while closing or paused, and never with a rate limiter (the
        finishing script does not apply it; the fetch loop's moveToActive does).
        """
        return not (self.closing or self.options.limiter or not self.resumed.is_set())
