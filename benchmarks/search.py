"""Time pyqueue.tools.search on large queues: 100k jobs by default, 1M with --n 1000000.

    .venv/bin/python benchmarks/search.py                 # 100,000 jobs (about a minute)
    .venv/bin/python benchmarks/search.py --n 1000000     # 1,000,000 jobs (not run in CI)

Starts a private redis-server, fills one queue through the public API (90% completed,
10% failed, like a long-running production queue), then times full searches (every page
to the end, so the whole queue is examined) and a first page with a common match.
Prints one line per query; nothing is asserted: these are measurements, not tests.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any


async def _fill(queue: Any, n: int) -> None:
    from pyqueue import BulkJob, JobOptions

    # Jobs go straight into completed/failed with the shape a worker leaves, written by
    # the public add_bulk and then moved by one Lua-free pipeline per chunk: processing
    # a million jobs through a worker would measure the worker, not the search.
    chunk = 10_000
    now = int(time.time() * 1000)
    for start in range(0, n, chunk):
        batch = [
            BulkJob(
                {"order": {"id": i, "sku": f"SKU-{i % 997}"}, "email": f"user{i}@example.com"},
                name="email" if i % 3 else "charge",
                options=JobOptions(job_id=f"j{i + 1}"),
            )
            for i in range(start, min(start + chunk, n))
        ]
        await queue.add_bulk(batch)
        async with queue.client.pipeline(transaction=False) as pipe:
            pipe.delete(queue.keys.wait)
            for i in range(start, min(start + chunk, n)):
                job_id = f"j{i + 1}"
                if i % 10 == 9:
                    pipe.hset(queue.keys.job(job_id), mapping={
                        "failedReason": f"card declined (code {i % 50})",
                        "finishedOn": now, "attemptsMade": 1,
                    })
                    pipe.zadd(queue.keys.failed, {job_id: now + i})
                else:
                    pipe.hset(queue.keys.job(job_id), mapping={
                        "returnvalue": "null", "finishedOn": now,
                    })
                    pipe.zadd(queue.keys.completed, {job_id: now + i})
            await pipe.execute()


async def _time_full(queue: Any, **filters: Any) -> tuple[float, int, int, int]:
    from pyqueue.tools.search import search_jobs

    started = time.perf_counter()
    cursor, found, pages, examined = "0", 0, 0, 0
    while True:
        page = await search_jobs(queue, cursor=cursor, count=50, **filters)
        found += len(page.jobs)
        examined += page.examined
        pages += 1
        cursor = page.cursor
        if cursor == "0":
            return time.perf_counter() - started, found, pages, examined


async def _main(n: int) -> None:
    from pyqueue import Queue
    from pyqueue.embedded import RedisServer
    from pyqueue.tools.search import search_jobs

    with RedisServer() as server:
        async with Queue("bench-search", server.url) as queue:
            started = time.perf_counter()
            await _fill(queue, n)
            print(f"filled {n:,} jobs in {time.perf_counter() - started:.1f} s", flush=True)
            queries: list[tuple[str, dict[str, Any]]] = [
                ("id (direct lookup)", {"id": str(n // 2)}),
                ("name == charge", {"name": "charge"}),
                ("data path order.id == n/2", {"data_path": "order.id", "data_value": n // 2}),
                ("substring 'user4242@'", {"text": "user4242@"}),
                ("failed reason 'code 9)'", {"failed_reason": "code 9)"}),
                ("no match, state=completed", {"state": "completed", "name": "nope"}),
            ]
            for label, filters in queries:
                seconds, found, pages, examined = await _time_full(queue, **filters)
                print(f"{label:32} {seconds * 1000:10.1f} ms  {found:8,} found  {pages:6,} pages"
                      f"  {examined:10,} examined  {examined / seconds / 1000:8.1f} k/s",
                      flush=True)
            started = time.perf_counter()
            page = await search_jobs(queue, name="email", count=50)
            print(f"{'first page, name == email':32} "
                  f"{(time.perf_counter() - started) * 1000:10.1f} ms  {len(page.jobs):8,} found")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="jobs in the queue")
    args = parser.parse_args()
    asyncio.run(_main(args.n))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
    raise SystemExit(main())
