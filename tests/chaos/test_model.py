"""Scenario 8: a hypothesis state machine checks pyqueue against a model of Bull.

Rules: add (optional delay, custom job id, priority 1-3, lifo), process one job
(moveToActive via the Scripts API), complete it, fail it (final, or with a retry
back to wait), retry a failed job, pause, resume, promote, remove, clean, and
stall (delete a lock and run the stalled check). After every step the Redis
state must equal the model: each id's state, the exact wait/paused order, and
the ``priority`` zset (members and scores).

The ordering rules are those of Bull 4.x's Lua scripts (``lib/commands``; the
spec's §3.0.1, §3.1-3.6, §3.11, §3.12, §3.21):

* addJob: priority 0 pushes with LPUSH, or RPUSH with ``lifo`` (taken next);
  a priority >= 1 inserts by priority (:meth:`WaitList.insert_by_priority`),
  ``lifo`` ignored. A delayed job goes to the delayed zset only.
* moveToActive takes the right end and drops the id from the ``priority`` zset.
* retryJob (immediate retry): by the hash's priority if non-zero, else
  LPUSH/RPUSH by ``lifo``.
* reprocessJob (``Job#retry``): LPUSH/RPUSH by ``lifo``; the priority is ignored
  (no zset entry).
* promote: by priority if non-zero, else LPUSH (``lifo`` ignored).
* stall recovery: RPUSH (taken next), no zset entry.
* pause/resume: RENAME wait <-> paused; order and zset unchanged, and later
  inserts go to the paused list by the same rules.

Size: 30 examples of up to 50 steps by default; PYQUEUE_CHAOS_SCALE=10 runs 300.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from pyqueue import Queue
from pyqueue.embedded import RedisServer

SCALE = int(os.environ.get("PYQUEUE_CHAOS_SCALE", "1"))
TOKEN = "model-worker"
_server: dict[str, str] = {}


@pytest.fixture(scope="module", autouse=True)
def _redis() -> Iterator[None]:
    with RedisServer() as server:
        _server["url"] = server.url
        yield


class WaitList:
    """Bull's wait (or, while paused, paused) list and its ``priority`` zset.

    ``ids[0]`` is the list's left end (LPUSH side); jobs are taken from the right.
    ``priority`` maps the prioritised ids still waiting to their priority.
    """

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.priority: dict[str, int] = {}

    def lpush(self, job_id: str) -> None:
        self.ids.insert(0, job_id)

    def rpush(self, job_id: str) -> None:
        self.ids.append(job_id)

    def push(self, job_id: str, *, lifo: bool) -> None:
        """The ``LPUSH``/``RPUSH`` command Bull picks from ``opts.lifo``."""
        if lifo:
            self.rpush(job_id)
        else:
            self.lpush(job_id)

    def insert_by_priority(self, job_id: str, priority: int) -> None:
        """Bull's ``addJobWithPriority`` (lib/commands/includes, spec §3.0.1).

        ZADD the id; c = ZCOUNT 0..priority (itself and equal priorities
        included); LINDEX at len - (c-1) and LINSERT BEFORE that entry, or RPUSH
        when the index is out of range (c = 1). So the job lands left of the
        c-1 rightmost entries: lower numbers run first and equal priorities are
        FIFO as long as the rightmost entries are the prioritised jobs. A lifo
        add or a stall recovery (RPUSH, no zset entry) at the right end shifts
        later insertions, exactly as in Bull (its §3.0.1 example: F overtakes D).
        """
        self.priority[job_id] = priority
        ahead = sum(1 for p in self.priority.values() if p <= priority) - 1
        at = len(self.ids) - ahead
        # Every zset member is in the list here (no stale members), so LINDEX
        # never gets a negative index; at == len is the RPUSH case.
        assert at >= 0
        self.ids.insert(at, job_id)

    def add(self, job_id: str, *, priority: int, lifo: bool) -> None:
        """addJob's and retryJob's enqueue: by priority if non-zero, else by lifo."""
        if priority:
            self.insert_by_priority(job_id, priority)
        else:
            self.push(job_id, lifo=lifo)

    def take(self) -> str:
        """moveToActive: RPOPLPUSH the right end, ZREM it from ``priority``."""
        job_id = self.ids.pop()
        self.priority.pop(job_id, None)
        return job_id

    def remove(self, job_id: str) -> None:
        """removeJob: LREM from the list, ZREM from ``priority``."""
        self.ids.remove(job_id)
        self.priority.pop(job_id, None)


def _ordered(adds: list[tuple[str, int, bool]]) -> tuple[list[str], list[str]]:
    model = WaitList()
    for job_id, priority, lifo in adds:
        model.add(job_id, priority=priority, lifo=lifo)
    wait = list(model.ids)
    return wait, [model.take() for _ in wait]


def test_wait_list_reproduces_bull_observation() -> None:
    """The model itself against Bull 4.12.9's observed order (spec §3.0.1, §9.4)."""
    adds = [("A", 0, False), ("B", 0, False), ("C", 3, False), ("D", 1, False),
            ("E", 0, True), ("F", 1, False)]
    assert _ordered(adds) == (list("BACDFE"), list("EFDCAB"))
    without_e = [a for a in adds if a[0] != "E"]
    assert _ordered(without_e) == (list("BACFD"), list("DFCAB"))


