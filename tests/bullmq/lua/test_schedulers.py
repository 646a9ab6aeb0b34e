"""Job schedulers against golden vectors from real BullMQ (tests/data/bullmq-schedulers.json):
cron next times, and `every` schedulers upserted and chained with the clock pinned."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from pyqueue._protocol.bullmq.keys import BullMQKeys
from pyqueue._protocol.bullmq.protocol import BullMQProtocol
from pyqueue._protocol.bullmq.schedulers import chain_plan, pattern_next
from pyqueue._protocol.interface import SchedulerRepeat
from pyqueue.errors import InvalidOptionsError

VECTORS = json.loads((Path(__file__).resolve().parents[2] / "data" /
                      "bullmq-schedulers.json").read_text())


@pytest.mark.parametrize("case", VECTORS["cron"], ids=lambda c: f"{c['pattern']}@{c['tz']}")
def test_cron_next_times_match_bullmq(case: dict[str, Any]) -> None:
    repeat = SchedulerRepeat(pattern=case["pattern"], tz=case["tz"],
                             start_date=case["startDate"])
    at, got = case["now"], []
    for _ in case["next"]:
        at = pattern_next(repeat, at, at)
        got.append(at)
        if at is None:
            break
    assert got == case["next"]


def _repeat(raw: dict[str, Any]) -> SchedulerRepeat:
    return SchedulerRepeat(every=raw.get("every"), pattern=raw.get("pattern"), tz=raw.get("tz"),
                           limit=raw.get("limit"), start_date=raw.get("startDate"),
                           offset=raw.get("offset"))


@pytest.mark.parametrize("case", VECTORS["every"],
                         ids=lambda c: json.dumps(c["steps"][0]["repeat"]))
async def test_upserts_and_chains_match_bullmq(
    case: dict[str, Any], proto: BullMQProtocol, keys: BullMQKeys, raw_redis: aioredis.Redis
) -> None:
    last: str | None = None
    for step in case["steps"]:
        if step["op"] == "upsert":
            result = await proto.upsert_job_scheduler(
                "sched", _repeat(step["repeat"]), now=step["now"], name="tick",
                data_json='{"n":1}')
            assert result is not None
            job_id, delay = result
            assert delay == step["delay"]
        else:
            assert last is not None
            record = proto.decode_job(last, await proto.get_job_hash(last))
            job_id = await proto.schedule_next(last, record.raw_opts, record.repeat_job_key,
                                               now=step["now"])
        assert job_id == step["jobId"], step
        next_run = await raw_redis.zscore(keys.repeat, "sched")
        offset = await raw_redis.hget(keys.scheduler("sched"), "offset")
        assert (int(next_run), int(offset)) == (step["next"], step["offset"]), step
        if job_id is not None:
            last = job_id


async def test_only_the_current_iteration_schedules_the_next(
    proto: BullMQProtocol, raw_redis: aioredis.Redis, keys: BullMQKeys
) -> None:
    now = 1_800_000_000_000
    first, _ = await proto.upsert_job_scheduler("s", SchedulerRepeat(every=60_000), now=now) \
        or ("", 0)
    record = proto.decode_job(first, await proto.get_job_hash(first))
    second = await proto.schedule_next(first, record.raw_opts, "s", now=now + 10)
    assert second == "repeat:s:1800000060000"
    # The same iteration again (a second worker, a retry): nothing more.
    assert await proto.schedule_next(first, record.raw_opts, "s", now=now + 20) is None
    assert await raw_redis.hget(keys.scheduler("s"), "ic") == b"2"
    assert await proto.schedule_next("1", {}, None, now=now) is None
    assert await proto.remove_job_scheduler("s") is True
    assert await proto.remove_job_scheduler("s") is False
    assert not await raw_redis.exists(keys.job(second))  # its delayed iteration went too
    assert await raw_redis.exists(keys.job(first))  # the started one stays


def test_limits_end_dates_and_bad_options() -> None:
    opts = {"repeat": {"every": 1000, "count": 2, "limit": 2}}
    assert chain_plan("s", opts, now=5) is None
    ended = {"repeat": {"every": 1000, "endDate": 10}}
    assert chain_plan("s", ended, now=11) is None
    plan = chain_plan("s", {"repeat": {"pattern": "*/5 * * * *", "count": 1},
                            "prevMillis": 300_000, "attempts": 2}, now=1_000)
    assert plan is not None
    next_millis, iteration = plan
    assert next_millis == 600_000
    assert iteration == {"attempts": 2, "repeat": {"pattern": "*/5 * * * *", "count": 2},
                         "prevMillis": 600_000, "timestamp": 1_000, "repeatJobKey": "s"}
    with pytest.raises(InvalidOptionsError, match="exactly one of every and pattern"):
        SchedulerRepeat()
    with pytest.raises(InvalidOptionsError, match=r"repeat\.cron"):
        SchedulerRepeat(pattern="not a cron")
    with pytest.raises(InvalidOptionsError, match=r"repeat\.every"):
        SchedulerRepeat(every=0)
