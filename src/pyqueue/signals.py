"""Graceful shutdown on SIGTERM and SIGINT, for programs that run workers themselves.

What ``pyqueue worker`` uses (and bookwish_jobs, and the examples)::

    async with shutdown_signals() as stop:
        await worker.start()
        await stop.wait()
        await worker.close()   # active jobs get the shutdown grace
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator

log = logging.getLogger("pyqueue.signals")

# The exit status of a second signal: 128 + SIGINT, as shells report an interrupt.
EXIT_COLD = 130


@contextlib.asynccontextmanager
async def shutdown_signals(
    signals: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT),
) -> AsyncIterator[asyncio.Event]:
    """An event set by the first SIGTERM or SIGINT; a second one exits the process at once.

    The second signal is Celery's "cold shutdown": the process exits with status 130
    without closing, the locks of its active jobs expire, and the stalled check (of
    any worker, Node's too) puts those jobs back. The handlers are removed on exit.
    Each signal is logged on the ``pyqueue.signals`` logger.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    received = 0

    def on_signal(signum: int) -> None:
        nonlocal received
        received += 1
        name = signal.Signals(signum).name
        if received == 1:
            log.info("received %s: closing gracefully", name,
                     extra={"fields": {"event": "stopping", "signal": name}})
            stop.set()
        else:
            log.info("second signal: exiting now; active jobs are recovered as stalled",
                     extra={"fields": {"event": "abort"}})
            logging.shutdown()
            os._exit(EXIT_COLD)

    for signum in signals:
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        yield stop
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
