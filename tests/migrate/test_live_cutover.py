"""The cut-over with the real other side: Node Bull 4.12 keeps producing into the
old queue while ``pyqueue migrate --follow`` moves it into a new BullMQ queue,
a Node Bull worker serves the old queue, Node BullMQ workers the new one, the
migrator is killed with SIGKILL in the middle and started again, and a Bull
producer restarted on the old code declares its repeatable jobs again.

Afterwards: every job the producer had acknowledged ran exactly once (on one
side or the other), the history made before the migration is in the BullMQ
queue (bull-board's BullMQ adapter shows it: return values, attempts, stack
traces, logs), ids BullMQ refuses were renamed and recorded, and each schedule
ran once per tick: on the Bull side until the migration, on the BullMQ side
from the very next tick, never on both.

Two pyqueue workers in BullMQ mode (``Queue(..., protocol="bullmq")``) serve the
new queue beside the two Node BullMQ workers (``_python_bullmq_workers``): their
handler calls count as the Node workers' do in every assertion, and they must
have run some of the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import redis.asyncio as aioredis
from tests.bullmq.nodebullmq import NODE_DIR as BULLMQ_NODE_DIR
from tests.bullmq.nodebullmq import NodeBullMQ
from tests.bullmq.nodebullmq import check_node_modules as check_bullmq
from tests.interop.bull import NODE_DIR as BULL_NODE_DIR
from tests.interop.bull import NodeBull, NodeProcess, find_node
from tests.interop.bull import check_node_modules as check_bull

from pyqueue import Job, Queue, Worker, WorkerOptions

pytestmark = [pytest.mark.interop, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
FLEET = Path(__file__).resolve().parent / "node" / "fleet.js"
TARGET = "bmq"
EVERY_MS = 2000
CRON = "*/3 * * * * *"
CRON_MS = 3000
REPEATS = [
    {"name": "tick-every", "opts": {"repeat": {"every": EVERY_MS}, "jobId": "tick-every"}},
    {"name": "tick-cron", "opts": {"repeat": {"cron": CRON}, "jobId": "tick-cron"}},
]
STREAM = 120
NODE_BULL = {"stalledInterval": 5000, "lockDuration": 5000, "guardInterval": 200,
             "drainDelay": 1}
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Run(NamedTuple):
    """One handler call: which side ran it, the job id there, its name and data."""

    side: str  # "bull" or "bullmq"
    id: str
    name: str
    data: Any


@pytest.fixture
def node_fleet(monkeypatch: pytest.MonkeyPatch) -> str:
    """Node, with Bull 4.12 and BullMQ (+ bull-board) installed; fleet.js finds both."""
    if os.environ.get("PYQUEUE_SKIP_INTEROP") == "1":
        pytest.skip("PYQUEUE_SKIP_INTEROP=1: Node interop tests skipped")
    try:
        node = find_node()
        check_bull(("bull412",))
        check_bullmq(("bullmq",))
    except RuntimeError as exc:
        pytest.fail(f"the cut-over test needs Node Bull and BullMQ: {exc}", pytrace=False)
    paths = [str(BULL_NODE_DIR / "node_modules"), str(BULLMQ_NODE_DIR / "node_modules")]
    monkeypatch.setenv("NODE_PATH", os.pathsep.join(paths))
    return node


def _fleet(node: str, config: dict[str, Any]) -> NodeProcess:
    return NodeProcess([node, str(FLEET)], config)


@dataclass
class Migrator:
    """``run_migrator.py`` in its own process, following the old queue."""

    proc: asyncio.subprocess.Process
    lines: list[dict[str, Any]]
    reader: asyncio.Task[None]

    @classmethod
    async def start(cls, url: str, queue: str) -> Migrator:
        config = {"url": url, "queue": queue, "to_prefix": TARGET, "follow": True,
                  "batch_size": 5, "poll_interval": 0.1, "progress": True}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.migrate.run_migrator", json.dumps(config), cwd=ROOT,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        lines: list[dict[str, Any]] = []

        async def read() -> None:
            assert proc.stdout is not None
            while line := await proc.stdout.readline():
                lines.append(json.loads(line))

        return cls(proc, lines, asyncio.create_task(read()))

    async def wait_steps(self, steps: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while sum(1 for line in self.lines if line["event"] == "step") < steps:
            assert self.proc.returncode is None, await self._stderr()
            assert time.monotonic() < deadline, "the migrator made no progress"
            await asyncio.sleep(0.01)

    async def _stderr(self) -> str:
        assert self.proc.stderr is not None
        return (await self.proc.stderr.read()).decode()

    async def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()
        await self.reader

    async def stop(self) -> dict[str, Any]:
        self.proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(self.proc.wait(), 60) == 0, await self._stderr()
        await self.reader
        return next(line for line in self.lines if line["event"] == "report")


@dataclass
class Board:
    """bull-board's HTTP API over the BullMQ queue (fleet.js ``board``)."""

    proc: asyncio.subprocess.Process
    port: int

    def get(self, path: str, **query: Any) -> Any:
        url = f"http://127.0.0.1:{self.port}{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        with _OPENER.open(url, timeout=15) as response:
            return json.loads(response.read())


