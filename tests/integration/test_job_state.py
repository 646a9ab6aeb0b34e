"""The state of a job that does not exist is an error, not ``"stuck"`` (issue 28, item 12).

Bull 4's ``getState`` answers ``"stuck"`` both for a job in no list and for one whose hash
is gone (tests/interop/test_api_interop.py shows it). pyqueue raises ``JobNotFound`` for a
missing job and keeps ``"stuck"`` for a job whose hash exists in no state.
"""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from pyqueue import JobNotFound, Queue


async def test_missing_and_stuck_are_told_apart(
    redis_url: str, queue_name: str, raw_redis: aioredis.Redis
) -> None:
    async with Queue(queue_name, redis_url) as queue:
        with pytest.raises(JobNotFound, match=r"job 'nope' does not exist"):
            await queue.get_job_state("nope")
        job = await queue.add({})
        assert await job.get_state() == "waiting"
        await raw_redis.lrem(f"bull:{queue_name}:wait", 0, job.id)  # in no list, hash kept
        assert await job.get_state() == "stuck"
        await job.remove()
        with pytest.raises(JobNotFound):
            await job.get_state()
