"""bull-board, Bull's dashboard, over queues pyqueue wrote.

``tests/interop/node/board.js`` serves the real ``@bull-board/express`` app with
``BullAdapter`` over Bull 4.16.x queues; these tests fill the queues with pyqueue
(public API only), call bull-board's HTTP API and check that it reports what
Bull itself would: counts, ids per status, job fields, logs, the paused flag, and
that its write actions (retry, promote, resume) act on pyqueue jobs as on Node ones.

bull-board routes used (``@bull-board/api``'s ``routes``):

* ``GET /api/queues?activeQueue=Q&status=S&page=1``: every queue with ``counts``
  and ``isPaused``; the active queue also with ``jobs`` of status ``S``
  (``latest`` = up to 10 of each status).
* ``GET /api/queues/Q/ID``: ``{job, status}`` of one job.
* ``GET /api/queues/Q/ID/logs``: the job's log lines.
* ``PUT /api/queues/Q/ID/retry``, ``PUT /api/queues/Q/ID/promote``,
  ``PUT /api/queues/Q/resume``: Bull's own ``job.retry()``, ``job.promote()`` and
  ``queue.resume()``.

Test 2 makes the same jobs with Node Bull and with pyqueue and compares bull-board's
views of both field by field. Tests 3 and 4: bull-board
sees a queue's workers, Node's and pyqueue's alike (both name their blocking
connection ``bull:<base64(queue)>``).

bull-board's ``BullAdapter`` shows ``attempts`` as Bull's ``attemptsMade + 1`` (to
align with BullMQ), where Bull counts failed attempts only: a job that succeeded
first time shows 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from tests.interop.bull import INSTALL_HINT, NODE_DIR, NodeBull, find_node, single

from pyqueue import Job, Queue, Worker, WorkerOptions

BOARD = NODE_DIR / "board.js"
BOARD_PACKAGES = ("@bull-board/api", "@bull-board/express", "express")
# pyqueue worker settings for quick tests: short blocking fetch, no stall checks.
PY_FAST = WorkerOptions(drain_delay=1, guard_interval=200, stalled_interval=0, shutdown_grace=5)
NODE_FAST = {"stalledInterval": 5000, "lockDuration": 5000, "guardInterval": 200, "drainDelay": 1}
HOUR_MS = 3_600_000
# Bull's getJobCounts() keys, which bull-board shows as they are.
ZERO_COUNTS = {"waiting": 0, "active": 0, "completed": 0, "failed": 0, "delayed": 0, "paused": 0}

# Plain urllib, never through an HTTP(S)_PROXY from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# --- the board process -----------------------------------------------------------------


def _http(method: str, url: str) -> tuple[int, Any]:
    request = urllib.request.Request(url, method=method, headers={"Accept": "application/json"})
    try:
        with _OPENER.open(request, timeout=15) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            status, body = exc.code, exc.read()
    text = body.decode()
    try:
        return status, json.loads(text) if text else None
    except json.JSONDecodeError:
        return status, text


@dataclass
class BullBoard:
    """A running ``board.js``: bull-board's HTTP API on ``127.0.0.1:port``."""

    proc: asyncio.subprocess.Process
    port: int
    stderr: list[str] = field(default_factory=list)

    async def request(self, method: str, path: str, **query: Any) -> tuple[int, Any]:
        url = f"http://127.0.0.1:{self.port}{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        return await asyncio.to_thread(_http, method, url)

    async def get(self, path: str, **query: Any) -> Any:
        status, body = await self.request("GET", path, **query)
        assert status == 200, (path, status, body, self.stderr)
        return body

    async def put(self, path: str) -> None:
        status, body = await self.request("PUT", path)
        assert status in (200, 204), (path, status, body, self.stderr)

    async def queues(self, active: str, status: str = "latest", page: int = 1) -> dict[str, Any]:
        """``GET /api/queues``: every queue by name; ``active`` also lists jobs."""
        body = await self.get("/api/queues", activeQueue=active, status=status, page=page)
        return {q["name"]: q for q in body["queues"]}

    async def job_ids(self, queue: str, status: str) -> list[str]:
        """The ids bull-board lists on the first page of ``status``."""
        return [str(j["id"]) for j in (await self.queues(queue, status))[queue]["jobs"]]

    async def job(self, queue: str, job_id: str) -> dict[str, Any]:
        """``GET /api/queues/Q/ID``: ``{"job": ..., "status": ...}``."""
        body: dict[str, Any] = await self.get(f"/api/queues/{queue}/{job_id}")
        return body

    async def logs(self, queue: str, job_id: str) -> Any:
        return await self.get(f"/api/queues/{queue}/{job_id}/logs")


