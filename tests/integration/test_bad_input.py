"""Bad input raises InvalidOptionsError naming the problem, and writes nothing."""

from __future__ import annotations

import math
from typing import Any

import pytest
import redis.exceptions

from pyqueue import InvalidOptionsError, Queue, Worker
from pyqueue.embedded import free_port


@pytest.fixture
async def assert_untouched(raw_redis, queue_name):
    yield
    assert await raw_redis.keys(f"bull:{queue_name}:*") == []


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"attempts": 0}, "attempts"),
        ({"attempts": 1.5}, "attempts"),
        ({"delay": -1}, "delay"),
        ({"delay": "5"}, "delay"),
        ({"delay": math.inf}, "delay"),
        ({"priority": 0}, "priority"),
        ({"priority": -3}, "priority"),
        ({"backoff": "x"}, "backoff"),
        ({"backoff": -10}, "backoff"),
        ({"remove_on_complete": "yes"}, "remove_on_complete"),
        ({"remove_on_fail": 1.5}, "remove_on_fail"),
        ({"timeout": 0}, "timeout"),
        ({"lifo": "true"}, "lifo"),
        ({"stack_trace_limit": -1}, "stack_trace_limit"),
        ({"attempt": 3}, "attempt"),
        ({"removeOnComplete": True}, "removeOnComplete"),
        # Past the integers a JavaScript number holds exactly (Node reads these).
        ({"delay": 10**400}, "delay"),
        ({"backoff": 10**400}, "backoff"),
        ({"timeout": 2**53}, "timeout"),
        ({"attempts": 10**400}, "attempts"),
        ({"remove_on_fail": 2**60}, "remove_on_fail"),
    ],
)
async def test_invalid_option_values(make_queue, assert_untouched, options, named):
    queue = make_queue()
    with pytest.raises(InvalidOptionsError, match=named):
        await queue.add({"ok": 1}, **options)


@pytest.mark.parametrize(
    "data", [{1, 2}, float("nan"), object(), {"nested": [float("inf")]}, b"bytes"],
)
async def test_non_json_payloads(make_queue, assert_untouched, data):
    queue = make_queue()
    with pytest.raises(InvalidOptionsError, match="data"):
        await queue.add(data)


@pytest.mark.parametrize(
    "job_id",
    ["wait", "active", "id", "meta-paused", "stalled-check", "x:lock", "x:logs", "", "a@b"],
)
async def test_job_ids_colliding_with_queue_keys(make_queue, assert_untouched, job_id):
    queue = make_queue()
    with pytest.raises(InvalidOptionsError, match="job_id"):
        await queue.add({}, job_id=job_id)


@pytest.mark.parametrize("job_id", [1.5, None.__class__, ["a"], True])
async def test_job_ids_of_wrong_type(make_queue, assert_untouched, job_id):
    queue = make_queue()
    with pytest.raises(InvalidOptionsError, match="job_id"):
        await queue.add({}, job_id=job_id)


@pytest.mark.parametrize("name", ["", 5])
async def test_bad_job_name(make_queue, assert_untouched, name):
    queue = make_queue()
    with pytest.raises(InvalidOptionsError, match="name"):
        await queue.add({}, name=name)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://x", "scheme"),
        ("redis://:bad", "port"),
        ("redis://host:notaport", "port"),
        ("redis://host:99999", "port"),
        ("redis://host/notadb", "database"),
        ("", "redis_url"),
    ],
)
async def test_malformed_redis_urls(queue_name, url, problem):
    with pytest.raises(InvalidOptionsError, match="redis_url") as info:
        Queue(queue_name, url)
    assert problem in str(info.value)
    with pytest.raises(InvalidOptionsError, match="redis_url"):
        Worker(queue_name, lambda job: None, redis_url=url)


async def test_url_password_is_not_echoed(queue_name):
    with pytest.raises(InvalidOptionsError) as info:
        Queue(queue_name, "redis://user:s3cret@host:notaport")
    assert "s3cret" not in str(info.value)


async def test_closed_port_raises_connection_error_unwrapped(queue_name):
    queue: Queue[Any] = Queue(queue_name, f"redis://127.0.0.1:{free_port()}/0")
    try:
        with pytest.raises(redis.exceptions.ConnectionError):
            await queue.add({})
    finally:
        await queue.close()


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [({"name": ""}, "name"), ({"name": "a@b"}, "name"), ({"prefix": ""}, "prefix"),
     ({"model": dict}, "model")],
)
async def test_bad_queue_settings(redis_url, kwargs, named):
    args: dict[str, Any] = {"name": "fine", **kwargs}
    with pytest.raises(InvalidOptionsError, match=named):
        Queue(args.pop("name"), redis_url, **args)


async def test_bad_clean_arguments(make_queue, assert_untouched):
    queue = make_queue()
    with pytest.raises(InvalidOptionsError, match="grace"):
        await queue.clean(-1)
    with pytest.raises(InvalidOptionsError, match="state"):
        await queue.clean(0, "nonsense")  # type: ignore[arg-type]
    with pytest.raises(InvalidOptionsError, match="limit"):
        await queue.clean(0, "completed", limit=-5)
    with pytest.raises(InvalidOptionsError, match="state"):
        await queue.get_job_counts("nonsense")  # type: ignore[arg-type]


async def test_worker_survives_unparseable_stored_job(make_queue, make_worker, raw_redis,
                                                      queue_name):
    queue = make_queue()
    bad = await queue.add({}, attempts=3)
    await raw_redis.hset(f"bull:{queue_name}:{bad.id}", "data", "[" * 100_000)
    good = await queue.add("fine")
    await make_worker(lambda job: job.data)
    assert await good.finished(timeout=10) == "fine"
    stored = await queue.get_job(bad.id)
    assert "not valid JSON" in stored.failed_reason
    assert await stored.get_state() == "failed"