@contextlib.asynccontextmanager
async def board(node: str, url: str, queue: str) -> AsyncIterator[Board]:
    config = {"action": "board", "redisUrl": url, "prefix": TARGET, "queues": [queue]}
    proc = await asyncio.create_subprocess_exec(
        node, str(FLEET), json.dumps(config), stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        first = json.loads(await asyncio.wait_for(proc.stdout.readline(), 60))
        assert first["event"] == "listening", first
        yield Board(proc, first["port"])
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 15)
        except TimeoutError:
            proc.kill()
            await proc.wait()


def _runs(side: str, process: NodeProcess) -> list[Run]:
    return [Run(side, str(e["id"]), e["name"], e["data"]) for e in process.named("processing")]


def _start_bullmq_workers(node_mq: NodeBullMQ, queue: str) -> list[NodeProcess]:
    """Node BullMQ workers on the new queue."""
    return [node_mq.start({"queue": queue, "action": "process", "concurrency": 4,
                           "timeoutMs": 600_000, "behaviour": {}}) for _ in range(2)]


async def _python_bullmq_workers(url: str, queue: str,
                                 stack: contextlib.AsyncExitStack) -> list[Callable[[], list[Run]]]:
    """pyqueue workers on the new queue, in BullMQ mode, beside the Node ones: one
    settings-free ``Worker`` per call list, its handler calls listed as ``Run``s so
    that every assertion covers them as it covers the Node workers."""
    sources: list[Callable[[], list[Run]]] = []
    for _ in range(2):
        calls: list[Run] = []

        async def handler(job: Job[Any], calls: list[Run] = calls) -> None:
            calls.append(Run("bullmq", job.id, job.name, job.data))
            await asyncio.sleep(0.05)  # as long as a small real job: Node gets its share too

        queue_ = await stack.enter_async_context(
            Queue(queue, url, prefix=TARGET, protocol="bullmq"))
        worker = Worker(queue_, handler, options=WorkerOptions(concurrency=4))
        await stack.enter_async_context(worker)
        sources.append(lambda calls=calls: list(calls))
    return sources


def event_data(acked: dict[str, Any]) -> dict[str, Any]:
    """The data the producer gave the job it acknowledged."""
    return {"n": acked["n"], "kind": acked["kind"]}


def _tick(run: Run) -> int:
    """The scheduled time of a repeatable job's run: the last part of its id
    (``repeat:<md5>:<ms>`` in Bull, ``repeat:<scheduler>:<ms>`` in BullMQ)."""
    return int(run.id.rsplit(":", 1)[1])


@dataclass
class Outcome:
    """What the cut-over left: every handler call, the acknowledged adds, the
    last migrator's report."""

    runs: list[Run]
    acked: dict[int, dict[str, Any]]
    report: dict[str, Any]


