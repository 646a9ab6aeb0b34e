"""Many schedulers, restarted with kill -9, enqueue each repeat tick exactly once.

Three processes each declare the same repeatable job at start-up (as every
BookWish worker does) and process it, while one of them is killed and restarted
every ~0.4 s. Every completion is logged; with ``remove_on_complete`` a tick
that was enqueued twice would complete twice under the same id.

Size: 1,000 ticks of 20 ms by default; PYQUEUE_CHAOS_SCALE=10 runs 10,000.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import redis.asyncio as aioredis

PROC = Path(__file__).with_name("scheduler_proc.py")
SCALE = int(os.environ.get("PYQUEUE_CHAOS_SCALE", "1"))
EVERY = 20
TICKS = 1000 * SCALE


def _spawn(url: str, queue: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(PROC), url, queue, str(EVERY)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


@pytest.mark.timeout(120 * SCALE)
async def test_one_job_per_tick_with_restarting_schedulers(
    redis_url: str, queue_name: str, raw_redis: aioredis.Redis
) -> None:
    rng = random.Random(7)
    procs = [_spawn(redis_url, queue_name) for _ in range(3)]
    restarts = 0
    log_key = f"{queue_name}:completions"
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 100 * SCALE
        while await raw_redis.llen(log_key) < TICKS:
            assert loop.time() < deadline, "schedulers stopped making progress"
            await asyncio.sleep(0.4)
            victim = rng.randrange(len(procs))
            procs[victim].kill()
            procs[victim].wait()
            procs[victim] = _spawn(redis_url, queue_name)
            restarts += 1
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    ids = [raw.decode() for raw in await raw_redis.lrange(log_key, 0, -1)]
    per_id = Counter(ids)
    duplicates = {job_id: n for job_id, n in per_id.items() if n > 1}
    ticks = sorted(int(job_id.rsplit(":", 1)[1]) for job_id in per_id)
    assert all(t % EVERY == 0 for t in ticks)
    skipped = sum((b - a) // EVERY - 1 for a, b in itertools.pairwise(ticks))
    print(
        f"\nschedulers=3 restarts={restarts} ticks={len(ticks)} "
        f"duplicates={len(duplicates)} skipped_ticks={skipped}"
    )
    assert duplicates == {}
    # One declaration per schedule, however many processes declared it.
    assert await raw_redis.zcard(f"bull:{queue_name}:repeat") == 1
