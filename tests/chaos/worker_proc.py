"""A chaos worker process: processes one queue and logs every execution it starts.

Run as ``python worker_proc.py <json-config>``. Config keys: ``url`` (the queue's
Redis, maybe through a proxy), ``log_url`` (where executions are logged, direct),
``queue``, ``concurrency``, ``lock_duration``, ``stalled_interval``,
``max_stalled_count``, ``mode`` (``sleep`` | ``block`` | ``cpu``), ``ms`` (handler
duration), ``jitter`` (sleep 10-800 ms instead), ``shutdown_grace``.

Every execution start is appended to the Redis list ``<queue>:runs`` (not a Bull
key) as ``<job id>``, before the handler does its work, so a job killed mid-run
counts as an execution. SIGTERM calls ``worker.close()`` (graceful shutdown).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import signal
import sys
import time
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from pyqueue import Job, Worker, WorkerOptions


async def _log_run(log: aioredis.Redis, key: str, job_id: str) -> None:
    # The log client talks to Redis directly; retry while Redis restarts.
    for attempt in range(200):
        try:
            await log.rpush(key, job_id)
            return
        except (RedisError, OSError):
            await asyncio.sleep(min(0.05 * (attempt + 1), 0.5))
    raise RuntimeError("could not log an execution")


async def main(cfg: dict[str, Any]) -> None:
    logging.basicConfig(level=logging.WARNING)
    log = aioredis.Redis.from_url(cfg.get("log_url", cfg["url"]))
    runs_key = f"{cfg['queue']}:runs"
    mode = cfg.get("mode", "sleep")
    seconds = cfg.get("ms", 5) / 1000
    jitter = bool(cfg.get("jitter"))

    async def handler(job: Job[Any]) -> Any:
        await _log_run(log, runs_key, job.id)
        if mode == "block":
            time.sleep(seconds)  # noqa: ASYNC251 - blocks the event loop on purpose
        elif mode == "cpu":
            end = time.perf_counter() + seconds
            n = 0
            while time.perf_counter() < end:
                n += 1
        else:
            await asyncio.sleep(random.uniform(0.01, 0.8) if jitter else seconds)
        return {"pid": _PID}

    worker = Worker(
        cfg["queue"], handler, redis_url=cfg["url"],
        options=WorkerOptions(
            concurrency=cfg.get("concurrency", 5),
            lock_duration=cfg.get("lock_duration", 1000),
            stalled_interval=cfg.get("stalled_interval", 500),
            max_stalled_count=cfg.get("max_stalled_count", 10),
            guard_interval=200,
            retry_process_delay=200,
            drain_delay=0.5,
            shutdown_grace=cfg.get("shutdown_grace", 5.0),
        ),
    )
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, lambda: asyncio.ensure_future(worker.close()))
    while True:
        try:
            await worker.start()
            break
        except RedisConnectionError:
            # Redis unreachable at start (a cut proxy, a restart): a worker fails fast
            # then; here, as a process supervisor would, try again.
            await asyncio.sleep(0.2)
    print("ready", flush=True)
    await worker.run()
    await log.aclose()


_PID = 0

if __name__ == "__main__":
    import os

    _PID = os.getpid()
    asyncio.run(main(json.loads(sys.argv[1])))
