"""Acting on many jobs without blocking Redis: batched clean, and retry or remove of search matches.

Redis runs one script at a time, and nothing else meanwhile: a ``clean`` of
15,000 jobs in one script kept every worker and producer waiting for 160 ms.
Here every script call touches at most :data:`BATCH` jobs (a millisecond or
two of Redis time), and the caller's other clients get in between calls.

* :func:`clean`: :meth:`Queue.clean` in calls of ``batch`` jobs for the
  finished sets (scored by finishing time, so each call takes the oldest
  ``batch``); for the other states, whose ``clean`` scans a list (or, for
  ``delayed``, cannot bound itself by time, a quirk kept from Bull), the jobs
  are listed a page at a time and removed one script each, as Bull's
  ``clean`` decides: by ``finishedOn``, else ``processedOn``, else
  ``timestamp``.
* :func:`find_matching` then :func:`act_on`: a search's matches, counted first
  (the dry run), then retried or removed ``batch`` at a time, one small script
  per job. Jobs that moved on in between (retried already, now locked) are
  skipped and counted by reason.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pyqueue import InvalidOptionsError, JobStateError, Queue, monitoring
from pyqueue.tools.search import SLICE, search_jobs

BATCH = 200
"""Jobs per script call (clean) or per round of concurrent job scripts (act_on)."""
FINISHED = ("completed", "failed")
Op = Literal["retry", "remove"]


@dataclass(slots=True)
class BulkResult:
    """What a bulk operation did: ``done`` jobs, ``skipped`` ones by reason, in ``calls`` calls."""

    done: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    calls: int = 0
    largest_call: int = 0
    ids: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"done": self.done, "skipped": dict(self.skipped), "calls": self.calls,
                "largestCall": self.largest_call}


def _now_ms() -> int:
    return int(time.time() * 1000)


async def count_cleanable(queue: Queue[Any], grace_ms: int, state: str) -> int:
    """How many jobs of ``state`` a clean with this grace would remove (the dry run).

    Exact for the finished sets (one ZCOUNT); for the others, the jobs are
    read a page at a time, as :func:`clean` reads them.
    """
    cutoff = _now_ms() - grace_ms
    if state in FINISHED:
        return int(await queue.client.zcount(queue.keys.finished_set(state), 0, cutoff))
    count = 0
    async for _ in _old_unfinished(queue, state, cutoff):
        count += 1
    return count


async def _old_unfinished(queue: Queue[Any], state: str, cutoff: int) -> Any:
    """Ids of ``state`` older than ``cutoff``, oldest first, a page at a time."""
    offset = 0
    while True:
        jobs = await queue.get_jobs(state, offset, offset + BATCH - 1, asc=True)  # type: ignore[arg-type]
        if not jobs:
            return
        for job in jobs:
            stamp = job.finished_on or job.processed_on or job.timestamp
            if stamp < cutoff:
                yield job.id
        offset += BATCH


async def clean(
    queue: Queue[Any], grace_ms: int, state: str, limit: int = 0, *, batch: int = BATCH,
    on_batch: Callable[[BulkResult], None] | None = None,
) -> BulkResult:
    """Remove jobs of ``state`` older than ``grace_ms``, ``batch`` a call; ``limit`` 0: all.

    Raises:
        InvalidOptionsError: a bad state, grace, limit or batch.
    """
    if batch < 1 or limit < 0 or grace_ms < 0:
        raise InvalidOptionsError(f"clean: batch >= 1, limit >= 0, grace >= 0 (got {batch}, "
                                  f"{limit}, {grace_ms})")
    out = BulkResult()
    if state in FINISHED:
        cutoff_grace = grace_ms
        while limit == 0 or out.done < limit:
            want = batch if limit == 0 else min(batch, limit - out.done)
            removed = await queue.clean(cutoff_grace, state, want)  # type: ignore[arg-type]
            out.calls += 1
            out.largest_call = max(out.largest_call, len(removed))
            out.done += len(removed)
            out.ids.extend(removed)
            if on_batch is not None:
                on_batch(out)
            if len(removed) < want:
                break
        return out
    if state not in ("waiting", "wait", "active", "paused", "delayed"):
        raise InvalidOptionsError(f"state: cannot clean {state!r}")
    cutoff = _now_ms() - grace_ms
    ids: list[str] = []
    async for job_id in _old_unfinished(queue, "waiting" if state == "wait" else state, cutoff):
        ids.append(job_id)
        if limit and len(ids) >= limit:
            break
    return await act_on(queue, ids, "remove", batch=batch, on_batch=on_batch)


@dataclass(frozen=True, slots=True)
class Criteria:
    """What a search matches (the filters of :func:`pyqueue.tools.search.search_jobs`)."""

    state: str | None = None
    id: str | None = None
    name: str | None = None
    data_path: str | None = None
    data_value: Any = None
    text: str | None = None
    failed_reason: str | None = None

    def given(self) -> bool:
        return any(v is not None for v in (self.state, self.id, self.name, self.data_path,
                                           self.text, self.failed_reason))


@dataclass(slots=True)
class Matches:
    """The ids a search matched, and how many entries Redis examined to find them."""

    ids: list[str]
    examined: int
    complete: bool


async def find_matching(queue: Queue[Any], criteria: Criteria, limit: int = 0) -> Matches:
    """Every job matching ``criteria`` (at most ``limit``; 0: all), by id.

    Each search call examines at most :data:`~pyqueue.tools.search.SLICE`
    entries in Redis, so the walk never holds Redis for long.
    """
    ids: list[str] = []
    examined = 0
    cursor = "0"
    while True:
        page = await search_jobs(
            queue, state=criteria.state, id=criteria.id, name=criteria.name,
            data_path=criteria.data_path, data_value=criteria.data_value, text=criteria.text,
            failed_reason=criteria.failed_reason, cursor=cursor,
            count=BATCH if not limit else min(BATCH, limit - len(ids)), max_examined=SLICE,
        )
        ids.extend(j.id for j in page.jobs)
        examined += page.examined
        cursor = page.cursor
        if cursor == "0":
            return Matches(ids, examined, True)
        if limit and len(ids) >= limit:
            return Matches(ids[:limit], examined, False)


async def _one(queue: Queue[Any], job_id: str, op: Op) -> str | None:
    """Do ``op`` to one job; None when done, else why it was skipped."""
    job = await monitoring.get_job(queue, job_id)
    if job is None:
        return "gone"
    try:
        if op == "retry":
            await job.retry()
        else:
            await job.remove()
    except JobStateError as exc:
        if op == "remove":
            return "locked (active)"
        return "not failed" if exc.code == -2 else "locked (active)" if exc.code == -1 else str(exc)
    return None


async def act_on(
    queue: Queue[Any], ids: list[str], op: Op, *, batch: int = BATCH,
    on_batch: Callable[[BulkResult], None] | None = None,
) -> BulkResult:
    """Retry or remove ``ids``, ``batch`` one-job scripts in flight at a time.

    Redis runs each script alone but each is small (one job), so other clients
    get in between them; ``on_batch`` is called after each batch.
    """
    out = BulkResult()
    for start in range(0, len(ids), batch):
        chunk = ids[start:start + batch]
        outcomes = await asyncio.gather(*(_one(queue, i, op) for i in chunk))
        out.calls += len(chunk)
        out.largest_call = max(out.largest_call, 1)
        for job_id, why in zip(chunk, outcomes, strict=True):
            if why is None:
                out.done += 1
                out.ids.append(job_id)
            else:
                out.skipped[why] += 1
        if on_batch is not None:
            on_batch(out)
    return out


async def retry_failed(queue: Queue[Any], *, batch: int = BATCH) -> BulkResult:
    """Retry every failed job, ``batch`` ids read (and retried) at a time.

    Unlike :meth:`Queue.retry_jobs`, the ids of the retried jobs are known (the
    dashboard writes a line into each one's log). A job that cannot be retried
    (locked meanwhile) stays in the failed set and is stepped over.
    """
    out = BulkResult()
    offset = 0
    while True:
        ids = await queue.get_job_ids("failed", offset, offset + batch - 1)
        if not ids:
            return out
        done = await act_on(queue, ids, "retry", batch=batch)
        out.done += done.done
        out.calls += done.calls
        out.largest_call = max(out.largest_call, done.largest_call)
        out.skipped.update(done.skipped)
        out.ids.extend(done.ids)
        offset += len(ids) - done.done
