"""Settings objects for the `pyqueue worker` tests (imported by the command, by name)."""

from __future__ import annotations

import asyncio
from typing import Any

from pyqueue import WorkerOptions
from pyqueue.tools.cli_worker import WorkerSettings


async def double(job: Any) -> int:
    return int(job.data["n"]) * 2


def shout(job: Any) -> str:
    return str(job.data["text"]).upper()


async def slow(job: Any) -> str:
    await asyncio.sleep(float(job.data.get("sleep", 1.0)))
    return "finished"


def fails(job: Any) -> None:
    raise ValueError("no luck")


FAST = WorkerOptions(drain_delay=1, guard_interval=200, stalled_interval=0, shutdown_grace=10)

settings = WorkerSettings(
    queues={"math": double, "words": {"shout": shout, "fail": fails}, "slow": slow},
    options=FAST,
)


class ArqStyle:
    """A plain class with the same attributes, as arq users write them."""

    queues = {"math": double}  # noqa: RUF012 - read once
    options = FAST


def factory() -> dict[str, Any]:
    return {"queues": {"math": double}, "options": FAST}


not_settings = 42
