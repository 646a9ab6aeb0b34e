"""Issue 18 item 7: one spelling of states everywhere, pause/resume alike, the sync twins."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pyqueue import InvalidOptionsError, SyncQueue
from pyqueue.options import Debounce


async def test_clean_and_get_jobs_take_both_spellings_of_wait(make_queue) -> None:
    queue = make_queue()
    jobs = [await queue.add({"n": n}) for n in range(3)]
    ids = {j.id for j in jobs}
    assert set(await queue.get_job_ids("wait")) == ids
    assert set(await queue.get_job_ids("waiting")) == ids
    assert {j.id for j in await queue.get_jobs(["wait"])} == ids
    assert await queue.get_job_counts("wait", "waiting") == {"wait": 3, "waiting": 3}
    cleaned: list[tuple[list[str], str]] = []
    queue.on("cleaned", lambda found, state: cleaned.append((found, state)))
    await asyncio.sleep(0.01)
    assert set(await queue.clean(0, "waiting", limit=1)) <= ids
    assert len(await queue.clean(0, "wait")) == 2
    assert await queue.get_job_counts("waiting") == {"waiting": 0}
    assert [state for _, state in cleaned] == ["waiting", "wait"]


async def test_bad_state_names_the_choices(make_queue) -> None:
    queue = make_queue()
    with pytest.raises(InvalidOptionsError, match="waiting"):
        await queue.clean(0, "queued")  # type: ignore[arg-type]
    with pytest.raises(InvalidOptionsError, match="'wait'"):
        await queue.get_job_ids("queued")  # type: ignore[arg-type]


async def test_worker_resume_is_awaitable_and_still_works_bare(make_queue, make_worker,
                                                               eventually) -> None:
    queue = make_queue()
    done: list[str] = []
    worker = await make_worker(lambda job: done.append(job.id), queue=queue)
    await worker.pause()
    job = await queue.add({})
    await asyncio.sleep(0.3)
    assert done == []
    await worker.resume()
    await eventually(lambda: done == [job.id])
    await worker.pause()
    second = await queue.add({})
    worker.resume()  # the old, un-awaited call still resumes
    await eventually(lambda: done == [job.id, second.id])


def test_sync_queue_has_the_methods_it_lacked(redis_url: str, queue_name: str) -> None:
    with SyncQueue(queue_name, redis_url) as queue:
        assert queue.get_repeatable_count() == 0
        queue.add({}, debounce=Debounce(id="d1", ttl=60_000))
        assert queue.remove_debounce_key("d1") is True
        assert queue.remove_debounce_key("d1") is False
        sync_jobs: Any = queue.get_jobs("wait")
        assert len(sync_jobs) == 1