StartBoard = Callable[..., Awaitable[BullBoard]]


async def _drain(stream: asyncio.StreamReader | None, sink: list[str]) -> None:
    if stream is None:
        return
    while line := await stream.readline():
        sink.append(line.decode(errors="replace"))


async def _stop(board: BullBoard, drainers: list[asyncio.Task[None]]) -> None:
    proc = board.proc
    if proc.stdin is not None and not proc.stdin.is_closing():
        proc.stdin.close()
    try:
        await asyncio.wait_for(proc.wait(), 10)
    except TimeoutError:
        proc.kill()
        await proc.wait()
    for task in drainers:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 5)


@pytest.fixture
async def start_board(node_available: None, redis_url: str) -> AsyncIterator[StartBoard]:
    """``await start_board(queue, ...)`` runs board.js on those queues until teardown."""
    missing = [p for p in BOARD_PACKAGES if not (NODE_DIR / "node_modules" / p).is_dir()]
    if missing:
        pytest.fail(
            f"bull-board tests need {', '.join(missing)} in {NODE_DIR / 'node_modules'}: "
            f"run `{INSTALL_HINT}` (or set PYQUEUE_SKIP_INTEROP=1)",
            pytrace=False,
        )
    running: list[tuple[BullBoard, list[asyncio.Task[None]]]] = []

    async def start(*queues: str) -> BullBoard:
        proc = await asyncio.create_subprocess_exec(
            find_node(), str(BOARD), redis_url, "0", *queues,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=NODE_DIR,
            env={**os.environ, "NODE_ENV": "production"},
        )
        board = BullBoard(proc, 0)
        drainers = [asyncio.create_task(_drain(proc.stderr, board.stderr))]
        running.append((board, drainers))
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
        except TimeoutError:
            line = b""
        drainers.append(asyncio.create_task(_drain(proc.stdout, board.stderr)))
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            event = {}
        if event.get("event") != "listening":
            await _stop(board, drainers)
            raise AssertionError(f"board.js did not start: {line!r}\n{''.join(board.stderr)}")
        board.port = int(event["port"])
        return board

    try:
        yield start
    finally:
        for board, drainers in running:
            await _stop(board, drainers)


# --- helpers ------------------------------------------------------------------------


