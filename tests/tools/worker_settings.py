"""Settings objects for the `pyqueue worker` tests (imported by the command, by name)."""

from __future__ import annotations

import asyncio
import os
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


def _note(line: str) -> None:
    with open(os.environ["HOOKS_LOG"], "a", encoding="utf-8") as out:
        out.write(line + "\n")


async def open_pool(ctx: dict[str, Any]) -> None:
    _note("startup")
    ctx["pool"] = {"name": "pool-1"}


def close_pool(ctx: dict[str, Any]) -> None:
    _note(f"shutdown {ctx['pool']['name']}")


async def uses_pool(job: Any) -> str:
    return f"{job.data['n']} via {job.context['pool']['name']}"


def uses_pool_sync(job: Any) -> str:
    return f"sync via {job.context['pool']['name']}"


with_hooks = WorkerSettings(
    queues={"math": uses_pool, "words": uses_pool_sync},
    options=FAST,
    on_startup=open_pool,
    on_shutdown=close_pool,
    before_process=lambda job: _note(f"before {job.queue.name}"),
    after_process=lambda job, outcome: _note(f"after {job.queue.name} {outcome.result}"),
)
