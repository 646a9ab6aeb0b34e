"""Issue 28 against real Node Bull: ids, attempts and states as Bull has them.

* Node Bull's own adds are untouched by pyqueue's refusal of digit-only custom ids: a
  pyqueue worker still runs a Node job whose custom id is all digits.
* ``attemptsMade`` after a success is what Bull stores (Bull counts failed attempts
  only: a job done on its first try keeps 0).
* Bull's ``getState`` answers ``"stuck"`` for a job whose hash is gone; pyqueue's
  ``get_job_state`` raises :class:`~pyqueue.JobNotFound` instead.
"""

from __future__ import annotations

from typing import Any

import pytest
from tests.interop.bull import NodeBull
from tests.interop.test_python_node import PY_FAST, nadd, nadmin, njobs, nrun

from pyqueue import InvalidOptionsError, Job, JobNotFound, Queue, Worker, WorkerOptions


async def test_a_node_job_with_a_digit_only_custom_id_runs_on_pyqueue(
    node_bull: NodeBull, redis_url: str, queue_name: str
) -> None:
    ids = await nadd(node_bull, queue_name, [
        {"data": {"n": 1}, "opts": {"jobId": "77"}},
        {"data": {"n": 2}},
    ])
    assert ids == ["77", "2"]
    async with Queue(queue_name, redis_url) as queue:
        with pytest.raises(InvalidOptionsError, match="job_id"):
            await queue.add({"n": 3}, job_id="78")

        async def double(job: Job[Any]) -> int:
            return int(job.data["n"]) * 2

        async with Worker(queue, double, options=WorkerOptions(**PY_FAST)):
            node_job = await queue.get_job("77")
            assert node_job is not None
            assert await node_job.finished(timeout=10) == 2
            other = await queue.get_job("2")
            assert other is not None
            assert await other.finished(timeout=10) == 4


async def _attempts_after(runner: str, node_bull: NodeBull, redis_url: str, queue: str) -> Any:
    ids = await nadd(node_bull, queue, [
        {"name": "once", "data": {}},
        {"name": "flaky", "data": {}, "opts": {"attempts": 3}},
    ])
    if runner == "node":
        await nrun(node_bull, queue, "process", until=2, timeoutMs=20000,
                   behaviour={"once": {"return": "ok"},
                              "flaky": {"failTimes": 1, "return": "ok"}})
    else:
        async def handler(job: Job[Any]) -> str:
            if job.name == "flaky" and job.attempts_made < 1:
                raise RuntimeError("fail 1")
            return "ok"

        async with Queue(queue, redis_url) as pq, Worker(pq, handler,
                                                         options=WorkerOptions(**PY_FAST)):
            for job_id in ids:
                job = await pq.get_job(job_id)
                assert job is not None
                await job.finished(timeout=10)
    jobs = await njobs(node_bull, queue, ids)
    return [(jobs[i]["state"], jobs[i]["json"]["attemptsMade"]) for i in ids]


async def test_attempts_made_after_a_success_is_what_bull_stores(
    node_bull: NodeBull, redis_url: str, queue_name: str
) -> None:
    node = await _attempts_after("node", node_bull, redis_url, queue_name + "-node")
    py = await _attempts_after("py", node_bull, redis_url, queue_name + "-py")
    assert node == py == [("completed", 0), ("completed", 1)]


async def test_the_state_of_a_missing_job(
    node_bull: NodeBull, redis_url: str, queue_name: str
) -> None:
    bull_says = await nadmin(node_bull, queue_name, "stateOf", id="gone")
    assert bull_says["value"] == "stuck"  # Bull 4's answer, also for a live job in no list
    async with Queue(queue_name, redis_url) as queue:
        with pytest.raises(JobNotFound, match="gone"):
            await queue.get_job_state("gone")
        job = await queue.add({})
        assert await job.get_state() == "waiting"
        await job.remove()
        with pytest.raises(JobNotFound):
            await job.get_state()