async def wait_until(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 10.0) -> Any:
    """Poll ``check`` until it returns something truthy (never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; last={last!r}")


async def wait_counts(q: Queue[Any], **want: int) -> dict[str, int]:
    async def check() -> dict[str, int] | None:
        counts = await q.get_job_counts()
        return counts if all(counts[k] == v for k, v in want.items()) else None

    result: dict[str, int] = await wait_until(check, f"pyqueue counts {want}")
    return result


async def reloaded(q: Queue[Any], job_id: str) -> Job[Any]:
    job = await q.get_job(job_id)
    assert job is not None, job_id
    return job


def assert_times_match(shown: dict[str, Any], job: Job[Any]) -> None:
    """bull-board's timestamps are the job hash's, to the millisecond."""
    assert shown["timestamp"] == job.timestamp
    assert shown.get("processedOn") == job.processed_on
    assert shown.get("finishedOn") == job.finished_on
    if job.processed_on is not None:
        assert job.timestamp <= job.processed_on
    if job.finished_on is not None:
        assert job.processed_on is not None
        assert job.processed_on <= job.finished_on


# --- 1. one queue in every state, and a paused one ------------------------------------


class Handlers:
    """The pyqueue worker's handlers of test 1; each records the ids it runs, in order."""

    def __init__(self) -> None:
        self.held, self.release, self.fixed = asyncio.Event(), asyncio.Event(), asyncio.Event()
        self.processed: list[str] = []

    async def ok(self, job: Job[Any]) -> Any:
        self.processed.append(job.id)
        await job.log("ok: adding")
        await job.progress(100)
        await job.log("ok: done")
        return {"sum": job.data["a"] + job.data["b"]}

    async def bad(self, job: Job[Any]) -> Any:
        """Fails until ``fixed`` is set."""
        self.processed.append(job.id)
        if not self.fixed.is_set():
            raise ValueError("boom: bad input")
        return "fixed"

    async def hold(self, job: Job[Any]) -> Any:
        """Stays active (holding the worker's only slot) until ``release`` is set."""
        self.processed.append(job.id)
        await job.progress({"step": 2, "of": 5})
        await job.log("hold: waiting for release")
        self.held.set()
        await self.release.wait()
        return "released"

    async def plain(self, job: Job[Any]) -> Any:
        self.processed.append(job.id)
        return job.name


@dataclass
class Scene:
    """The jobs of test 1: ``q`` in every state, ``paused_q`` paused."""

    q: Queue[Any]
    paused_q: Queue[Any]
    c: Job[Any]  # completed, with a return value, progress and logs
    f: Job[Any]  # failed
    h: Job[Any]  # active, held by the pyqueue worker; progress and a log
    w1: Job[Any]  # waiting
    w2: Job[Any]  # waiting
    p: Job[Any]  # waiting, priority 1
    d: Job[Any]  # delayed by an hour
    b1: Job[Any]  # paused_q: added before the pause
    b2: Job[Any]
    b3: Job[Any]  # paused_q: added while paused


async def test_bull_board_sees_pyqueue_queues(
    start_board: StartBoard, redis_url: str, queue_name: str
) -> None:
    main, other = queue_name, queue_name + "-paused"
    run = Handlers()

    async with (
        Queue[Any](main, redis_url) as q,
        Queue[Any](other, redis_url) as paused_q,
    ):
        c = await q.add({"a": 1, "b": 2}, name="ok")
        f = await q.add({"x": "bad"}, name="bad")
        h = await q.add({"hold": True}, name="hold")
        worker = Worker(
            main,
            {"ok": run.ok, "bad": run.bad, "hold": run.hold, "*": run.plain},
            redis_url=redis_url, options=PY_FAST, concurrency=1,
        )
        await worker.start()
        try:
            await asyncio.wait_for(run.held.wait(), 10)
            await wait_counts(q, completed=1, failed=1, active=1)
            # The worker's only slot is taken by `hold`, so these stay where they are.
            w1 = await q.add({"n": 1}, name="plain")
            w2 = await q.add({"n": 2}, name="plain")
            p = await q.add({"n": 3}, name="urgent", priority=1)
            d = await q.add({"n": 4}, name="later", delay=HOUR_MS)
            b1 = await paused_q.add({"b": 1}, name="pb")
            b2 = await paused_q.add({"b": 2}, name="pb")
            await paused_q.pause()
            b3 = await paused_q.add({"b": 3}, name="pb")
            scene = Scene(q, paused_q, c, f, h, w1, w2, p, d, b1, b2, b3)

            board = await start_board(main, other)
            await _check_queue_list(board, scene)
            await _check_finished_pages(board, scene)
            await _check_unfinished_pages(board, scene)
            await _check_write_actions(board, scene)

            # -- the pyqueue worker runs what bull-board retried and promoted --
            run.fixed.set()
            run.release.set()
            assert await f.finished(timeout=10) == "fixed"
            await wait_counts(q, completed=7, waiting=0, active=0, failed=0, delayed=0)
        finally:
            run.release.set()
            await worker.close(timeout=3)

        await _check_after_processing(board, scene, run.processed)


