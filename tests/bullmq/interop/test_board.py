"""bull-board's BullMQAdapter (@bull-board/api 9.10.1, over Node BullMQ) showing a queue
that only pyqueue's public API made and ran: every tab with the right jobs, fields and
counts; and bull-board's retry, resume and clean acting on it as a pyqueue Worker sees."""

from __future__ import annotations

import asyncio
import json
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from tests.bullmq.nodebullmq import NodeBullMQ

from pyqueue import Job, Queue, Worker

# bull-board listens on 127.0.0.1: no proxy from the environment may take the calls.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Board:
    """bull-board's HTTP API (driver.js ``board``) over one queue."""

    port: int
    queue: str

    def _call(self, method: str, path: str, query: dict[str, Any] | None) -> Any:
        url = f"http://127.0.0.1:{self.port}{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        request = urllib.request.Request(url, method=method)
        with _OPENER.open(request, timeout=15) as response:
            body = response.read()
        return json.loads(body) if body else None

    async def get(self, path: str, **query: Any) -> Any:
        return await asyncio.to_thread(self._call, "GET", path, query)

    async def put(self, path: str) -> Any:
        return await asyncio.to_thread(self._call, "PUT", path, None)

    async def tab(self, status: str) -> dict[str, Any]:
        """The queue as the UI loads it with ``status``'s tab open."""
        found = await self.get("/api/queues", activeQueue=self.queue, status=status, page=1,
                               jobsPerPage=50)
        (shown,) = [q for q in found["queues"] if q["name"] == self.queue]
        return dict(shown)


@asynccontextmanager
async def board(node_bullmq: NodeBullMQ, queue: str) -> AsyncIterator[Board]:
    with node_bullmq.start({"queue": queue, "action": "board"}) as proc:
        listening = await proc.await_for("listening", timeout=30)
        yield Board(listening["port"], queue)


async def _until(check: Any, seconds: float = 30.0) -> None:
    """Wait for a state the test needs before it asserts (a guard, not a timing assert)."""
    async with asyncio.timeout(seconds):
        while not await check():  # noqa: ASYNC110 - polls Redis
            await asyncio.sleep(0.02)


class Handler:
    """Runs "ok" (progress, a log line, a return value) and fails "bad" until ``heal``."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []
        self.heal = False

    async def __call__(self, job: Job[Any]) -> Any:
        self.seen.append((job.id, job.attempts_made))
        if job.name == "bad" and not self.heal:
            raise ValueError(f"broken on attempt {job.attempts_made + 1}")
        if job.name == "ok":
            await job.progress(40)
            await job.log("resized")
            return {"done": job.data["img"]}
        return None


async def test_board_shows_and_acts_on_a_pyqueue_queue(
    node_bullmq: NodeBullMQ, redis_url: str, raw_redis: aioredis.Redis, queue_name: str,
) -> None:
    handler = Handler()
    async with Queue(queue_name, redis_url, protocol="bullmq") as mq:
        ok = await mq.add({"img": "a.png"}, name="ok")
        bad = await mq.add({"n": 1}, name="bad", attempts=2)
        assert ok is not None
        assert bad is not None
        async with Worker(mq, handler):
            await _until(lambda: _counts_are(mq, completed=1, failed=1))
        waiting = await mq.add({"w": 1}, name="w")
        delayed = await mq.add({"d": 1}, name="d", delay=3_600_000)
        prioritized = await mq.add({"p": 1}, name="p", priority=3)
        assert waiting is not None
        assert delayed is not None
        assert prioritized is not None
        await mq.pause()
        async with board(node_bullmq, queue_name) as ui:
            await _check_tabs(ui, {"waiting": waiting, "delayed": delayed,
                                   "prioritized": prioritized, "completed": ok, "failed": bad})
            await _check_details(ui, ok, bad)

            # bull-board's retry and resume: a pyqueue worker runs the job again.
            await ui.put(f"/api/queues/{queue_name}/{bad.id}/retry")
            assert await mq.get_job_state(bad.id) == "waiting"
            await ui.put(f"/api/queues/{queue_name}/resume")
            assert await mq.is_paused() is False
            handler.heal = True
            handler.seen.clear()
            async with Worker(mq, handler):
                await _until(lambda: _counts_are(mq, completed=4, failed=0))
                # The worker named its connection before its first fetch, as BullMQ's
                # do: bull-board's workers view lists it.
                assert (await ui.tab("latest"))["hasWorkers"] is True
                workers = (await ui.get(f"/api/queues/{queue_name}/workers"))["workers"]
                assert len(workers) == 1, workers
            assert sorted(i for i, _ in handler.seen) == sorted(
                [bad.id, waiting.id, prioritized.id])
            shown = await ui.tab("completed")
            assert shown["counts"]["completed"] == 4
            assert bad.id in [j["id"] for j in shown["jobs"]]

            # bull-board's clean of a job (its tab's bulk clean keeps the last 5 s,
            # so it is the per-job one here): pyqueue sees it gone, logs and all.
            for gone in (ok, bad):
                await ui.put(f"/api/queues/{queue_name}/{gone.id}/clean")
                assert await mq.get_job(gone.id) is None
            assert await raw_redis.exists(f"bull:{queue_name}:{ok.id}:logs") == 0
            assert await mq.get_job_counts("completed") == {"completed": 2}
            assert sorted(await mq.get_job_ids("completed")) == sorted(
                [waiting.id, prioritized.id])
            after = await ui.tab("latest")
            assert after["counts"]["completed"] == 2
            assert after["counts"]["delayed"] == 1


async def _check_tabs(ui: Board, jobs: dict[str, Job[Any]]) -> None:
    """Each tab lists its one job; the counts and the paused flag are BullMQ's."""
    latest = await ui.tab("latest")
    assert latest["isPaused"] is True
    counts = latest["counts"]
    for state, expected in (("waiting", 1), ("delayed", 1), ("prioritized", 1),
                            ("completed", 1), ("failed", 1), ("active", 0),
                            ("waiting-children", 0)):
        assert counts[state] == expected, (state, counts)
    for status, job in jobs.items():
        shown = await ui.tab(status)
        assert [j["id"] for j in shown["jobs"]] == [job.id], (status, shown["jobs"])
        assert shown["jobs"][0]["name"] == job.name
        assert shown["jobs"][0]["data"] == job.data
    (delayed_row,) = (await ui.tab("delayed"))["jobs"]
    assert delayed_row["delay"] == 3_600_000
    (prioritized_row,) = (await ui.tab("prioritized"))["jobs"]
    assert prioritized_row["priority"] == 3