async def _cut_over(node: str, url: str, q: str, stack: contextlib.ExitStack,
                    astack: contextlib.AsyncExitStack) -> Outcome:
    """The whole scenario of the module docstring; Node processes close with
    ``stack``, pyqueue workers with ``astack``."""
    node_bull = NodeBull("bull412", url)
    # History made by Node Bull before the migration starts.
    await node_bull.arun({"queue": q, "action": "add", "jobs": [
        *({"name": "hist-ok", "data": {"h": i}} for i in range(3)),
        *({"name": "hist-bad", "data": {"h": i}, "opts": {"attempts": 2}} for i in range(2)),
    ]})
    bull_worker = stack.enter_context(node_bull.start({
        "queue": q, "action": "process", "settings": NODE_BULL, "timeoutMs": 600_000,
        "behaviour": {"hist-ok": {"log": ["from bull"], "progress": [40], "return": "kept"},
                      "hist-bad": {"fail": "broken in bull"}, "*": {"sleepMs": 150}}}))
    await bull_worker.await_for("ready", 60)
    await bull_worker.await_for(
        lambda e: len([x for x in bull_worker.named("failed") if x.get("final")]) >= 2, 60)
    producer = stack.enter_context(_fleet(node, {
        "action": "produce", "bull": "bull412", "redisUrl": url, "queue": q, "count": STREAM,
        "intervalMs": 40, "repeats": REPEATS}))
    await producer.await_for("acked", 60, n=10)
    workers = [stack.enter_context(w)
               for w in _start_bullmq_workers(NodeBullMQ("bullmq", url, prefix=TARGET), q)]
    for worker in workers:
        await worker.await_for("ready", 60)
    python_workers = await _python_bullmq_workers(url, q, astack)

    def runs() -> list[Run]:
        return (_runs("bull", bull_worker) + [r for w in workers for r in _runs("bullmq", w)]
                + [r for calls in python_workers for r in calls()])

    migrator = await Migrator.start(url, q)
    await migrator.wait_steps(8)
    await migrator.kill()  # kill -9 in the middle of the stream
    assert producer.named("done") == [], "the producer finished before the kill"
    migrator = await Migrator.start(url, q)
    await migrator.wait_steps(2)
    # An instance of the producer restarts on the old code: declares again.
    with _fleet(node, {"action": "declare", "bull": "bull412", "redisUrl": url, "queue": q,
                       "repeats": REPEATS}) as restarted:
        await restarted.await_exit(60)
    await producer.await_exit(120)
    acked = {e["n"]: e for e in producer.named("acked")}
    assert len(acked) == STREAM
    deadline = time.monotonic() + 120
    while {r.data["n"] for r in runs() if r.name == "stream"} != set(acked):
        assert time.monotonic() < deadline, "acknowledged jobs did not run"
        await asyncio.sleep(0.2)
    # Ticks keep coming, on the BullMQ side only: wait for two of each schedule there.
    while any(sum(r.side == "bullmq" and r.name == name for r in runs()) < 2
              for name in ("tick-every", "tick-cron")):
        assert time.monotonic() < deadline + 60, "the schedulers did not fire on BullMQ"
        await asyncio.sleep(0.2)
    # pyqueue's BullMQ-mode workers took their share of the new queue's jobs.
    python_runs = [r for calls in python_workers for r in calls()]
    assert any(r.name == "stream" for r in python_runs), "no stream job ran on pyqueue"
    report = await migrator.stop()
    for process in (bull_worker, *workers):
        process.terminate()
    return Outcome(runs(), acked, report)