async def _check_after_processing(board: BullBoard, s: Scene, processed: list[str]) -> None:
    """The worker ran the rest, in Bull's order; bull-board shows the retried job done."""
    q, c, f, h, w1, w2, p, d = s.q, s.c, s.f, s.h, s.w1, s.w2, s.p, s.d
    main = q.name
    # Bull's order: the one slot frees up, then the right end of wait comes first.
    assert processed == [c.id, f.id, h.id, p.id, w1.id, w2.id, f.id, d.id]
    done = await reloaded(q, f.id)
    assert done.return_value == "fixed"
    assert done.attempts_made == 1  # Bull counts failed attempts only
    shown = await board.job(main, f.id)
    assert shown["status"] == "completed"
    assert shown["job"]["returnValue"] == "fixed"
    assert shown["job"]["attempts"] == 2
    assert shown["job"].get("failedReason") is None
    assert_times_match(shown["job"], done)
    shown = (await board.queues(main, "completed"))[main]
    assert shown["counts"] == {**ZERO_COUNTS, "completed": 7}
    assert sorted(str(j["id"]) for j in shown["jobs"]) == sorted(
        [c.id, f.id, h.id, p.id, w1.id, w2.id, d.id]
    )


async def _check_queue_list(board: BullBoard, s: Scene) -> None:
    """``GET /api/queues``: counts, the paused flag and the ids per status."""
    c, f, h, w1, w2, p, d, b1, b2, b3 = s.c, s.f, s.h, s.w1, s.w2, s.p, s.d, s.b1, s.b2, s.b3
    q = s.q
    main, other = s.q.name, s.paused_q.name

    # -- the queue list: counts per status and the paused flag, for both queues --
    listed = await board.queues(main)
    assert set(listed) == {main, other}
    assert listed[main]["counts"] == {
        **ZERO_COUNTS, "waiting": 3, "active": 1, "completed": 1, "failed": 1, "delayed": 1,
    }
    assert listed[main]["isPaused"] is False
    assert listed[other]["counts"] == {**ZERO_COUNTS, "paused": 3}
    assert listed[other]["isPaused"] is True
    assert listed[other]["jobs"] == []  # only the active queue lists jobs
    latest = {str(j["id"]) for j in listed[main]["jobs"]}
    assert latest == {c.id, f.id, h.id, w1.id, w2.id, p.id, d.id}

    # -- ids per status, in Bull's order (lists left to right, sets newest first) --
    assert await board.job_ids(main, "waiting") == [w2.id, w1.id, p.id]  # p runs next
    assert await board.job_ids(main, "active") == [h.id]
    assert await board.job_ids(main, "completed") == [c.id]
    assert await board.job_ids(main, "failed") == [f.id]
    assert await board.job_ids(main, "delayed") == [d.id]
    assert await board.job_ids(main, "paused") == []
    for status in ("waiting", "active", "completed", "failed", "delayed"):
        assert await board.job_ids(main, status) == await q.get_job_ids(status)
    assert await board.job_ids(other, "paused") == [b3.id, b2.id, b1.id]
    assert await board.job_ids(other, "waiting") == []


