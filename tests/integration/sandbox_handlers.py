"""Module-level handlers for the sandbox tests: a child process imports them by name."""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import time
from typing import Any

from pydantic import BaseModel

from pyqueue import JobHandle, UnrecoverableError


def echo(job: Any) -> dict[str, Any]:
    return {"id": job.id, "name": job.name, "data": job.data, "pid": os.getpid()}


def boom(job: Any) -> None:
    raise ValueError(f"bad value {job.data['x']}")


def unrecoverable(job: Any) -> None:
    raise UnrecoverableError("give up now")


def crash_or_echo(job: Any) -> Any:
    """``{"crash": mode}``: ``exit`` calls ``os._exit(3)``, ``kill`` SIGKILLs itself,
    ``segv`` reads address 0; no ``crash``: echo after ``sleep`` seconds."""
    mode = job.data.get("crash")
    if mode == "segv":
        ctypes.string_at(0)
    if mode == "exit":
        time.sleep(0.2)  # let a sibling job start in the other child first
        os._exit(3)
    if mode == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(job.data.get("sleep", 0))
    return echo(job)


def fib(job: Any) -> int:
    def slow(n: int) -> int:
        return n if n < 2 else slow(n - 1) + slow(n - 2)

    return slow(job.data["n"])


async def async_echo(job: Any) -> dict[str, Any]:
    await asyncio.sleep(0.01)
    await job.progress(10)  # awaitable, as on a real Job
    return {"async": True, "data": job.data}


def report(job: Any) -> str:
    for pct in (25, 50, 100):
        job.progress(pct)
    job.log("half way")
    job.log("done")
    job.progress({"stage": "end"})
    return "reported"


def sleepy(job: Any) -> dict[str, Any]:
    job.log(f"pid {os.getpid()}")
    time.sleep(job.data["sleep"])
    return {"pid": os.getpid()}


def uses_its_job(job: JobHandle[Any]) -> dict[str, Any]:
    """Reports through the blocking JobHandle API (threaded and sandboxed tests share it)."""
    job.progress(40)
    first = job.log("step one")
    second = job.log("step two")
    job.update({**job.data, "seen": True})
    job.progress({"stage": "done"})
    return {
        "lines": [first, second], "data": job.data, "attempts": job.opts.attempts,
        "kind": type(job).__name__, "is_handle": isinstance(job, JobHandle),
    }


def sleeps_until_killed(job: JobHandle[Any]) -> str:
    """Sandboxed: never checks the abort flag; only killing its process stops it."""
    job.progress("started")
    time.sleep(60)
    return "not aborted"


class Email(BaseModel):
    to: str


def typed_handle(job: JobHandle[Email]) -> str:
    """Sandboxed: the child validates the payload against the annotated model too."""
    return f"{type(job.data).__name__}:{job.data.to}"
