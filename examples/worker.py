"""Example worker: processes `emails` jobs until Ctrl-C (or until drained with --demo).

    python examples/worker.py            # REDIS_URL or a private redis-server
    python examples/worker.py --demo     # also queue a few jobs, exit once all are done
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os

from pydantic import BaseModel

from pyqueue import Backoff, Job, Queue, Worker, shutdown_signals
from pyqueue.embedded import RedisServer


class Email(BaseModel):
    to: str
    subject: str


async def send_email(job: Job[Email]) -> dict[str, str]:
    await job.progress(50)
    await job.log(f"sending {job.data.subject!r} to {job.data.to}")
    if job.data.to.startswith("flaky") and job.attempts_made == 0:
        raise RuntimeError("SMTP server busy")
    return {"sent_to": job.data.to}


async def main(redis_url: str, demo: bool) -> None:
    async with Queue("emails", redis_url, model=Email) as queue:
        worker = Worker(queue, send_email, concurrency=4)
        # What `pyqueue worker` does: a first Ctrl-C closes gracefully, a second exits.
        async with shutdown_signals() as done:
            await run(queue, worker, done, redis_url, demo)


def on_completed(job: Job[Email], result: dict[str, str]) -> None:
    print(f"completed {job.id}: {result}")


def on_failed(job: Job[Email], exc: BaseException, final: bool) -> None:
    # `failed` fires on every attempt; `final` says whether a retry follows.
    outcome = "failed for good" if final else f"failed attempt {job.attempts_made}, will retry"
    print(f"{outcome}: job {job.id} to {job.data.to}: {exc}")


async def run(queue: Queue[Email], worker: Worker[Email], done: asyncio.Event, redis_url: str,
              demo: bool) -> None:
    worker.on("completed", on_completed)
    worker.on("failed", on_failed)
    await worker.start()
    if demo:
        for i, to in enumerate(["ada@example.com", "flaky@example.com", "bob@example.com"]):
            await queue.add(
                Email(to=to, subject=f"hello #{i}"),
                attempts=3, backoff=Backoff(type="exponential", delay=100),
            )
        while await queue.count() or await queue.get_active_count():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), 0.1)
            if done.is_set():
                break
        print("counts:", await queue.get_job_counts())
    else:
        print(f"worker running on {redis_url}; Ctrl-C to stop")
        await done.wait()
    await worker.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--demo", action="store_true", help="queue sample jobs, exit when done")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    url = os.environ.get("REDIS_URL")
    if url:
        asyncio.run(main(url, args.demo))
    else:
        with RedisServer() as server:
            asyncio.run(main(server.url, args.demo))