async def _check_finished_pages(board: BullBoard, s: Scene) -> None:
    """``GET /api/queues/Q/ID`` and ``.../logs``: the completed and the failed job."""
    q, c, f = s.q, s.c, s.f
    main = q.name

    completed = await reloaded(q, c.id)
    shown = await board.job(main, c.id)
    assert shown["status"] == "completed"
    job = shown["job"]
    assert str(job["id"]) == c.id
    assert job["name"] == "ok"
    assert job["data"] == {"a": 1, "b": 2}
    assert job["returnValue"] == {"sum": 3}
    assert job["progress"] == 100
    assert job["attempts"] == 1  # attemptsMade 0 (no failure) + bull-board's 1
    assert job.get("failedReason") is None
    assert job["stacktrace"] == []
    assert job["isFailed"] is False
    assert job["delay"] == 0
    assert job["opts"] == {"attempts": 1, "delay": 0, "timestamp": completed.timestamp}
    assert completed.processed_on is not None
    assert completed.finished_on is not None
    assert_times_match(job, completed)
    assert await board.logs(main, c.id) == ["ok: adding", "ok: done"]

    failed = await reloaded(q, f.id)
    shown = await board.job(main, f.id)
    assert shown["status"] == "failed"
    job = shown["job"]
    assert job["name"] == "bad"
    assert job["data"] == {"x": "bad"}
    assert job["failedReason"] == "boom: bad input"
    assert len(job["stacktrace"]) == 1
    assert job["stacktrace"] == failed.stacktrace
    assert "ValueError: boom: bad input" in job["stacktrace"][0]
    assert job["isFailed"] is True
    assert job["attempts"] == 2  # attemptsMade 1 + bull-board's 1
    assert job["returnValue"] is None
    assert failed.finished_on is not None
    assert_times_match(job, failed)
    assert await board.logs(main, f.id) == []



async def _check_unfinished_pages(board: BullBoard, s: Scene) -> None:
    """``GET /api/queues/Q/ID`` and ``.../logs``: active, waiting, delayed, paused jobs."""
    q, h, w1, w2, p, d, b1, b2, b3 = s.q, s.h, s.w1, s.w2, s.p, s.d, s.b1, s.b2, s.b3
    main, other = q.name, s.paused_q.name

    active = await reloaded(q, h.id)
    shown = await board.job(main, h.id)
    assert shown["status"] == "active"
    job = shown["job"]
    assert job["progress"] == {"step": 2, "of": 5}
    assert job["attempts"] == 1
    assert job.get("finishedOn") is None
    assert active.processed_on is not None
    assert_times_match(job, active)
    assert await board.logs(main, h.id) == ["hold: waiting for release"]

    for waiting, data in ((w1, {"n": 1}), (w2, {"n": 2})):
        shown = await board.job(main, waiting.id)
        assert shown["status"] == "waiting"
        assert shown["job"]["data"] == data
        assert shown["job"].get("processedOn") is None
        assert shown["job"]["progress"] == 0
        assert shown["job"]["attempts"] == 1
        assert_times_match(shown["job"], await reloaded(q, waiting.id))

    shown = await board.job(main, p.id)
    assert shown["status"] == "waiting"
    assert shown["job"]["name"] == "urgent"
    assert shown["job"]["opts"]["priority"] == 1

    delayed = await reloaded(q, d.id)
    shown = await board.job(main, d.id)
    assert shown["status"] == "delayed"
    job = shown["job"]
    assert job["delay"] == HOUR_MS
    assert job["opts"] == {"attempts": 1, "delay": HOUR_MS, "timestamp": delayed.timestamp}
    assert job["data"] == {"n": 4}
    assert_times_match(job, delayed)

    for paused, n in ((b1, 1), (b2, 2), (b3, 3)):
        shown = await board.job(other, paused.id)
        assert shown["status"] == "paused"
        assert shown["job"]["data"] == {"b": n}

    status, body = await board.request("GET", f"/api/queues/{main}/no-such-job")
    assert status == 404, body


