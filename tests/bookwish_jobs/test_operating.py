"""Operating BookWish's worker: probes and /metrics on a set port; paused backlogs counted."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request

from bookwish_jobs import names
from bookwish_jobs.config import load_settings
from bookwish_jobs.context import AppContext
from bookwish_jobs.producers import Producers
from bookwish_jobs.service import Service
from pyqueue.embedded import free_port

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _get(url: str) -> tuple[int, str]:
    try:
        with _OPENER.open(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


async def test_metrics_log_counts_a_paused_backlog(ctx: AppContext, bw_redis_url: str) -> None:
    ctx.settings = ctx.settings.model_copy(update={"queues": {names.NOTIFICATIONS: 1}})
    service = Service(ctx, bw_redis_url)
    producers = Producers(bw_redis_url)
    await service.start()
    try:
        await service.workers[names.NOTIFICATIONS].queue.pause()
        await producers.queue_notification(
            notification_id="n1", user_id="u1", type="payment_issue", title="t", body="b")
        counts = (await service.metrics())[names.NOTIFICATIONS]
    finally:
        await service.close()
        await producers.close()
    assert counts["paused"] == 1  # a paused backlog is not 0
    assert counts["waiting"] == 0


async def test_worker_serves_probes_and_metrics(ctx: AppContext, bw_redis_url: str) -> None:
    port = free_port()
    ctx.settings = ctx.settings.model_copy(update={
        "queues": {names.NOTIFICATIONS: 1}, "metrics_port": port})
    service = Service(ctx, bw_redis_url)
    await service.start()
    try:
        base = f"http://127.0.0.1:{port}"
        assert await asyncio.to_thread(_get, base + "/healthz") == (200, "ok\n")
        assert await asyncio.to_thread(_get, base + "/readyz") == (200, "ready\n")
        status, text = await asyncio.to_thread(_get, base + "/metrics")
        assert status == 200
        assert f'pyqueue_lock_renewal_failures_total{{queue="{names.NOTIFICATIONS}"}} 0.0' in text
    finally:
        await service.close()
    # Closed with the service.
    try:
        await asyncio.to_thread(_get, base + "/healthz")
        raise AssertionError("the probe server still answers after close")
    except urllib.error.URLError:
        pass


def test_metrics_port_setting() -> None:
    assert load_settings(env={"METRICS_PORT": "9464"}).metrics_port == 9464
    assert load_settings(env={}).metrics_port is None
