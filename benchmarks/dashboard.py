"""Time the dashboard's pages on one large queue: 1,000,000 jobs by default.

    .venv/bin/python benchmarks/dashboard.py               # 1,000,000 jobs (a few minutes)
    .venv/bin/python benchmarks/dashboard.py --n 100000    # quicker

Starts a private redis-server and fills one queue through the public ``add_bulk``
(60% completed, 10% failed, 25% waiting, 5% delayed). Finished jobs are moved into
their sets with the shape a worker leaves, finishing times spread over the last hour
so the throughput chart has points, by one pipeline per chunk: running a million
jobs through a worker would time the worker, not the pages. Then every page is
requested in-process (httpx's ASGI transport, so no socket time) and the median of
``--repeat`` loads is printed. Nothing is asserted: these are measurements, not tests.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

QUEUE = "bench-dashboard"
CHUNK = 10_000


async def _fill(queue: Any, n: int) -> None:
    from pyqueue import BulkJob, JobOptions

    rng = random.Random(7)
    now = int(time.time() * 1000)
    for start in range(0, n, CHUNK):
        ids = range(start, min(start + CHUNK, n))
        batch = [
            BulkJob(
                {"order": {"id": i, "sku": f"SKU-{i % 997}"}, "email": f"user{i}@example.com"},
                name="email" if i % 3 else "charge",
                options=JobOptions(job_id=f"j{i + 1}", delay=3_600_000 if i % 20 == 19 else None),
            )
            for i in ids
        ]
        await queue.add_bulk(batch)
        finished = [i for i in ids if i % 20 < 14]  # 70%: 60 completed, 10 failed
        still_waiting = [f"j{i + 1}" for i in ids if 14 <= i % 20 < 19]
        async with queue.client.pipeline(transaction=True) as pipe:
            # The chunk's waiting ids are the list's head (LPUSHed in order): take them
            # all off and push back the ones that stay, in the same order.
            pipe.lpop(queue.keys.wait, len(finished) + len(still_waiting))
            if still_waiting:
                pipe.lpush(queue.keys.wait, *still_waiting)
            for i in finished:
                job_id = f"j{i + 1}"
                at = now - rng.randrange(3_600_000)
                if i % 20 < 2:
                    pipe.hset(queue.keys.job(job_id), mapping={
                        "failedReason": f"card declined (code {i % 50})",
                        "stacktrace": '["Error: card declined\\n    at charge"]',
                        "processedOn": at - 5, "finishedOn": at, "attemptsMade": 1,
                    })
                    pipe.zadd(queue.keys.failed, {job_id: at})
                else:
                    pipe.hset(queue.keys.job(job_id), mapping={
                        "returnvalue": '{"sent":true}', "processedOn": at - 5, "finishedOn": at,
                    })
                    pipe.zadd(queue.keys.completed, {job_id: at})
            await pipe.execute()


async def _time(client: Any, path: str, repeat: int) -> tuple[float, float, int]:
    times = []
    status = 0
    for _ in range(repeat):
        started = time.perf_counter()
        response = await client.get(path)
        times.append(time.perf_counter() - started)
        status = response.status_code
    return statistics.median(times), max(times), status


async def _main(n: int, repeat: int) -> None:
    import httpx

    from pyqueue import Queue, Repeat
    from pyqueue.embedded import RedisServer
    from pyqueue.tools.dashboard import create_app

    with RedisServer() as server:
        async with Queue(QUEUE, server.url) as queue:
            started = time.perf_counter()
            await _fill(queue, n)
            await queue.add({"kind": "digest"}, name="digest", repeat=Repeat(cron="0 7 * * *"))
            counts = await queue.get_job_counts()
            print(f"filled {n:,} jobs in {time.perf_counter() - started:.1f} s: {counts}")
            info = await queue.client.info("memory")
            print(f"redis used_memory {int(info['used_memory']) / 2**20:.0f} MiB, "
                  f"{await queue.client.dbsize():,} keys")

        waiting_pages = -(-counts["waiting"] // 20)
        completed_pages = -(-counts["completed"] // 20)
        pages = [
            ("overview, first (scan under way)", "/"),
            ("overview", "/"),
            ("live feed /api/overview", "/api/overview"),
            ("live feed, this queue", f"/api/overview?queue={QUEUE}"),
            ("waiting, page 1", f"/queue?name={QUEUE}&state=waiting"),
            ("waiting, middle page",
             f"/queue?name={QUEUE}&state=waiting&page={waiting_pages // 2}"),
            ("waiting, last page", f"/queue?name={QUEUE}&state=waiting&page={waiting_pages}"),
            ("completed, page 1", f"/queue?name={QUEUE}&state=completed"),
            ("completed, middle page",
             f"/queue?name={QUEUE}&state=completed&page={completed_pages // 2}"),
            ("failed, page 1", f"/queue?name={QUEUE}&state=failed"),
            ("delayed, page 1", f"/queue?name={QUEUE}&state=delayed"),
            ("job detail", f"/job?queue={QUEUE}&id={n // 2}"),
            ("repeatable", f"/repeatable?name={QUEUE}"),
            ("search by id", f"/search?queue={QUEUE}&id={n // 3}"),
            ("search data order.id (1st page)",
             f"/search?queue={QUEUE}&data_path=order.id&data_value={n // 3}"),
            ("search failed reason (1st page)", f"/search?queue={QUEUE}&failed_reason=code+9)"),
        ]
        app = create_app(server.url, "bull")
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 9))
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            print(f"{'page':36} {'median ms':>10} {'max ms':>8}  status  (of {repeat} loads)")
            for index, (label, path) in enumerate(pages):
                times = 1 if index == 0 else repeat
                median, worst, status = await _time(client, path, times)
                print(f"{label:36} {median * 1000:10.1f} {worst * 1000:8.1f}  {status}")
                if index == 0:
                    # The background SCAN the first page started: how long until the
                    # overview can list the queues.
                    started = time.perf_counter()
                    await app.dashboard.repo.queue_names(wait=None)
                    print(f"{'  (scan for queues, finishing)':36} "
                          f"{(time.perf_counter() - started + median) * 1000:10.1f}")
        await app.aclose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="jobs in the queue")
    parser.add_argument("--repeat", type=int, default=5, help="loads per page")
    args = parser.parse_args()
    asyncio.run(_main(args.n, args.repeat))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
    raise SystemExit(main())