async def _check_ids(raw: aioredis.Redis, q: str, outcome: Outcome) -> None:
    """Ids BullMQ refuses were renamed and recorded; each job ran under the id
    of the side that ran it."""
    renames = {k.decode(): v.decode()
               for k, v in (await raw.hgetall(f"{TARGET}:{q}:pq-migrate:ids")).items()}
    renamed = [e for e in outcome.acked.values()
               if e["kind"] in ("digits", "colon") and e["id"] in renames]
    assert {e["kind"] for e in renamed} == {"digits", "colon"}
    for event in renamed:
        new_id = renames[event["id"]]
        assert ":" not in new_id
        assert not new_id.isdigit()
        stored = await raw.hget(f"{TARGET}:{q}:{new_id}", "data")
        assert json.loads(stored or b"null") == event_data(event)
        (run,) = [r for r in outcome.runs if r.name == "stream" and r.data["n"] == event["n"]]
        assert run.id == (new_id if run.side == "bullmq" else event["id"])


async def _check_schedules(raw: aioredis.Redis, q: str, runs: list[Run]) -> None:
    """Each schedule ran once per tick: Bull's side up to the migration, BullMQ's
    from the next tick on, never both; nothing of them is left in Bull."""
    for name, period in (("tick-every", EVERY_MS), ("tick-cron", CRON_MS)):
        ticks = [(r.side, _tick(r)) for r in runs if r.name == name]
        times = [t for _, t in ticks]
        assert len(times) == len(set(times)), f"{name} ran a tick twice: {sorted(ticks)}"
        assert all(t % period == 0 for t in times)
        bull_side = sorted(t for side, t in ticks if side == "bull")
        mq_side = sorted(t for side, t in ticks if side == "bullmq")
        assert len(mq_side) >= 2, ticks
        if bull_side:
            assert mq_side[0] - bull_side[-1] == period, sorted(ticks)
    assert await raw.zcard(f"bull:{q}:repeat") == 0
    assert await raw.keys(f"bull:{q}:repeat:*") == []
    for state in ("wait", "active", "paused"):
        assert await raw.llen(f"bull:{q}:{state}") == 0, state
    assert await raw.zcard(f"bull:{q}:delayed") == 0


async def _check_board(node: str, url: str, q: str, runs: list[Run]) -> None:
    """bull-board's BullMQ adapter shows the history Node Bull made."""
    async with board(node, url, q) as ui:
        queues = await asyncio.to_thread(ui.get, "/api/queues", activeQueue=q,
                                         status="completed", page=1)
        (shown,) = [x for x in queues["queues"] if x["name"] == q]
        assert shown["counts"]["completed"] >= 3 + STREAM
        assert shown["counts"]["failed"] == 2
        history = {r.id: r for r in runs if r.side == "bull" and r.name.startswith("hist-")}
        assert len(history) == 5
        for r in history.values():
            found = await asyncio.to_thread(ui.get, f"/api/queues/{q}/{r.id}")
            job = found["job"]
            if r.name == "hist-ok":
                assert found["status"] == "completed"
                assert job["returnValue"] == "kept"
                assert job["attempts"] == 1  # BullMQ counts the successful attempt
                assert job["progress"] == 40
                logs = await asyncio.to_thread(ui.get, f"/api/queues/{q}/{r.id}/logs")
                assert logs == ["from bull"]
            else:
                assert found["status"] == "failed"
                assert job["failedReason"] == "broken in bull"
                assert job["attempts"] == 2
                assert len(job["stacktrace"]) == 2


@pytest.mark.timeout(300)
async def test_live_cut_over_with_node_on_both_sides_and_a_kill(
    node_fleet: str, redis_url: str, raw_redis: aioredis.Redis, queue_name: str,
) -> None:
    with contextlib.ExitStack() as stack:
        async with contextlib.AsyncExitStack() as astack:
            outcome = await _cut_over(node_fleet, redis_url, queue_name, stack, astack)
    # Every acknowledged job ran exactly once.
    ran = Counter(r.data["n"] for r in outcome.runs if r.name == "stream")
    assert ran == Counter(dict.fromkeys(outcome.acked, 1))
    assert outcome.report["moved"].get("wait", 0) > 0
    await _check_ids(raw_redis, queue_name, outcome)
    await _check_schedules(raw_redis, queue_name, outcome.runs)
    await _check_board(node_fleet, redis_url, queue_name, outcome.runs)
