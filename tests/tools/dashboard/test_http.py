"""The dashboard over HTTP (no browser): auth, CSRF, read-only, localhost rule, feeds.

Requests go through httpx's ASGI transport into the real app, on a real Redis.
"""

from __future__ import annotations

import asyncio
import base64
import re
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from pyqueue import Queue, Worker, WorkerOptions
from pyqueue.tools.dashboard import create_app
from pyqueue.tools.dashboard.data import MINUTES, Repository, Throughput, discover_queues
from pyqueue.tools.dashboard.server import check_bind

FAST = WorkerOptions(drain_delay=1, guard_interval=200, stalled_interval=0, shutdown_grace=5)
LOCAL = ("127.0.0.1", 50000)


@pytest.fixture
def prefix() -> str:
    return f"dash{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def queue(redis_url: str, prefix: str) -> AsyncIterator[Queue[Any]]:
    async with Queue("jobs", redis_url, prefix=prefix) as q:
        yield q


def _client(app: Any, client: tuple[str, int] = LOCAL, **kw: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=client)
    # A loopback Host: without auth the dashboard answers no other name (DNS rebinding).
    return httpx.AsyncClient(transport=transport, base_url="http://localhost:8765", **kw)


async def _failed_job(queue: Queue[Any], redis_url: str, prefix: str) -> str:
    def fail(job: Any) -> None:
        raise RuntimeError("nope")

    job = await queue.add({"n": 1})
    async with Worker("jobs", fail, redis_url=redis_url, prefix=prefix, options=FAST):
        await _until(queue.get_failed_count, 1)
    return job.id