async def _check_write_actions(board: BullBoard, s: Scene) -> None:
    """Retry, promote and resume through bull-board: Bull's own scripts on pyqueue jobs."""
    q, paused_q, f, w1, w2, p, d = s.q, s.paused_q, s.f, s.w1, s.w2, s.p, s.d
    main, other = q.name, paused_q.name

    await board.put(f"/api/queues/{main}/{f.id}/retry")
    retried = await reloaded(q, f.id)
    assert await retried.get_state() == "waiting"
    # Bull's reprocessJob: HDEL finishedOn/processedOn/failedReason, HSET retriedOn,
    # LPUSH to wait; attemptsMade and the stacktrace stay.
    assert retried.failed_reason is None
    assert retried.finished_on is None
    assert retried.processed_on is None
    assert retried.record.retried_on is not None
    assert retried.attempts_made == 1
    assert len(retried.stacktrace) == 1
    shown = await board.job(main, f.id)
    assert shown["status"] == "waiting"
    assert shown["job"]["isFailed"] is True  # Bull keeps the stacktrace of a retried job

    await board.put(f"/api/queues/{main}/{d.id}/promote")
    promoted = await reloaded(q, d.id)
    assert await promoted.get_state() == "waiting"
    assert promoted.delay == 0  # Bull's promote sets the hash's delay to 0

    # LPUSH puts both at the back; the prioritized job is still next.
    assert await q.get_job_ids("waiting") == [d.id, f.id, w2.id, w1.id, p.id]
    assert await board.job_ids(main, "waiting") == [d.id, f.id, w2.id, w1.id, p.id]
    shown = (await board.queues(main))[main]
    assert shown["counts"] == {**ZERO_COUNTS, "waiting": 5, "active": 1, "completed": 1}

    await board.put(f"/api/queues/{other}/resume")
    assert not await paused_q.is_paused()
    assert await paused_q.get_job_counts() == {**ZERO_COUNTS, "waiting": 3}
    assert await paused_q.get_job_ids("waiting") == [s.b3.id, s.b2.id, s.b1.id]
    shown = (await board.queues(other))[other]
    assert shown["isPaused"] is False
    assert shown["counts"] == {**ZERO_COUNTS, "waiting": 3}


# --- 2. the same jobs made by Node Bull and by pyqueue look the same -----------------


def _normalised(job: dict[str, Any]) -> dict[str, Any]:
    """A bull-board job without what must differ: ids, clock times, trace text."""
    out = dict(job)
    out.pop("id")
    for key in ("timestamp", "processedOn", "finishedOn"):
        if out.get(key) is not None:
            out[key] = isinstance(out[key], int) and out[key] > 0
    out["stacktrace"] = len(out["stacktrace"])
    out["opts"] = {k: v for k, v in out["opts"].items() if k != "timestamp"}
    return out


SPECS: list[dict[str, Any]] = [
    {"name": "ok", "data": {"a": 1, "b": [2, 3]}, "opts": {"attempts": 2}},
    {"name": "bad", "data": {"x": None}, "opts": {}},
]
LATER: list[dict[str, Any]] = [
    {"name": "plain", "data": {"n": 1}, "opts": {}},
    {"name": "urgent", "data": {"n": 2}, "opts": {"priority": 3}},
    {"name": "later", "data": {"n": 3}, "opts": {"delay": HOUR_MS, "lifo": True}},
]


async def _py_add(q: Queue[Any], specs: list[dict[str, Any]]) -> list[str]:
    """Add ``SPECS``-style jobs (their opts keys are the same in both APIs)."""
    return [(await q.add(s["data"], name=s["name"], **s["opts"])).id for s in specs]


