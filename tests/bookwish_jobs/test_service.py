"""The running service: failed-job hook (alert on the last failure) and queue.metrics."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from bookwish_jobs import names
from bookwish_jobs.context import AppContext
from bookwish_jobs.producers import Producers
from bookwish_jobs.service import Service

from .conftest import SmtpSink


def events(caplog: pytest.LogCaptureFixture, name: str) -> list[dict[str, Any]]:
    return [r.fields for r in caplog.records  # type: ignore[attr-defined]
            if getattr(r, "event", "") == name]


async def test_last_failure_of_critical_job_alerts_and_metrics_are_logged(
    ctx: AppContext, bw_redis_url: str, smtp: tuple[SmtpSink, int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    ctx.settings = ctx.settings.model_copy(update={
        "queues": {names.NOTIFICATIONS: 1}, "metrics_interval": 0.2})
    service = Service(ctx, bw_redis_url)
    producers = Producers(bw_redis_url)
    await service.start()
    try:
        job_id = await producers.queue_notification(
            notification_id="n1", user_id="ghost", type="payment_issue", title="t", body="b")
        for _ in range(200):
            if events(caplog, "job.alert") and events(caplog, "queue.metrics"):
                break
            await asyncio.sleep(0.05)
    finally:
        await service.close()
        await producers.close()
    [failed] = events(caplog, "job.failed")
    assert failed["job_id"] == job_id
    assert failed["final"] is True
    assert events(caplog, "job.alert")[0]["job_id"] == job_id
    [alert] = smtp[0].messages
    assert alert["To"] == "ops@bookwish.test"
    assert job_id in alert["Subject"]
    metrics = events(caplog, "queue.metrics")[0]
    assert metrics["queue"] == names.NOTIFICATIONS
    assert set(metrics) >= {"waiting", "active", "delayed", "failed"}
