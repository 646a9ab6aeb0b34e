"""Job schedulers with real Node BullMQ: the same upsert leaves the same state; a Node
Worker runs and chains pyqueue's schedulers, pyqueue chains Node's; and Node and
pyqueue upserting and working one scheduler together make one iteration per tick, through
the protocol and through the public API (Queue.upsert_job_scheduler, Worker)."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from typing import Any

import redis.asyncio as aioredis
from tests.bullmq.nodebullmq import NodeBullMQ, single
from tests.bullmq.pyworker import now_ms, work
from tests.bullmq.state import snapshot

from pyqueue import Job, Queue, Worker
from pyqueue._protocol.bullmq.protocol import BullMQProtocol
from pyqueue._protocol.interface import SchedulerRepeat


def _fresh() -> str:
    return f"s-{uuid.uuid4().hex[:10]}"


# What an upsert's clock decides: an iteration's id and time, and an `every` offset.
_TIMED_OPTS = ("jobId", "prevMillis", "delay", "timestamp")


async def _state(raw: aioredis.Redis, queue: str) -> dict[str, Any]:
    state = await snapshot(raw, f"bull:{queue}:", skip=("marker", "stalled", "stalled-check"))
    state.get("meta", {}).get("value", {}).pop("version", None)
    out: dict[str, Any] = {}
    for name, entry in state.items():
        key, value = name, entry["value"]
        if key.startswith("repeat:") and isinstance(value, dict):
            value.pop("offset", None)
            value.pop("delay", None)
            for field in _TIMED_OPTS:
                if isinstance(value.get("opts"), dict):
                    value["opts"].pop(field, None)
            if key.count(":") == 2:  # an iteration, "repeat:<scheduler>:<ms>"
                key = key.rsplit(":", 1)[0] + ":<ms>"
        if key in ("wait", "delayed"):
            value = len(value)  # members are iteration ids: timed
        if key != "events":  # the same events, with timed fields: covered elsewhere
            out[key] = value
    return out


UPSERTS: list[tuple[str, dict[str, Any], dict[str, Any], SchedulerRepeat, dict[str, Any]]] = [
    ("every", {"every": 60_000}, {"name": "tick", "data": {"n": 1},
                                  "opts": {"attempts": 3, "removeOnComplete": True}},
     SchedulerRepeat(every=60_000), {"name": "tick", "data_json": '{"n":1}',
                                     "template_opts": {"attempts": 3, "removeOnComplete": True}}),
    ("cron", {"pattern": "*/5 * * * *", "tz": "Europe/Berlin", "limit": 5}, {"name": "cron"},
     SchedulerRepeat(pattern="*/5 * * * *", tz="Europe/Berlin", limit=5), {"name": "cron"}),
    ("plain", {"every": 1_000}, {}, SchedulerRepeat(every=1_000), {}),
]


async def test_upserts_leave_bullmqs_state(
    node_bullmq: NodeBullMQ, raw_redis: aioredis.Redis
) -> None:
    node_q, py_q = _fresh(), _fresh()
    proto = BullMQProtocol(raw_redis, "bull", py_q)
    for sid, repeat, template, py_repeat, py_kw in UPSERTS:
        result = await node_bullmq.admin(node_q, "upsertJobScheduler", schedulerId=sid,
                                         repeat=repeat, template=template)
        assert result["ok"], result
        await proto.upsert_job_scheduler(sid, py_repeat, now=now_ms(), **py_kw)
    assert await _state(raw_redis, py_q) == await _state(raw_redis, node_q)
    node_list = (await node_bullmq.admin(py_q, "getJobSchedulers"))["value"]
    ours = await proto.get_job_schedulers()
    assert [{k: v for k, v in s.items() if k != "offset"} for s in ours] == [
        {k: v for k, v in s.items() if k != "offset"} for s in node_list
    ]


async def test_node_worker_runs_and_chains_pyqueues_scheduler(
    node_bullmq: NodeBullMQ, raw_redis: aioredis.Redis, bullmq_version: str
) -> None:
    queue = _fresh()
    proto = BullMQProtocol(raw_redis, "bull", queue)
    await proto.upsert_job_scheduler("fast", SchedulerRepeat(every=300, limit=4), now=now_ms(),
                                     name="tick", data_json='{"k":"v"}')
    events = await node_bullmq.arun({"queue": queue, "action": "process", "until": 4,
                                     "timeoutMs": 20_000})
    runs = [e for e in events if e["event"] == "processing"]
    assert [e["data"] for e in runs] == [{"k": "v"}] * 4
    assert len({e["id"] for e in runs}) == 4
    assert all(e["id"].startswith("repeat:fast:") for e in runs)
    assert [e["repeatJobKey"] for e in runs] == ["fast"] * 4
    # The fourth iteration was the limit: nothing more is scheduled.
    assert await proto.get_counts(["delayed", "waiting"]) == {"delayed": 0, "waiting": 0}


async def test_pyqueue_chains_a_node_scheduler(
    node_bullmq: NodeBullMQ, raw_redis: aioredis.Redis
) -> None:
    queue = _fresh()
    result = await node_bullmq.admin(queue, "upsertJobScheduler", schedulerId="n",
                                     repeat={"every": 300}, template={"name": "nt"})
    assert result["ok"], result
    proto = BullMQProtocol(raw_redis, "bull", queue)
    out = await work(proto, {"nt": {"return": 1}}, until=3)
    assert len(set(out.completed)) == 3
    schedulers = (await node_bullmq.admin(queue, "getJobSchedulers"))["value"]
    assert schedulers[0]["iterationCount"] == 4  # three ran, the fourth waits
    ids = await proto.get_job_ids("delayed", 0, -1, asc=True) + \
        await proto.get_job_ids("waiting", 0, -1, asc=True)
    assert len(ids) == 1
    assert ids[0] == f"repeat:n:{schedulers[0]['next']}"


async def test_node_and_pyqueue_together_make_one_iteration_per_tick(
    node_bullmq: NodeBullMQ, raw_redis: aioredis.Redis
) -> None:
    queue = _fresh()
    proto = BullMQProtocol(raw_redis, "bull", queue)
    repeat = SchedulerRepeat(every=250)
    for _ in range(2):  # both sides declare the scheduler at start-up, twice
        await node_bullmq.admin(queue, "upsertJobScheduler", schedulerId="both",
                                repeat={"every": 250}, template={"name": "t"})
        await proto.upsert_job_scheduler("both", repeat, now=now_ms(), name="t")
    with node_bullmq.start({"queue": queue, "action": "process", "until": 6,
                            "timeoutMs": 20_000}) as node_worker:
        await node_worker.await_for("ready", timeout=15)
        out = await work(proto, {"t": {"return": 1}}, until=3, timeout=20)
        await node_worker.await_for("done", timeout=20)
        node_runs = [e["id"] for e in node_worker.named("processing")]
    ours = [job_id for job_id, _ in out.processed]
    everyone = node_runs + ours
    assert len(everyone) == len(set(everyone)), everyone  # no iteration ran twice
    ticks = sorted(int(i.rsplit(":", 1)[1]) for i in everyone)
    assert all(b - a >= 250 for a, b in itertools.pairwise(ticks)), ticks
    await asyncio.sleep(0)
    assert single(node_worker.events, "done")["reason"] == "until"


async def test_public_api_and_node_upserting_together_with_both_workers(
    node_bullmq: NodeBullMQ, raw_redis: aioredis.Redis, redis_url: str
) -> None:
    """Queue.upsert_job_scheduler and Node's upsertJobScheduler race on one scheduler,
    then a Node Worker and a pyqueue Worker consume it: each tick runs once."""
    queue = _fresh()
    every = 400
    ours: list[str] = []
    enough = asyncio.Event()

    async def handler(job: Job[Any]) -> str:
        ours.append(job.id)
        if len(ours) >= 2:
            enough.set()
        return job.id

    async with Queue(queue, redis_url, protocol="bullmq") as mq:

        async def node_upsert() -> None:
            result = await node_bullmq.admin(queue, "upsertJobScheduler", schedulerId="race",
                                             repeat={"every": every}, template={"name": "r"})
            assert result["ok"], result

        # Both sides declare the scheduler at start-up, at the same time, repeatedly.
        await asyncio.gather(*(node_upsert() for _ in range(3)),
                             *(mq.upsert_job_scheduler("race", every=every, name="r")
                               for _ in range(3)))
        assert len(await mq.get_job_ids(["waiting", "delayed"])) == 1
        with node_bullmq.start({"queue": queue, "action": "process", "until": 4,
                                "timeoutMs": 60_000}) as node_worker:
            await node_worker.await_for("ready", timeout=15)
            async with Worker(mq, handler):
                await asyncio.wait_for(enough.wait(), 30)
            # Both consumed side by side until pyqueue had its share; under load
            # pyqueue's worker won nearly every tick, so Node finishes its four alone.
            await node_worker.await_for("done", timeout=45)
            node_runs = [e["id"] for e in node_worker.named("processing")]
        assert single(node_worker.events, "done")["reason"] == "until"
        assert await mq.remove_job_scheduler("race") is True
    everyone = node_runs + ours
    assert len(node_runs) >= 4
    assert len(ours) >= 2
    assert len(everyone) == len(set(everyone)), everyone  # no iteration ran twice
    assert all(i.startswith("repeat:race:") for i in everyone)
    ticks = sorted(int(i.rsplit(":", 1)[1]) for i in everyone)
    assert all(b - a >= every for a, b in itertools.pairwise(ticks)), ticks
    proto = BullMQProtocol(raw_redis, "bull", queue)
    completed = await proto.get_job_ids("completed", 0, -1, asc=True)
    assert sorted(completed) == sorted(everyone)
