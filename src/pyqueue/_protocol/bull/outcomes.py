"""Where a job ended, as Bull 4 stores and announces it: for waiters on ``finished()``.

A job's end is announced on the queue's ``completed`` or ``failed`` channel (a final
failure only; a retry publishes nothing there) with ``{"jobId", "val"}``, and recorded
in the ``completed``/``failed`` sorted sets with ``returnvalue``/``failedReason`` on its
hash. A job may also be gone: removed, or finished with a retention that deleted it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pyqueue._protocol.bull import wire

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from pyqueue._protocol.bull.keys import QueueKeys

OutcomeKind = Literal["completed", "failed", "missing"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a job ended: ``value`` is the return value (completed) or the failed reason."""

    kind: OutcomeKind
    value: Any = None


MISSING = Outcome("missing")


def channels(keys: QueueKeys) -> tuple[str, str]:
    """The channels that announce a job's end: ``completed`` and ``failed``."""
    return keys.channel("completed"), keys.channel("failed")


def parse_message(keys: QueueKeys, channel: str, data: str) -> tuple[str, Outcome] | None:
    """``(job id, outcome)`` of a message on one of :func:`channels`; None if unreadable.

    The payload carries the outcome, so the job hash need not exist any more
    (``removeOnComplete``). ``val`` of a completion is the result's JSON text.
    """
    try:
        body = wire.loads(data)
    except ValueError:
        return None
    if not isinstance(body, dict) or "jobId" not in body:
        return None
    job_id = str(body["jobId"])
    val = body.get("val")
    if channel == keys.channel("failed"):
        return job_id, Outcome("failed", val if isinstance(val, str) else str(val or ""))
    if isinstance(val, str):
        with contextlib.suppress(ValueError):
            val = wire.loads(val)
    return job_id, Outcome("completed", val)


async def read(
    client: aioredis.Redis, keys: QueueKeys, job_ids: Sequence[str]
) -> list[Outcome | None]:
    """The outcome of each job, read in one transaction: None while it has not ended.

    ``missing`` means the job's hash does not exist and it is in neither finished set.
    """
    async with client.pipeline(transaction=True) as pipe:
        for job_id in job_ids:
            pipe.zscore(keys.completed, job_id)
            pipe.zscore(keys.failed, job_id)
            pipe.hmget(keys.job(job_id), "returnvalue", "failedReason")
            pipe.exists(keys.job(job_id))
        replies = await pipe.execute()
    found: list[Outcome | None] = []
    for i in range(len(job_ids)):
        completed, failed, (value, reason), exists = replies[4 * i: 4 * i + 4]
        if completed is not None:
            found.append(Outcome("completed", _json(value)))
        elif failed is not None:
            found.append(Outcome("failed", bytes(reason or b"").decode("utf-8", "replace")))
        elif not exists:
            found.append(MISSING)
        else:
            found.append(None)
    return found


def _json(raw: bytes | None) -> Any:
    if not raw:
        return None
    try:
        return wire.loads(raw.decode("utf-8", "replace"))
    except (ValueError, RecursionError):
        return None
