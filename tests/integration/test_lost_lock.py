"""A finishing call refused by Redis (lock lost, job gone, lock taken over) ends there.

Each refusal must cost exactly one finishing script call and at most one
``error`` event, free the slot, and let the worker go on with the next job. The
calls are counted at the Scripts boundary (which finishing script ran, and how
often) and on the server (INFO commandstats), so a retry loop cannot hide.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import replace
from typing import Any

import pytest

from pyqueue import JobNotFound, LockMismatch

_FINISHING = ("move_to_completed", "move_to_failed", "retry_job", "move_to_delayed")

# What the handler does to its own job before it returns, as a lost lock, a
# removed job or a takeover by another worker would.
_SABOTAGE = {
    "lock_deleted": (LockMismatch, -2),
    "job_deleted": (JobNotFound, -1),
    "lock_taken": (LockMismatch, -6),
}

# How the attempt ends, the job options it needs, and the finishing script it calls.
_OUTCOMES = {
    "complete": ({}, "move_to_completed"),
    "fail_final": ({}, "move_to_failed"),
    "retry": ({"attempts": 2}, "retry_job"),
    "delay": ({"attempts": 2, "backoff": 60_000}, "move_to_delayed"),
}


def _count_finishing_calls(scripts: Any) -> Counter[str]:
    """Wrap the finishing methods of one Scripts object; the counter fills as they run."""
    counts: Counter[str] = Counter()
    for name in _FINISHING:
        original = getattr(scripts, name)

        def counted(*args: Any, _name: str = name, _original: Any = original, **kw: Any) -> Any:
            counts[_name] += 1
            return _original(*args, **kw)

        setattr(scripts, name, counted)
    return counts


@pytest.mark.parametrize("outcome", list(_OUTCOMES))
@pytest.mark.parametrize("sabotage", list(_SABOTAGE))
async def test_refused_finish_is_one_call_one_error_and_the_next_job_runs(
    sabotage, outcome, make_queue, make_worker, fast, raw_redis, queue_name, calls
):
    queue = make_queue()
    opts, script = _OUTCOMES[outcome]
    victim = await queue.add({}, name="victim", **opts)
    following = await queue.add({}, name="next")
    job_key = f"bull:{queue_name}:{victim.id}"

    async def victim_handler(job):
        if sabotage == "lock_deleted":
            await raw_redis.delete(f"{job_key}:lock")
        elif sabotage == "job_deleted":
            await raw_redis.delete(job_key)
        else:
            await raw_redis.set(f"{job_key}:lock", "another-worker", px=60_000)
        if outcome != "complete":
            raise ValueError("attempt failed")
        return "late result"

    errors: list[BaseException] = []
    # No stalled checker: it would rightly re-run the lockless victim and blur the count.
    worker = await make_worker(
        {"victim": victim_handler, "next": lambda job: "ok"},
        options=replace(fast, stalled_interval=0),
        start=False,
    )
    worker.on("error", errors.append)
    counts = _count_finishing_calls(worker.queue.scripts)
    await worker.start()

    assert await following.finished(timeout=10) == "ok"
    before = await calls(raw_redis, "evalsha")
    await asyncio.sleep(1.0)
    after = await calls(raw_redis, "evalsha")

    # The victim's one refused call, plus the next job's one moveToFinished.
    expected = Counter({script: 1})
    expected["move_to_completed"] += 1
    assert counts == expected
    kind, code = _SABOTAGE[sabotage]
    assert len(errors) <= 1, errors[:5]
    assert len(errors) == 1
    assert isinstance(errors[0], kind)
    assert errors[0].code == code
    # An idle worker runs a few background scripts a second, not thousands.
    assert after - before < 50, after - before
