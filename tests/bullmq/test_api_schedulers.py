"""Job schedulers through the public Queue in BullMQ mode, on real Redis: upsert,
read, remove, a pyqueue Worker running iterations one per tick up to the limit,
and Bull mode's refusal that points to ``repeat=``."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pyqueue import Job, JobOptions, JobScheduler, Queue, SyncQueue, Worker
from pyqueue.errors import InvalidOptionsError


@pytest.fixture
async def mq(redis_url: str, queue_name: str):  # type: ignore[no-untyped-def]
    queue: Queue = Queue(queue_name, redis_url, protocol="bullmq")
    yield queue
    await queue.close()


async def _pending(queue: Queue) -> list[str]:
    return await queue.get_job_ids(["delayed", "waiting", "prioritized"])


async def test_upsert_makes_one_iteration_however_often_it_is_called(mq: Queue) -> None:
    first = await mq.upsert_job_scheduler(
        "report", every=timedelta(minutes=1), name="build", data={"k": 1},
        options=JobOptions(attempts=3, priority=2),
    )
    assert first is not None
    assert first.id.startswith("repeat:report:")
    assert first.name == "build"
    assert first.data == {"k": 1}
    assert first.raw_opts["attempts"] == 3
    for _ in range(3):
        again = await mq.upsert_job_scheduler(
            "report", every=timedelta(minutes=1), name="build", data={"k": 1},
            options=JobOptions(attempts=3, priority=2),
        )
        assert again is not None
        assert again.id == first.id
    assert await _pending(mq) == [first.id]
    found = await mq.get_job_scheduler("report")
    assert isinstance(found, JobScheduler)
    assert (found.id, found.name, found.every, found.iteration_count) == (
        "report", "build", 60_000, 1)
    assert found.next == int(first.id.rsplit(":", 1)[1])
    assert found.data == {"k": 1}
    assert found.options["attempts"] == 3
    assert found.options["priority"] == 2


async def test_cron_scheduler_and_listing(mq: Queue) -> None:
    end = datetime.now(UTC) + timedelta(days=30)
    cron = await mq.upsert_job_scheduler("nightly", pattern="0 3 * * *", tz="Europe/Berlin",
                                         limit=10, end_date=end)
    every = await mq.upsert_job_scheduler("often", every=5_000)
    assert cron is not None
    assert every is not None
    listed = await mq.get_job_schedulers(asc=True)
    assert [s.id for s in listed] == ["often", "nightly"]
    nightly = listed[1]
    assert (nightly.pattern, nightly.tz, nightly.limit) == ("0 3 * * *", "Europe/Berlin", 10)
    assert nightly.end_date == int(end.timestamp() * 1000)
    assert nightly.name == "nightly"  # the id when no name is given
    when = datetime.fromtimestamp(nightly.next / 1000, UTC)
    assert (when.minute, when.second) == (0, 0)
    assert [s.id for s in await mq.get_job_schedulers()] == ["nightly", "often"]


async def test_remove_drops_the_scheduler_and_its_delayed_iteration(mq: Queue) -> None:
    later = await mq.upsert_job_scheduler("gone", pattern="0 3 * * *")
    now = await mq.upsert_job_scheduler("stays", every=60_000)  # its first runs at once
    assert later is not None
    assert now is not None
    assert await mq.get_job_state(later.id) == "delayed"
    assert await mq.get_job_state(now.id) == "waiting"
    for sid in ("gone", "stays"):
        assert await mq.remove_job_scheduler(sid) is True
        assert await mq.remove_job_scheduler(sid) is False
        assert await mq.get_job_scheduler(sid) is None
    # As BullMQ: the delayed iteration goes, a waiting one is left to run.
    assert await _pending(mq) == [now.id]
    assert await mq.get_job_schedulers() == []


async def test_worker_runs_one_iteration_per_tick_up_to_the_limit(mq: Queue) -> None:
    runs: list[Job[Any]] = []
    all_ran = asyncio.Event()

    async def handler(job: Job[Any]) -> str:
        runs.append(job)
        if len(runs) == 4:
            all_ran.set()
        return job.id

    await mq.upsert_job_scheduler("tick", every=300, limit=4, name="t", data={"n": 1})
    async with Worker(mq, handler):
        await asyncio.wait_for(all_ran.wait(), 30)
    ids = [job.id for job in runs]
    assert len(ids) == 4
    assert len(set(ids)) == 4
    assert all(i.startswith("repeat:tick:") for i in ids)
    assert [job.data for job in runs] == [{"n": 1}] * 4
    ticks = sorted(int(i.rsplit(":", 1)[1]) for i in ids)
    assert all(b - a >= 300 for a, b in itertools.pairwise(ticks)), ticks
    # The fourth was the limit: nothing is left to run, the count stopped at 4.
    assert await _pending(mq) == []
    shown = await mq.get_job_scheduler("tick")
    assert shown is not None
    assert shown.iteration_count == 4
    counts = await mq.get_job_counts("completed", "failed")
    assert counts == {"completed": 4, "failed": 0}


async def test_bad_options_are_refused_before_anything_is_written(mq: Queue) -> None:
    with pytest.raises(InvalidOptionsError, match="every and pattern"):
        await mq.upsert_job_scheduler("x", every=1_000, pattern="* * * * *")
    with pytest.raises(InvalidOptionsError, match="every and pattern"):
        await mq.upsert_job_scheduler("x")
    with pytest.raises(InvalidOptionsError, match="job_id"):
        await mq.upsert_job_scheduler("x", every=1_000, options=JobOptions(job_id="mine"))
    with pytest.raises(InvalidOptionsError, match="delay"):
        await mq.upsert_job_scheduler("x", every=1_000, options=JobOptions(delay=5))
    with pytest.raises(InvalidOptionsError, match="end_date"):
        await mq.upsert_job_scheduler("x", every=1_000, end_date=1_000)
    with pytest.raises(InvalidOptionsError, match="scheduler_id"):
        await mq.upsert_job_scheduler("", every=1_000)
    assert await mq.get_job_schedulers() == []
    assert await _pending(mq) == []


async def test_bull_mode_points_to_repeat(redis_url: str, queue_name: str) -> None:
    async with Queue(queue_name, redis_url, protocol="bull") as bull:
        with pytest.raises(InvalidOptionsError, match=r"upsert_job_scheduler.*repeat=Repeat"):
            await bull.upsert_job_scheduler("x", every=1_000)
        for call in (bull.remove_job_scheduler("x"), bull.get_job_scheduler("x")):
            with pytest.raises(InvalidOptionsError, match="BullMQ mode only"):
                await call
        with pytest.raises(InvalidOptionsError, match="get_job_schedulers"):
            await bull.get_job_schedulers()


def test_sync_queue_has_the_same_schedulers(redis_url: str, queue_name: str) -> None:
    queue: SyncQueue[Any] = SyncQueue(queue_name, redis_url, protocol="bullmq")
    try:
        first = queue.upsert_job_scheduler("s", pattern="*/5 * * * *", name="five",
                                           data={"x": 1})
        assert first is not None
        assert first.id.startswith("repeat:s:")
        assert first.data == {"x": 1}
        shown = queue.get_job_scheduler("s")
        assert shown is not None
        assert (shown.pattern, shown.name) == ("*/5 * * * *", "five")
        assert [s.id for s in queue.get_job_schedulers()] == ["s"]
        assert queue.remove_job_scheduler("s") is True
        assert queue.get_job_schedulers() == []
    finally:
        queue.close()