async def _until(read: Callable[[], Awaitable[int]], want: int, timeout: float = 15.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if await read() == want:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{read} never reached {want}")


async def _csrf(client: httpx.AsyncClient, path: str) -> str:
    page = await client.get(path)
    assert page.status_code == 200
    found = re.search(r'name="csrf" value="([0-9a-f]{64})"', page.text)
    assert found, "no CSRF field on the page"
    return found.group(1)


async def test_actions_need_the_csrf_token_and_a_same_origin(
    redis_url: str, prefix: str, queue: Queue[Any]
) -> None:
    job_id = await _failed_job(queue, redis_url, prefix)
    app = create_app(redis_url, prefix)
    form = {"op": "retry", "queue": "jobs", "id": job_id, "next": "/"}
    async with _client(app) as client:
        token = await _csrf(client, "/queue?name=jobs&state=failed")
        missing = await client.post("/action", data=form)
        assert missing.status_code == 403
        wrong = await client.post("/action", data={**form, "csrf": "0" * 64})
        assert wrong.status_code == 403
        cross = await client.post("/action", data={**form, "csrf": token},
                                  headers={"origin": "http://evil.test"})
        assert cross.status_code == 403
        assert await queue.get_job_state(job_id) == "failed"
        # Another browser (no cookie) cannot replay a token either.
        async with _client(app) as other:
            replay = await other.post("/action", data={**form, "csrf": token})
            assert replay.status_code == 403
        ok = await client.post("/action", data={**form, "csrf": token},
                               headers={"origin": "http://localhost:8765"})
        assert ok.status_code == 303
        assert ok.headers["location"] == "/"
        assert await queue.get_job_state(job_id) == "waiting"
    await app.aclose()


async def test_next_never_leaves_the_dashboard(
    redis_url: str, prefix: str, queue: Queue[Any]
) -> None:
    await queue.add({"n": 1})
    app = create_app(redis_url, prefix)
    async with _client(app) as client:
        token = await _csrf(client, "/queue?name=jobs")
        for target in ("//evil.test/x", "http://evil.test/", "/\\evil.test", ""):
            sent = await client.post("/action", data={"op": "pause", "queue": "jobs",
                                                      "csrf": token, "next": target})
            assert sent.status_code == 303
            assert sent.headers["location"] == "/"
    await app.aclose()


async def test_read_only_refuses_posts(redis_url: str, prefix: str, queue: Queue[Any]) -> None:
    await queue.add({"n": 1})
    app = create_app(redis_url, prefix, read_only=True)
    async with _client(app) as client:
        page = await client.get("/queue?name=jobs")
        assert "<form method=\"post\"" not in page.text
        refused = await client.post("/action", data={"op": "pause", "queue": "jobs",
                                                      "csrf": "x"})
        assert refused.status_code == 403
        assert "read-only" in refused.text
    assert not await queue.is_paused()
    await app.aclose()


async def test_without_auth_only_loopback_clients_are_answered(
    redis_url: str, prefix: str, queue: Queue[Any]
) -> None:
    await queue.add({"n": 1})
    app = create_app(redis_url, prefix)
    async with _client(app, ("10.1.2.3", 4000)) as remote:
        refused = await remote.get("/")
        assert refused.status_code == 403
        assert "answers localhost only" in refused.text
    for host in ("127.0.0.1", "::1"):
        async with _client(app, (host, 4000)) as local:
            shown = await local.get("/")
            assert shown.status_code == 200
            assert "No authentication configured" in shown.text
    await app.aclose()
    with pytest.raises(ValueError, match=r"refusing to listen on '0\.0\.0\.0' without auth"):
        check_bind("0.0.0.0", auth=False)
    check_bind("0.0.0.0", auth=True)
    check_bind("127.0.0.1", auth=False)


async def test_token_auth_for_api_clients_and_browsers(
    redis_url: str, prefix: str, queue: Queue[Any]
) -> None:
    await queue.add({"n": 1})
    app = create_app(redis_url, prefix, token="tok-1234567")
    async with _client(app, ("10.1.2.3", 4000)) as client:
        assert (await client.get("/api/overview")).status_code == 401
        wrong = await client.get("/api/overview", headers={"authorization": "Bearer tok-x"})
        assert wrong.status_code == 401
        right = await client.get("/api/overview",
                                 headers={"authorization": "Bearer tok-1234567"})
        assert right.status_code == 200
        assert [q["name"] for q in right.json()["queues"]] == ["jobs"]
        # The session cookie is not the token.
        signed = await client.get("/queue?name=jobs&token=tok-1234567")
        assert signed.status_code == 303
        assert signed.headers["location"] == "/queue?name=jobs"
        assert "tok-1234567" not in signed.headers["set-cookie"]
        assert (await client.get("/queue?name=jobs")).status_code == 200
    async with _client(app) as forged:
        forged.cookies.set("pqd_session", "0" * 64)
        assert (await forged.get("/")).status_code == 401
    await app.aclose()


async def test_basic_auth_statuses(redis_url: str, prefix: str) -> None:
    app = create_app(redis_url, prefix, basic_auth=("ops", "pw-123"))

    def basic(user: str, password: str) -> dict[str, str]:
        encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"authorization": "Basic " + encoded}

    async with _client(app, ("10.1.2.3", 4000)) as client:
        none = await client.get("/")
        assert none.status_code == 401
        assert none.headers["www-authenticate"].startswith("Basic")
        assert (await client.get("/", headers=basic("ops", "pw-12"))).status_code == 401
        assert (await client.get("/", headers=basic("op", "pw-123"))).status_code == 401
        assert (await client.get("/", headers={"authorization": "Basic !!"})).status_code == 401
        assert (await client.get("/", headers=basic("ops", "pw-123"))).status_code == 200
    await app.aclose()


