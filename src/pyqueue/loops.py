"""Which event loop pyqueue's own entry points run on: uvloop when it is installed.

``pyqueue worker`` and ``python -m bookwish_jobs.worker`` start the loop
themselves, so they choose it, as uvicorn's ``--loop auto`` does. uvloop runs
the same worker with less CPU per job (benchmarks/README.md, the rows "pyqueue
on uvloop"). A :class:`~pyqueue.Worker` started in your own program runs on
whatever loop your program runs; :func:`run` is there for programs that want
the same choice.

``loop``: ``"auto"`` (uvloop if it can be imported, else asyncio's default),
``"asyncio"`` or ``"uvloop"`` (an error if it is not installed). When the caller
gives none, ``$PYQUEUE_LOOP`` decides, then ``"auto"``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

T = TypeVar("T")
LoopChoice = Literal["auto", "asyncio", "uvloop"]
LOOP_ENV = "PYQUEUE_LOOP"
_CHOICES = ("auto", "asyncio", "uvloop")


def loop_factory(loop: LoopChoice | None = None) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The factory of the chosen loop, or None for asyncio's default.

    Raises:
        ValueError: an unknown choice, naming where it came from.
        RuntimeError: ``"uvloop"`` asked for, and uvloop is not installed.
    """
    choice: str = loop if loop is not None else os.environ.get(LOOP_ENV, "") or "auto"
    if choice not in _CHOICES:
        where = "loop" if loop is not None else f"${LOOP_ENV}"
        raise ValueError(f"{where} is {choice!r}: it must be auto, asyncio or uvloop")
    if choice == "asyncio":
        return None
    try:
        import uvloop  # noqa: PLC0415 - optional: pip install 'pyqueue-bull[uvloop]'
    except ImportError:
        if choice == "uvloop":
            raise RuntimeError(
                "the uvloop event loop was asked for but uvloop is not installed: "
                "pip install 'pyqueue-bull[uvloop]'"
            ) from None
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def loop_name(loop: LoopChoice | None = None) -> str:
    """``"uvloop"`` or ``"asyncio"``: what :func:`run` with this choice runs on."""
    return "asyncio" if loop_factory(loop) is None else "uvloop"


def running_loop_name() -> str:
    """``"uvloop"`` or ``"asyncio"`` (or another library's name): the loop running now."""
    return type(asyncio.get_running_loop()).__module__.split(".")[0]


def run(main: Coroutine[Any, Any, T], *, loop: LoopChoice | None = None) -> T:
    """``asyncio.run(main)`` on the chosen loop (see the module's docstring)."""
    try:
        factory = loop_factory(loop)
    except (ValueError, RuntimeError):
        main.close()  # never started: no "coroutine was never awaited" warning
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)
