"""One "host" of the many-hosts test: a worker process for two shared queues.

Run as ``python host_worker.py <redis_url> <prefix> <host name> <concurrency>
<limit max> <limit duration ms>``. It works the ``limited`` queue (with a
global :class:`RateLimiter`) and the ``busy`` queue (``concurrency`` at once),
returns its host name from every job (so the test sees who ran what), and
stops on SIGTERM. It prints ``ready`` once both workers fetch.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Any

from pyqueue import Worker, WorkerOptions
from pyqueue.options import RateLimiter


async def main(url: str, prefix: str, host: str, concurrency: int, limit: int, per: int) -> None:
    fast = {"drain_delay": 0.2, "guard_interval": 50, "stalled_interval": 0, "shutdown_grace": 5.0}

    async def limited(job: Any) -> str:
        return host

    async def busy(job: Any) -> str:
        # Long enough that the processes' jobs overlap, so the bound is exercised.
        await asyncio.sleep(0.05)
        return host

    workers = [
        Worker("limited", limited, redis_url=url, prefix=prefix, options=WorkerOptions(
            concurrency=concurrency, limiter=RateLimiter(max=limit, duration=per), **fast,
        )),
        Worker("busy", busy, redis_url=url, prefix=prefix,
               options=WorkerOptions(concurrency=concurrency, **fast)),
    ]
    for worker in workers:
        await worker.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await stop.wait()
    for worker in workers:
        await worker.close()


if __name__ == "__main__":
    url, prefix, host, concurrency, limit, per = sys.argv[1:7]
    asyncio.run(main(url, prefix, host, int(concurrency), int(limit), int(per)))
