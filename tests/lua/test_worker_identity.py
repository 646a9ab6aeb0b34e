"""The attempt's worker: moveToActive's ARGV[10] and moveToFinished's ARGV[16].

The identity goes into the job hash in the HSET that stamps processedOn (no
command of its own), with pqWorkerAt = processedOn; without it nothing is written,
as Node's calls (which never send it) write nothing.
"""

from __future__ import annotations

import json

import redis.asyncio as aioredis

from pyqueue._protocol.bull.keys import QueueKeys
from pyqueue._protocol.bull.script_args import finished_argv, move_to_active_argv
from pyqueue._protocol.bull.scripts import Scripts
from pyqueue._protocol.bull.wire_workers import (
    WORKER_AT_FIELD,
    WORKER_FIELD,
    WorkerIdentity,
    identity_json,
    parse_identity,
)

LOCK = 30000
ME = identity_json(WorkerIdentity("w-1", "web-1", 4242))


async def test_move_to_active_stores_the_identity_with_processed_on(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, token: str, now: int,
    command_counter,
) -> None:
    await add("1")
    await add("2")
    await command_counter.start()
    got = await scripts.move_to_active(token=token, lock_duration=LOCK, now=now, worker=ME)
    with_identity = await command_counter.delta()
    assert got is not None
    job = await raw_redis.hgetall(keys.job("1"))
    assert parse_identity(job[WORKER_FIELD.encode()]) == WorkerIdentity("w-1", "web-1", 4242)
    assert job[WORKER_AT_FIELD.encode()] == job[b"processedOn"] == str(now).encode()
    # Node's call (no identity) writes neither field, with the same commands.
    await command_counter.start()
    assert await scripts.move_to_active(token=token, lock_duration=LOCK, now=now + 1) is not None
    assert await command_counter.delta() == with_identity
    other = await raw_redis.hgetall(keys.job("2"))
    assert WORKER_FIELD.encode() not in other
    assert WORKER_AT_FIELD.encode() not in other


async def test_identity_with_a_grouped_limiter(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, token: str, now: int,
) -> None:
    await add("a:g1")
    got = await scripts.move_to_active(
        token=token, lock_duration=LOCK, now=now, limiter_max=5, limiter_duration=1000,
        group_key=True, worker=ME,
    )
    assert got is not None
    assert await raw_redis.get(keys.limiter_group("g1")) == b"1"
    assert await raw_redis.hget(keys.job("a:g1"), WORKER_FIELD) == ME.encode()
    # Padded limiter slots without a limiter are no limiter at all, and no group.
    await add("b:g2")
    assert await scripts.move_to_active(token=token, lock_duration=LOCK, now=now,
                                        worker=ME) is not None
    assert await raw_redis.exists(keys.limiter_group("g2"), keys.limiter) == 0


async def test_fetch_next_stores_the_identity_on_the_next_job(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, token: str,
    other_token: str, now: int,
) -> None:
    await add("1")
    await add("2")
    # The identity the token's worker gave at its fetch goes with its fetch-next.
    first = await scripts.move_to_active(token=token, lock_duration=LOCK, now=now, worker=ME)
    assert first is not None
    got = await scripts.move_to_completed(
        "1", token=token, finished_on=now + 9, return_value='"ok"', keep_count=-1,
        keep_age=None, event_payload=json.dumps({"jobId": "1"}), fetch_next=True,
        lock_duration=LOCK, check_debounce=False,
    )
    assert got is not None
    assert got[1] == "2"
    job = await raw_redis.hgetall(keys.job("2"))
    assert job[WORKER_FIELD.encode()] == ME.encode()
    assert job[WORKER_AT_FIELD.encode()] == str(now + 9).encode()
    # Another token's fetch-next stores nothing: its worker gave no identity.
    await add("3")
    other = await scripts.move_to_active(token=other_token, lock_duration=LOCK, now=now)
    assert other is not None
    await add("4")
    await scripts.move_to_completed(
        "3", token=other_token, finished_on=now + 20, return_value='"ok"', keep_count=-1,
        keep_age=None, event_payload=json.dumps({"jobId": "3"}), fetch_next=True,
        lock_duration=LOCK, check_debounce=False,
    )
    assert WORKER_FIELD.encode() not in await raw_redis.hgetall(keys.job("4"))


def test_builders_pad_the_optional_arguments_before_the_identity() -> None:
    plain = move_to_active_argv("b:q:", token="t", lock_duration=1, now=2, job_id="",
                                limiter_max=None, limiter_duration=None, bounce_back=False,
                                group_key=False)
    assert plain == ["b:q:", "t", 1, 2, ""]
    padded = move_to_active_argv("b:q:", token="t", lock_duration=1, now=2, job_id="",
                                 limiter_max=None, limiter_duration=None, bounce_back=False,
                                 group_key=False, worker=ME)
    assert padded == ["b:q:", "t", 1, 2, "", "", "", "", "", ME]
    limited = move_to_active_argv("b:q:", token="t", lock_duration=1, now=2, job_id="",
                                  limiter_max=3, limiter_duration=9, bounce_back=True,
                                  group_key=False, worker=ME)
    assert limited == ["b:q:", "t", 1, 2, "", 3, 9, "true", "", ME]
    common = {"job_id": "1", "finished_on": 5, "field": "returnvalue", "value": "1",
              "token": "t", "keep_json": "{}", "event_payload": "{}", "fetch_next": True,
              "lock_duration": 1, "metrics_max_points": None, "attempts_made": None,
              "stacktrace": None}
    assert len(finished_argv("b:q:", **common)) == 12
    with_worker = finished_argv("b:q:", **common, worker=ME)
    assert with_worker[12:] == ["", "", "", ME]
    no_debounce = finished_argv("b:q:", **common, check_debounce=False, worker=ME)
    assert no_debounce[12:] == ["", "", "0", ME]
