"""A worker completes jobs after the server's script cache was flushed (failover, restart).

The completing call is sent from a pre-encoded EVALSHA template; on NOSCRIPT it
must fall back to EVAL with the same arguments, not fail the job.
"""

from __future__ import annotations

from typing import Any

from pyqueue import Queue, Worker


async def test_completion_survives_a_script_flush(redis_url, queue_name, raw_redis, fast):
    queue: Queue[Any] = Queue(queue_name, redis_url)

    async def handler(job):
        return {"twice": job.data["n"] * 2}

    worker = Worker(queue, handler, options=fast)
    try:
        await worker.start()
        first = await queue.add({"n": 1})
        assert await first.finished(timeout=10) == {"twice": 2}
        await raw_redis.script_flush()
        second = await queue.add({"n": 2})
        assert await second.finished(timeout=10) == {"twice": 4}
        # Completed for real: in the completed set, with Bull's fields written.
        assert await raw_redis.zscore(f"bull:{queue_name}:completed", second.id) is not None
        stored = await raw_redis.hget(f"bull:{queue_name}:{second.id}", "returnvalue")
        assert stored == b'{"twice":4}'
    finally:
        await worker.close(timeout=1)
        await queue.close()
