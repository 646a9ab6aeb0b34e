"""A rate-limited worker with ``bounce_back`` waits out the window instead of spinning.

Bounced jobs go back on wait, so a worker that fetched again at once would be
handed the same job straight back, two round trips per turn, for the whole
window. Commands are counted on the server (INFO commandstats).
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import replace

from pyqueue import RateLimiter
from pyqueue.job import now_ms


async def test_bounced_worker_waits_for_the_window_and_keeps_the_limit(
    make_queue, make_worker, fast, raw_redis, queue_name, calls
):
    queue = make_queue()
    jobs = [await queue.add(i) for i in range(3)]
    starts: list[int] = []
    limiter = RateLimiter(max=1, duration=1500, bounce_back=True)
    await make_worker(
        lambda job: starts.append(now_ms()),
        options=replace(fast, limiter=limiter, guard_interval=5000),
    )
    assert await jobs[0].finished(timeout=10) is None
    # Inside the first window: job 1 is bounced at least once, then must wait.
    before = {c: await calls(raw_redis, c) for c in ("evalsha", "blmove")}
    await asyncio.sleep(1.0)
    used = {c: await calls(raw_redis, c) - before[c] for c in before}
    for job in jobs[1:]:
        await job.finished(timeout=10)
    # A handful of fetches and background duties, not one turn per round trip.
    assert used["evalsha"] + used["blmove"] < 30, used
    # Bull's semantics hold: one start per window, nothing parked in delayed or lost.
    assert len(starts) == 3
    for first, second in itertools.pairwise(starts):
        assert second - first >= 1400, starts
    assert await raw_redis.zcard(f"bull:{queue_name}:delayed") == 0
    assert await raw_redis.zcard(f"bull:{queue_name}:completed") == 3