async def _check_details(ui: Board, ok: Job[Any], bad: Job[Any]) -> None:
    """A job's page: return value, progress, logs; failed reason, attempts, stack."""
    done = await ui.get(f"/api/queues/{ui.queue}/{ok.id}")
    assert done["status"] == "completed"
    job = done["job"]
    assert job["returnValue"] == {"done": "a.png"}
    assert job["progress"] == 40
    assert job["attempts"] == 1  # BullMQ counts the successful attempt
    assert job["isFailed"] is False
    assert job["finishedOn"] >= job["processedOn"] >= job["timestamp"]
    assert await ui.get(f"/api/queues/{ui.queue}/{ok.id}/logs") == ["resized"]

    failed = await ui.get(f"/api/queues/{ui.queue}/{bad.id}")
    assert failed["status"] == "failed"
    job = failed["job"]
    assert job["failedReason"] == "broken on attempt 2"
    assert job["attempts"] == 2
    assert job["isFailed"] is True
    assert len(job["stacktrace"]) == 2
    assert all("ValueError" in line for line in job["stacktrace"])
    assert job["opts"]["attempts"] == 2


async def _counts_are(queue: Queue, **wanted: int) -> bool:
    return await queue.get_job_counts(*wanted) == wanted


async def test_board_lists_and_removes_a_pyqueue_job_scheduler(
    node_bullmq: NodeBullMQ, redis_url: str, queue_name: str,
) -> None:
    async with Queue(queue_name, redis_url, protocol="bullmq") as mq:
        first = await mq.upsert_job_scheduler("nightly", pattern="0 3 * * *", tz="UTC",
                                              name="report", data={"kind": "daily"})
        assert first is not None
        async with board(node_bullmq, queue_name) as ui:
            assert (await ui.tab("latest"))["jobSchedulerCount"] == 1
            listed = (await ui.get("/api/job-schedulers", queueName=queue_name))["schedulers"]
            assert len(listed) == 1
            (shown,) = listed
            assert (shown["id"], shown["name"], shown["pattern"], shown["tz"]) == (
                "nightly", "report", "0 3 * * *", "UTC")
            assert shown["next"] == int(first.id.rsplit(":", 1)[1])
            assert shown["nextRunJobId"] == first.id
            assert shown["iterationCount"] == 1
            assert shown["template"]["data"] == {"kind": "daily"}
            (row,) = (await ui.tab("delayed"))["jobs"]
            assert row["id"] == first.id
            await ui.put(f"/api/queues/{queue_name}/job-schedulers/nightly/remove")
            assert await mq.get_job_scheduler("nightly") is None
            assert await mq.get_job_counts("delayed") == {"delayed": 0}
            assert (await ui.tab("latest"))["jobSchedulerCount"] == 0