async def test_bull_board_shows_pyqueue_jobs_as_node_ones(
    start_board: StartBoard, node_bull: NodeBull, bull_version: str, redis_url: str,
    queue_name: str,
) -> None:
    # The Node producer and worker run every Bull release; the board itself stays on
    # 4.16.5: its BullAdapter refuses queues that are not instances of its own Bull.
    node_q, py_q = queue_name + "-node", queue_name + "-py"

    # Node Bull makes and runs its jobs...
    added = await node_bull.arun({"queue": node_q, "action": "add", "jobs": SPECS})
    node_ids = single(added, "added")["ids"]
    await node_bull.arun(
        {
            "queue": node_q, "action": "process", "until": 2, "timeoutMs": 15000,
            "settings": NODE_FAST,
            "behaviour": {
                "ok": {"log": ["one", "two"], "progress": [50, {"p": 100}], "return": [1, "x"]},
                "bad": {"fail": "boom"},
            },
        }
    )
    added = await node_bull.arun({"queue": node_q, "action": "add", "jobs": LATER})
    node_ids += single(added, "added")["ids"]

    # ...and pyqueue the same ones.
    async def handle(job: Job[Any]) -> Any:
        if job.name == "bad":
            raise RuntimeError("boom")
        for line in ("one", "two"):
            await job.log(line)
        for value in (50, {"p": 100}):
            await job.progress(value)
        return [1, "x"]

    async with Queue[Any](py_q, redis_url) as q:
        py_ids = await _py_add(q, SPECS)
        async with Worker(py_q, handle, redis_url=redis_url, options=PY_FAST):
            await wait_counts(q, completed=1, failed=1)
        py_ids += await _py_add(q, LATER)
        assert await q.get_job_counts() == {
            **ZERO_COUNTS, "completed": 1, "failed": 1, "waiting": 2, "delayed": 1,
        }

    board = await start_board(node_q, py_q)
    listed = {"latest": 5, "waiting": 2, "completed": 1, "failed": 1, "delayed": 1}
    for status, n in listed.items():
        node_view = (await board.queues(node_q, status))[node_q]
        py_view = (await board.queues(py_q, status))[py_q]
        assert len(node_view["jobs"]) == n, (status, node_view)
        assert py_view["counts"] == node_view["counts"], status
        assert py_view["isPaused"] == node_view["isPaused"]
        # Same positions in Bull's lists and sets (ids are "1".."5" on both sides).
        assert [j["id"] for j in py_view["jobs"]] == [j["id"] for j in node_view["jobs"]], status
        py_jobs = [_normalised(j) for j in py_view["jobs"]]
        node_jobs = [_normalised(j) for j in node_view["jobs"]]
        assert py_jobs == node_jobs, status
    assert py_ids == node_ids
    for node_id, py_id in zip(node_ids, py_ids, strict=True):
        node_job = await board.job(node_q, node_id)
        py_job = await board.job(py_q, py_id)
        assert py_job["status"] == node_job["status"], py_id
        assert _normalised(py_job["job"]) == _normalised(node_job["job"]), py_id
        assert await board.logs(py_q, py_id) == await board.logs(node_q, node_id)


# --- 3. workers ----------------------------------------------------------------------


async def _shows_workers(board: BullBoard, queue: str, timeout: float) -> None:
    async def has_workers() -> bool:
        shown = (await board.queues(queue))[queue]
        return shown["hasWorkers"] is True

    await wait_until(has_workers, f"bull-board's hasWorkers for {queue}", timeout)
    workers = await board.get(f"/api/queues/{queue}/workers")
    assert len(workers) == 1, workers


async def test_bull_board_sees_node_workers(
    start_board: StartBoard, node_bull: NodeBull, queue_name: str
) -> None:
    """The control for the next test: a Node Bull worker is listed."""
    with node_bull.start(
        {"queue": queue_name, "action": "process", "timeoutMs": 20000, "settings": NODE_FAST}
    ) as worker:
        await worker.await_for("ready")
        board = await start_board(queue_name)
        await _shows_workers(board, queue_name, timeout=10)
        await asyncio.to_thread(worker.terminate)


async def test_bull_board_sees_pyqueue_workers(
    start_board: StartBoard, redis_url: str, queue_name: str
) -> None:
    async with Worker(queue_name, lambda job: None, redis_url=redis_url, options=PY_FAST):
        board = await start_board(queue_name)
        await _shows_workers(board, queue_name, timeout=2)