class BullModel(RuleBasedStateMachine):
    """The model: wait/paused order and priority zset, and a state per job id."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.n = 0
        self.name = f"model-{time.monotonic_ns()}"
        self.queue: Queue[Any] = Queue(self.name, _server["url"])
        self.raw = redis.Redis.from_url(_server["url"])
        self.wait = WaitList()  # the wait list, or the paused list while paused
        self.paused = False
        self.state: dict[str, str] = {}
        self.opts: dict[str, tuple[int, bool]] = {}  # id -> (priority, lifo)
        self.active: list[str] = []
        self.k = self.queue.keys

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        self.run(self.queue.close())
        self.loop.close()
        self.raw.close()

    def _in(self, state: str) -> list[str]:
        return sorted(i for i, s in self.state.items() if s == state)

    @rule(delay=st.sampled_from([0, 0, 60_000]), custom=st.booleans(),
          priority=st.sampled_from([0, 1, 2, 3]), lifo=st.booleans())
    def add(self, delay: int, custom: bool, priority: int, lifo: bool) -> None:
        self.n += 1
        opts: dict[str, Any] = {"delay": delay} if delay else {}
        if custom:
            opts["job_id"] = f"c{self.n}"
        if priority:
            opts["priority"] = priority
        if lifo:
            opts["lifo"] = True
        job = self.run(self.queue.add({"n": self.n}, **opts))
        self.opts[job.id] = (priority, lifo)
        if delay:
            self.state[job.id] = "delayed"
        else:
            self.wait.add(job.id, priority=priority, lifo=lifo)
            self.state[job.id] = "wait"

    @precondition(lambda self: bool(self.wait.ids) and not self.paused)
    @rule()
    def process(self) -> None:
        reply = self.run(self.queue.scripts.move_to_active(
            token=TOKEN, lock_duration=60_000, now=int(time.time() * 1000)
        ))
        expected = self.wait.take()
        assert reply is not None
        assert reply[1] == expected
        self.state[expected] = "active"
        self.active.append(expected)

    @precondition(lambda self: bool(self.active))
    @rule(outcome=st.sampled_from(["completed", "retried", "failed"]))
    def finish(self, outcome: str) -> None:
        job_id = self.active.pop(0)
        s = self.queue.scripts
        # One ms back, so a clean(0) in the same millisecond still takes the job
        # (cleanJobsInSet deletes only timestamps < now - grace, as in Bull).
        now = int(time.time() * 1000) - 1
        if outcome == "completed":
            self.run(s.move_to_completed(
                job_id, token=TOKEN, finished_on=now, return_value="1", keep_count=-1,
                keep_age=None, event_payload="{}", fetch_next=False, lock_duration=60_000,
            ))
            self.state[job_id] = "completed"
        elif outcome == "retried":
            priority, lifo = self.opts[job_id]
            # The worker passes the job's own lifo flag (Bull: scripts.retryJobArgs).
            self.run(s.retry_job(job_id, token=TOKEN, lifo=lifo, attempts_made=1,
                                 stacktrace="[]", failed_reason="boom"))
            self.state[job_id] = "wait"
            self.wait.add(job_id, priority=priority, lifo=lifo)
        else:
            self.run(s.move_to_failed(
                job_id, token=TOKEN, finished_on=now, failed_reason="boom", attempts_made=1,
                stacktrace="[]", keep_count=-1, keep_age=None, event_payload="{}",
            ))
            self.state[job_id] = "failed"

    @precondition(lambda self: bool([1 for s in self.state.values() if s == "failed"]))
    @rule(data=st.data())
    def retry_failed(self, data: st.DataObject) -> None:
        job_id = data.draw(st.sampled_from(self._in("failed")))
        job = self.run(self.queue.get_job(job_id))
        self.run(job.retry())
        # reprocessJob: the lifo push, priority ignored (no zset entry).
        self.wait.push(job_id, lifo=self.opts[job_id][1])
        self.state[job_id] = "wait"

    @rule()
    def pause(self) -> None:
        self.run(self.queue.pause())
        self.paused = True

    @rule()
    def resume(self) -> None:
        self.run(self.queue.resume())
        self.paused = False

    @precondition(lambda self: bool([1 for s in self.state.values() if s == "delayed"]))
    @rule(data=st.data())
    def promote(self, data: st.DataObject) -> None:
        job_id = data.draw(st.sampled_from(self._in("delayed")))
        self.run(self.queue.scripts.promote(job_id, token=self.queue.token))
        # promote: by priority, else LPUSH whatever the lifo flag.
        self.wait.add(job_id, priority=self.opts[job_id][0], lifo=False)
        self.state[job_id] = "wait"

    @precondition(lambda self: any(s != "active" for s in self.state.values()))
    @rule(data=st.data())
    def remove(self, data: st.DataObject) -> None:
        job_id = data.draw(st.sampled_from(
            sorted(i for i, s in self.state.items() if s != "active")))
        job = self.run(self.queue.get_job(job_id))
        self.run(job.remove())
        if self.state.pop(job_id) == "wait":
            self.wait.remove(job_id)

    @rule(which=st.sampled_from(["completed", "failed"]))
    def clean(self, which: str) -> None:
        removed = self.run(self.queue.clean(0, which))  # type: ignore[arg-type]
        assert sorted(removed) == self._in(which)
        for job_id in removed:
            del self.state[job_id]

    @precondition(lambda self: bool(self.active))
    @rule()
    def stall(self) -> None:
        s = self.queue.scripts
        job_id = self.active.pop(0)
        # Two checks: the first marks the active jobs as suspects, the second
        # recovers the one whose lock is gone. Deleting the stalled-check
        # throttle stands for the interval having passed (a PX timer could
        # still run after a fast previous step). No job ever reaches the limit.
        self.raw.delete(self.k.stalled_check)
        self.run(s.move_stalled_jobs_to_wait(max_stalled_count=1000, now=0, stalled_interval=1))
        self.raw.delete(self.k.lock(job_id), self.k.stalled_check)
        _, stalled = self.run(s.move_stalled_jobs_to_wait(
            max_stalled_count=1000, now=0, stalled_interval=1))
        assert stalled == [job_id]
        self.wait.rpush(job_id)  # recovered jobs go to the head (RPUSH), as in Bull
        self.state[job_id] = "wait"

    @invariant()
    def matches_redis(self) -> None:
        k = self.k
        pipe = self.raw.pipeline(transaction=False)
        for key in (k.wait, k.paused, k.active):
            pipe.lrange(key, 0, -1)
        for state in ("delayed", "completed", "failed"):
            pipe.zrange(k.key(state), 0, -1)
        pipe.zrange(k.priority, 0, -1, withscores=True)
        wait, paused, active, delayed, completed, failed, prio = pipe.execute()
        got: dict[str, str] = {}
        for state, ids in (("wait", wait), ("wait", paused), ("active", active),
                           ("delayed", delayed), ("completed", completed), ("failed", failed)):
            for raw in ids:
                assert raw.decode() not in got, f"{raw!r} in two states"
                got[raw.decode()] = state
        assert got == self.state
        current, other = (paused, wait) if self.paused else (wait, paused)
        assert [r.decode() for r in current] == self.wait.ids
        assert other == []
        assert {m.decode(): score for m, score in prio} == self.wait.priority


BullModel.TestCase.settings = settings(
    max_examples=30 * SCALE, stateful_step_count=50, deadline=None,
)
TestBullModel = BullModel.TestCase
