"""Scenario 8: a hypothesis state machine checks pyqueue against a model of Bull.

Rules: add (optional delay, custom job id), process one job (moveToActive via
the Scripts API), complete it, fail it (final, or with a retry back to wait),
retry a failed job, pause, resume, promote, remove, clean, and stall (delete a
lock and run the stalled check). After every step the Redis state must equal
the model: each id's state, the counts, and the exact wait/paused order.

Size: 30 examples by default; PYQUEUE_CHAOS_SCALE=10 runs 300.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import deque
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


class BullModel(RuleBasedStateMachine):
    """The model: wait/paused order, and a state per job id."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.n = 0
        self.name = f"model-{time.monotonic_ns()}"
        self.queue: Queue[Any] = Queue(self.name, _server["url"])
        self.raw = redis.Redis.from_url(_server["url"])
        self.wait: deque[str] = deque()  # left = newest; jobs are taken from the right
        self.paused = False
        self.state: dict[str, str] = {}
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

    @rule(delay=st.sampled_from([0, 0, 60_000]), custom=st.booleans())
    def add(self, delay: int, custom: bool) -> None:
        self.n += 1
        opts: dict[str, Any] = {"delay": delay} if delay else {}
        if custom:
            opts["job_id"] = f"c{self.n}"
        job = self.run(self.queue.add({"n": self.n}, **opts))
        if delay:
            self.state[job.id] = "delayed"
        else:
            self.wait.appendleft(job.id)
            self.state[job.id] = "wait"

    @precondition(lambda self: bool(self.wait) and not self.paused)
    @rule()
    def process(self) -> None:
        reply = self.run(self.queue.scripts.move_to_active(
            token=TOKEN, lock_duration=60_000, now=int(time.time() * 1000)
        ))
        expected = self.wait.pop()
        assert reply is not None
        assert reply[1] == expected
        self.state[expected] = "active"
        self.active.append(expected)

    @precondition(lambda self: bool(self.active))
    @rule(ok=st.booleans(), retry=st.booleans())
    def finish(self, ok: bool, retry: bool) -> None:
        job_id = self.active.pop(0)
        s = self.queue.scripts
        now = int(time.time() * 1000)
        if ok:
            self.run(s.move_to_completed(
                job_id, token=TOKEN, finished_on=now, return_value="1", keep_count=-1,
                keep_age=None, event_payload="{}", fetch_next=False, lock_duration=60_000,
            ))
            self.state[job_id] = "completed"
        elif retry:
            self.run(s.retry_job(job_id, token=TOKEN, lifo=False, attempts_made=1,
                                 stacktrace="[]", failed_reason="boom"))
            self.state[job_id] = "wait"
            self.wait.appendleft(job_id)
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
        self.wait.appendleft(job_id)
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
        self.wait.appendleft(job_id)
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
        self.run(s.move_stalled_jobs_to_wait(max_stalled_count=5, now=0, stalled_interval=1))
        self.raw.delete(self.k.lock(job_id))
        time.sleep(0.003)
        _, stalled = self.run(s.move_stalled_jobs_to_wait(
            max_stalled_count=5, now=0, stalled_interval=1))
        assert stalled == [job_id]
        self.wait.append(job_id)  # recovered jobs go to the head (RPUSH), as in Bull
        self.state[job_id] = "wait"

    @invariant()
    def matches_redis(self) -> None:
        k = self.k
        lists = {"wait": k.wait, "paused": k.paused, "active": k.active}
        got: dict[str, str] = {}
        for state, key in lists.items():
            for raw in self.raw.lrange(key, 0, -1):
                assert raw.decode() not in got, f"{raw!r} in two states"
                got[raw.decode()] = "wait" if state == "paused" else state
        for state in ("delayed", "completed", "failed"):
            for raw in self.raw.zrange(k.key(state), 0, -1):
                assert raw.decode() not in got, f"{raw!r} in two states"
                got[raw.decode()] = state
        assert got == self.state
        order_key = k.paused if self.paused else k.wait
        assert [r.decode() for r in self.raw.lrange(order_key, 0, -1)] == list(self.wait)
        assert self.raw.llen(k.wait if self.paused else k.paused) == 0


BullModel.TestCase.settings = settings(
    max_examples=30 * SCALE, stateful_step_count=25, deadline=None,
)
TestBullModel = BullModel.TestCase