def test_bad_settings_are_named() -> None:
    with pytest.raises(ValueError, match="token: must be a string of at least 8"):
        create_app("redis://127.0.0.1:1", "bull", token="short")
    with pytest.raises(ValueError, match="basic_auth: must be a"):
        create_app("redis://127.0.0.1:1", "bull", basic_auth=("a:b", "c"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="prefix: must be a non-empty string"):
        create_app("redis://127.0.0.1:1", "")


async def test_bad_action_input_is_reported(
    redis_url: str, prefix: str, queue: Queue[Any]
) -> None:
    await queue.add({"n": 1})
    app = create_app(redis_url, prefix)
    async with _client(app) as client:
        token = await _csrf(client, "/queue?name=jobs")
        cases = {
            "Not done: age: must be a whole number, got 'soon'": {
                "op": "clean", "state": "completed", "age": "soon", "unit": "m",
            },
            "Not done: state: must be one of": {"op": "clean", "state": "nope", "age": "1"},
            "Not done: op: unknown action 'explode'": {"op": "explode"},
            "Not done: queue 'jobs' has no job '99'": {"op": "retry", "id": "99"},
            "Failed: Couldn't retry job": {"op": "retry", "id": "1"},
        }
        for expected, fields in cases.items():
            sent = await client.post("/action", data={"queue": "jobs", "csrf": token,
                                                      "confirm": "yes", **fields})
            assert sent.status_code == 303
            shown = await client.get("/")
            assert expected in shown.text.replace("&#39;", "'"), fields
    await app.aclose()


async def test_discovery_finds_queues_not_job_hashes(redis_url: str, prefix: str) -> None:
    async with Queue("a", redis_url, prefix=prefix) as a, \
            Queue("b:with:colons", redis_url, prefix=prefix) as b:
        await a.add({"n": 1}, job_id="weird:id")  # its hash is <prefix>:a:weird:id
        await b.add({"n": 1})
        async with Queue("only-paused", redis_url, prefix=prefix) as paused:
            await paused.pause()
        assert await discover_queues(a.client, prefix) == ["a", "b:with:colons", "only-paused"]
        # A prefix with glob characters matches only itself.
        assert await discover_queues(a.client, prefix[:-1] + "?") == []


def test_metrics_points_land_in_their_minutes() -> None:
    from pyqueue.tools.dashboard.data import _place_metrics

    start = 1_000 * 60_000
    series = [0] * MINUTES
    prev_ts = start + 59 * 60_000 + 10_000  # in the last minute
    metrics = {"meta": {"count": 20, "prevTS": prev_ts, "prevCount": 15},
               "data": ["3", "0", "7"], "count": 3}
    _place_metrics(metrics, start, series)
    assert series[59] == 5  # counted since prevTS
    assert series[58] == 3
    assert series[57] == 0
    assert series[56] == 7
    assert sum(series) == 15


async def test_throughput_from_bull_metrics_and_from_finished_sets(
    redis_url: str, prefix: str
) -> None:
    metered = WorkerOptions(drain_delay=1, guard_interval=200, stalled_interval=0,
                            shutdown_grace=5, metrics_max_data_points=60)

    def handle(job: Any) -> None:
        if job.data.get("fail"):
            raise RuntimeError("x")

    async with Queue("m", redis_url, prefix=prefix) as m, \
            Queue("f", redis_url, prefix=prefix) as f:
        for n in range(5):
            await m.add({"n": n, "fail": n == 4})
            await f.add({"n": n, "fail": n >= 3})
        async with Worker("m", handle, redis_url=redis_url, prefix=prefix, options=metered), \
                Worker("f", handle, redis_url=redis_url, prefix=prefix, options=FAST):
            await _until(m.get_completed_count, 4)
            await _until(m.get_failed_count, 1)
            await _until(f.get_completed_count, 3)
            await _until(f.get_failed_count, 2)
        repo = Repository(m.client, prefix)
        from_metrics: Throughput = await repo.throughput(["m"])
        assert from_metrics.source == "metrics"
        assert (sum(from_metrics.completed), sum(from_metrics.failed)) == (4, 1)
        from_sets = await repo.throughput(["f"])
        assert from_sets.source == "finished"
        assert (sum(from_sets.completed), sum(from_sets.failed)) == (3, 2)
        both = await repo.throughput(["f", "m"])
        assert (sum(both.completed), sum(both.failed), both.source) == (7, 3, "finished+metrics")
        # All of it in the current minute, the last point.
        assert both.completed[-1] + both.completed[-2] == 7


async def test_queue_page_shows_latency_of_recent_completed_jobs(
    redis_url: str, prefix: str, queue: Queue[Any]
) -> None:
    # Exact finishing fields, written as a worker leaves them, so the figures are known.
    base = 1_700_000_000_000
    for n, (wait, run) in enumerate([(100, 50), (300, 10), (200, 30), (5000, 900)]):
        job = await queue.add({"n": n}, timestamp=base, delay=1000 if n == 3 else 0)
        started = base + wait + (1000 if n == 3 else 0)
        await queue.client.hset(queue.keys.job(job.id), mapping={
            "processedOn": started, "finishedOn": started + run,
        })
        await queue.client.lrem(queue.keys.wait, 0, job.id)
        await queue.client.zrem(queue.keys.delayed, job.id)
        await queue.client.zadd(queue.keys.completed, {job.id: started + run})
    app = create_app(redis_url, prefix)
    async with _client(app) as client:
        page = (await client.get("/queue?name=jobs")).text
    await app.aclose()
    shown = dict(re.findall(r'data-field="([a-z0-9-]+)">(\d+) ms', page))
    # Medians of [100, 200, 300, 5000] and [10, 30, 50, 900] (upper middle), p95 the largest.
    assert shown == {"wait-p50": "300", "wait-p95": "5000", "run-p50": "50", "run-p95": "900"}
    assert "Latency of the 4 newest completed jobs" in page


async def test_overview_does_not_wait_for_a_long_scan(
    redis_url: str, prefix: str, queue: Queue[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from pyqueue.tools.dashboard import app as app_module

    await queue.add({"n": 1})
    # No waiting at all: the first page must answer before the SCAN's first reply.
    monkeypatch.setattr(app_module, "FIRST_SCAN_WAIT", 0)
    app = create_app(redis_url, prefix)
    async with _client(app) as client:
        first = await client.get("/")
        assert first.status_code == 200
        assert "Scanning the keyspace for queues" in first.text
        assert '<meta http-equiv="refresh"' in first.text
        assert (await client.get("/api/overview")).json()["scanning"] is True
        # Queue pages need no scan: the queue's own keys say it exists.
        assert (await client.get("/queue?name=jobs")).status_code == 200
        assert (await client.get("/queue?name=nope")).status_code == 404
        names = await app.dashboard.repo.queue_names(wait=None)
        assert names == ["jobs"]
        again = await client.get("/")
        assert 'data-queue="jobs"' in again.text
    await app.aclose()


async def test_redis_down_is_a_clear_503() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on the port now.
    app = create_app(f"redis://127.0.0.1:{port}/0", "bull")
    async with _client(app) as client:
        for path in ("/", "/queue?name=jobs", "/api/overview"):
            shown = await client.get(path)
            assert shown.status_code == 503, path
            assert "Redis error" in shown.text, path
    await app.aclose()


async def test_one_unreadable_queue_does_not_take_down_the_overview(
    redis_url: str, prefix: str, queue: Queue[Any], raw_redis: Any
) -> None:
    """Another app (or a bug) left a key of the wrong type: that queue is marked, the rest shown."""
    await queue.add({"n": 1})
    await raw_redis.set(f"{prefix}:broken:id", 0)
    await raw_redis.set(f"{prefix}:broken:wait", "not a list")
    app = create_app(redis_url, prefix, queues=["jobs", "broken"])
    async with _client(app) as client:
        page = await client.get("/")
        assert page.status_code == 200, page.text[:500]
        assert "broken" in page.text
        assert "WRONGTYPE" in page.text
        feed = await client.get("/api/overview")
        assert feed.status_code == 200
    await app.aclose()


async def test_overview_of_many_queues_stays_within_the_connection_pool(
    redis_url: str, prefix: str, raw_redis: Any
) -> None:
    """Hundreds of queues under one prefix: the overview reads them a bounded few at a time
    (redis-py's pool allows 100 connections; one per queue at once ran out)."""
    names = [f"many-{i}" for i in range(300)]
    async with raw_redis.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.set(f"{prefix}:{name}:id", 0)
        await pipe.execute()
    app = create_app(redis_url, prefix, queues=names)
    async with _client(app) as client:
        page = await client.get("/")
        assert page.status_code == 200, page.text[:500]
        assert "many-299" in page.text
        feed = await client.get("/api/overview")
        assert feed.status_code == 200, feed.text[:500]
    await app.aclose()
