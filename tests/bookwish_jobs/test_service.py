"""The running service: failed-job hook (alert on the last failure) and queue.metrics."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy.engine import make_url

from bookwish_jobs import names
from bookwish_jobs.config import load_settings
from bookwish_jobs.context import AppContext
from bookwish_jobs.db import Database
from bookwish_jobs.fakes import FakeExpo
from bookwish_jobs.producers import Producers
from bookwish_jobs.service import Service
from pyqueue import Backoff, Queue
from pyqueue.embedded import RedisServer

from .conftest import SmtpSink, process_job
from .helpers import add_user
from .tcp_proxy import TcpProxy


def events(caplog: pytest.LogCaptureFixture, name: str) -> list[dict[str, Any]]:
    return [r.fields for r in caplog.records  # type: ignore[attr-defined]
            if getattr(r, "event", "") == name]


async def test_last_failure_of_critical_job_alerts_and_metrics_are_logged(
    ctx: AppContext, bw_redis_url: str, smtp: tuple[SmtpSink, int], expo: FakeExpo,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    add_user(ctx.db, "u1", "reader@example.com", ["tokA"])
    expo.script.append((400, {}, {"errors": [{"code": "VALIDATION_ERROR", "message": "bad"}]}))
    ctx.settings = ctx.settings.model_copy(update={
        "queues": {names.NOTIFICATIONS: 1}, "metrics_interval": 0.2})
    service = Service(ctx, bw_redis_url)
    producers = Producers(bw_redis_url)
    await service.start()
    try:
        job_id = await producers.queue_notification(
            notification_id="n1", user_id="u1", type="payment_issue", title="t", body="b")
        for _ in range(200):
            if events(caplog, "job.alert") and events(caplog, "queue.metrics") \
                    and len(smtp[0].messages) == 2:
                break
            await asyncio.sleep(0.05)
    finally:
        await service.close()
        await producers.close()
    [failed] = events(caplog, "job.failed")
    assert failed["job_id"] == job_id
    assert failed["final"] is True
    assert failed["stack"].startswith("Traceback")
    assert "VALIDATION_ERROR" in failed["stack"]
    assert events(caplog, "job.alert")[0]["job_id"] == job_id
    [alert] = [m for m in smtp[0].messages if m["To"] == "ops@bookwish.test"]
    assert alert["To"] == "ops@bookwish.test"
    assert job_id in alert["Subject"]
    metrics = events(caplog, "queue.metrics")[0]
    assert metrics["queue"] == names.NOTIFICATIONS
    assert set(metrics) >= {"waiting", "active", "delayed", "failed"}


sqlite_only = pytest.mark.parametrize("database", ["sqlite"], indirect=True)


async def until(predicate: Any, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def failed_job(ctx: AppContext, redis_url: str, hours_ago: float) -> str:
    """A failed job of the kind the Node app leaves (its data no worker accepts),
    failed by a real worker, then dated ``hours_ago``."""
    async with Queue(names.NOTIFICATIONS, redis_url) as queue:
        job_id = (await queue.add({"userId": 42}, attempts=1)).id
    outcome = await process_job(ctx, redis_url, names.NOTIFICATIONS, job_id)
    assert outcome.state == "failed"
    client = redis.Redis.from_url(redis_url)
    try:
        client.hset(f"bull:{names.NOTIFICATIONS}:{job_id}", "finishedOn",
                    int((time.time() - hours_ago * 3600) * 1000))
    finally:
        client.close()
    return job_id


@sqlite_only  # Redis only: the Node app's tables are not read
async def test_failed_jobs_are_kept_unless_a_retention_is_set_which_start_up_announces(
    ctx: AppContext, bw_redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """removeOnFail: false keeps failed jobs for ever: so does the default here."""
    caplog.set_level(logging.INFO)
    job_id = await failed_job(ctx, bw_redis_url, hours_ago=400)
    ctx.settings = ctx.settings.model_copy(update={"queues": {names.NOTIFICATIONS: 1}})
    service = Service(ctx, bw_redis_url)
    await service.start()
    try:
        assert await service.clean_failed() == {names.NOTIFICATIONS: 0}
    finally:
        await service.close()
    async with Queue(names.NOTIFICATIONS, bw_redis_url) as queue:
        assert await queue.get_job_state(job_id) == "failed"
    assert events(caplog, "worker.failed_retention") == []
    assert events(caplog, "queue.cleaned") == []
    ctx.settings = ctx.settings.model_copy(update={"failed_retention_hours": 168})
    service = Service(ctx, bw_redis_url)
    await service.start()
    try:
        assert await service.clean_failed() == {names.NOTIFICATIONS: 1}
    finally:
        await service.close()
    [announced] = events(caplog, "worker.failed_retention")
    assert announced["hours"] == 168
    assert announced["queues"] == [names.NOTIFICATIONS]
    assert "Node app's failed jobs included" in announced["note"]
    async with Queue(names.NOTIFICATIONS, bw_redis_url) as queue:
        assert await queue.get_job(job_id) is None
    assert events(caplog, "queue.cleaned") == [
        {"queue": names.NOTIFICATIONS, "state": "failed", "removed": 1}]


def test_failed_retention_is_off_by_default() -> None:
    assert load_settings(env={}).failed_retention_hours is None
    assert load_settings(env={"FAILED_RETENTION_HOURS": "24"}).failed_retention_hours == 24


@sqlite_only
async def test_a_redis_outage_is_logged_once_and_recovered_without_restart(
    ctx: AppContext, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.INFO)
    server = RedisServer(data_dir=tmp_path, appendonly=True)
    server.start()
    add_user(ctx.db, "u1", "reader@example.com")
    ctx.settings = ctx.settings.model_copy(update={"queues": {names.NOTIFICATIONS: 1},
                                                   "metrics_interval": 0.2})
    service = Service(ctx, server.url)
    await service.start()
    try:
        server.stop()
        await until(lambda: events(caplog, "redis.unavailable"))
        await asyncio.sleep(2.0)  # a while down: many failed tries, one line
        server.start()
        producers = Producers(server.url)
        try:
            await producers.queue_notification(notification_id="n1", user_id="u1",
                                               type="wishlist_match", title="t", body="b")
            await until(lambda: events(caplog, "notification.sent"), timeout=30)
        finally:
            await producers.close()
        await until(lambda: events(caplog, "redis.recovered"))
    finally:
        await service.close()
        server.close()
    assert len(events(caplog, "redis.unavailable")) == 1
    [recovered] = events(caplog, "redis.recovered")
    assert recovered["failures"] >= 1


@pytest.mark.parametrize("database", ["prisma"], indirect=True)
async def test_a_database_outage_is_logged_once_and_the_job_recovers_without_restart(
    ctx: AppContext, database: Database, bw_redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    add_user(database, "u1", "reader@example.com")
    url = make_url(database.url)
    with TcpProxy((url.host or "127.0.0.1", url.port or 5432)) as proxy:
        proxied = Database(url.set(port=proxy.port).render_as_string(hide_password=False),
                           own_schema=str(database.own_schema))
        ctx.db = proxied
        ctx.settings = ctx.settings.model_copy(update={"queues": {names.NOTIFICATIONS: 1}})
        service = Service(ctx, bw_redis_url)
        await service.start()
        try:
            proxy.cut()
            async with Queue(names.NOTIFICATIONS, bw_redis_url) as queue:
                await queue.add({"notificationId": "n1", "userId": "u1", "type": "x",
                                 "title": "t", "body": "b"},
                                attempts=50, backoff=Backoff(type="fixed", delay=100))
            await until(lambda: len(events(caplog, "job.failed")) >= 3)
            proxy.restore()
            await until(lambda: events(caplog, "notification.sent"))
        finally:
            await service.close()
            proxied.dispose()
    assert len(events(caplog, "database.unavailable")) == 1
    [recovered] = events(caplog, "database.recovered")
    assert recovered["failures"] == len(events(caplog, "job.failed")) >= 3
