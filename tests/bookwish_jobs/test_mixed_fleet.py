"""Mixed fleets: an attempt fails on one side, its retry runs on the other.

The Node side is the design's processors on real Node Bull (``node/app.js``), against
the same Redis, PostgreSQL (the ``prisma`` schema), SMTP server and Expo stand-in as
the Python worker. Each test fails the first attempt on one side, stops that side before
the backoff ends, and lets the other side run the retry; then it counts what reached
Expo and the SMTP server. The counts are the figures of docs/bookwish/mixed-fleets.md:

- notifications, with the Node helper (src/bookwish_jobs/node-helper) in the Node
  processor: nothing is sent twice, either way;
- notifications without it: the retry resends every push (and, Python to Node, the
  email) the failed attempt delivered;
- order digest: each email once, either way (what a run sent is marked processed before
  the next group; a failed Python attempt releases its claims).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from bookwish_jobs import names
from bookwish_jobs.context import AppContext
from bookwish_jobs.fakes import FakeExpo
from bookwish_jobs.registry import make_worker

from .conftest import SmtpSink, process_job
from .helpers import add_order, add_store, add_user, column, insert_row
from .node_app import NodeWorker, node_database, run_node
from .prisma import DESIGN

pytestmark = pytest.mark.parametrize("database", [DESIGN.id], indirect=True)
NOTIFICATION = {"notificationId": "n1", "userId": "u1", "type": "order_update",
                "title": "Your order shipped", "body": "It is on its way", "orderId": "o1"}


async def fail_once_on_python(ctx: AppContext, redis_url: str, queue: str,
                              job_id: str) -> BaseException:
    """Run the job's first attempt on a Python worker; stop it once that attempt failed
    (the retry waits out its backoff, for whichever side takes it)."""
    qw = make_worker(queue, ctx, redis_url, concurrency=1, shutdown_grace=5)
    failed: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()
    qw.worker.on("failed", lambda job, exc, final: job.id == job_id and not failed.done()
                 and failed.set_result(exc))
    await qw.worker.start()
    try:
        return await asyncio.wait_for(failed, 20)
    finally:
        await qw.close()


def node_design(ctx: AppContext, expo: FakeExpo, smtp: tuple[SmtpSink, int], *,
                helper: bool) -> dict[str, Any]:
    return {**node_database(ctx.db.url, DESIGN.schema_prisma), "expoUrl": expo.url,
            "smtpUrl": f"smtp://127.0.0.1:{smtp[1]}", "opsEmail": "ops@bookwish.test",
            "deliveryHelper": helper, "ownSchema": ctx.db.own_schema}


def add_from_node(redis_url: str, **produce: Any) -> str:
    [added] = [e for e in run_node({"action": "produce", "redisUrl": redis_url, **produce})
               if e["event"] == "added"]
    return str(added["jobId"])


def sent(expo: FakeExpo, smtp: tuple[SmtpSink, int]) -> dict[str, int]:
    """What reached the devices and mailboxes: pushes per token, emails per address."""
    return dict(Counter(expo.accepted) + Counter(str(m["To"]) for m in smtp[0].messages))


def smtp_down(smtp: tuple[SmtpSink, int]) -> None:
    smtp[0].refuse.add("reader@example.com")


def smtp_up(smtp: tuple[SmtpSink, int]) -> None:
    smtp[0].refuse.clear()


@pytest.mark.parametrize(("helper", "expected"), [
    (True, {"tokA": 1, "tokB": 1, "reader@example.com": 1}),
    (False, {"tokA": 2, "tokB": 2, "reader@example.com": 1}),  # the pushes go twice
])
async def test_notification_failed_on_python_retried_on_node(
    ctx: AppContext, bw_redis_url: str, expo: FakeExpo, smtp: tuple[SmtpSink, int],
    helper: bool, expected: dict[str, int],
) -> None:
    add_user(ctx.db, "u1", "reader@example.com", ["tokA", "tokB"])
    job_id = add_from_node(bw_redis_url, notifications=[NOTIFICATION])
    smtp_down(smtp)  # both pushes go out, then the email is refused: the attempt fails
    await fail_once_on_python(ctx, bw_redis_url, names.NOTIFICATIONS, job_id)
    assert sent(expo, smtp) == {"tokA": 1, "tokB": 1}
    smtp_up(smtp)
    node = NodeWorker(bw_redis_url, expect=1, maxSeconds=40,
                      design=node_design(ctx, expo, smtp, helper=helper))
    try:
        [done] = node.wait_for("completed")
    finally:
        node.stop()
    assert done["jobId"] == job_id
    assert [e["attemptsMade"] for e in node.of("processed")] == [1]  # the retry ran on Node
    assert sent(expo, smtp) == expected


async def test_email_delivered_on_python_is_not_resent_by_node(
    ctx: AppContext, bw_redis_url: str, expo: FakeExpo, smtp: tuple[SmtpSink, int],
) -> None:
    """Python sends the critical email even when a push fails; Node's retry, with the
    helper, pushes only to the token that missed it and leaves the email alone."""
    add_user(ctx.db, "u1", "reader@example.com", ["tokA", "tokB"])
    expo.ticket_errors["tokB"] = ["MessageRateExceeded"]
    job_id = add_from_node(bw_redis_url, notifications=[NOTIFICATION])
    await fail_once_on_python(ctx, bw_redis_url, names.NOTIFICATIONS, job_id)
    assert sent(expo, smtp) == {"tokA": 1, "reader@example.com": 1}
    node = NodeWorker(bw_redis_url, expect=1, maxSeconds=40,
                      design=node_design(ctx, expo, smtp, helper=True))
    try:
        node.wait_for("completed")
    finally:
        node.stop()
    assert sent(expo, smtp) == {"tokA": 1, "tokB": 1, "reader@example.com": 1}


@pytest.mark.parametrize(("helper", "expected"), [
    (True, {"tokA": 1, "tokB": 1, "reader@example.com": 1}),
    (False, {"tokA": 2, "tokB": 2, "reader@example.com": 1}),  # Node recorded nothing
])
async def test_notification_failed_on_node_retried_on_python(
    ctx: AppContext, bw_redis_url: str, expo: FakeExpo, smtp: tuple[SmtpSink, int],
    helper: bool, expected: dict[str, int],
) -> None:
    add_user(ctx.db, "u1", "reader@example.com", ["tokA", "tokB"])
    job_id = add_from_node(bw_redis_url, notifications=[NOTIFICATION])
    smtp_down(smtp)
    node = NodeWorker(bw_redis_url, maxSeconds=40,
                      design=node_design(ctx, expo, smtp, helper=helper))
    try:
        [failed] = node.wait_for("failed")
    finally:
        node.stop()
    assert failed["jobId"] == job_id
    assert sent(expo, smtp) == {"tokA": 1, "tokB": 1}
    smtp_up(smtp)
    outcome = await process_job(ctx, bw_redis_url, names.NOTIFICATIONS, job_id)
    assert outcome.state == "completed", outcome.value
    assert outcome.attempts_made == 1  # the retry ran on Python
    assert sent(expo, smtp) == expected


def digest_seed(ctx: AppContext) -> None:
    add_user(ctx.db, "owner", "owner@nook.example")
    add_store(ctx.db, "nook", store_name="Nook", ownerId="owner")
    add_store(ctx.db, "corner", store_name="Corner", email="corner@example.com")
    for order_id, store in (("o1", "nook"), ("o2", "corner")):
        add_order(ctx.db, order_id, store, status="paid")
        insert_row(ctx.db, "OrderDigestQueue", storeId=store, orderId=order_id,
                   isSpecialOrder=False)
        insert_row(ctx.db, "BookwishOpsDigestQueue", orderId=order_id)


# The design's digest has one attempt; a retry exists when Python declared the schedule
# (3 attempts, exponential from 60 s): the same, with a backoff a test can wait for.
FAST_DIGEST_RETRY = {"orderDigest": {"attempts": 3, "backoff": {"type": "fixed", "delay": 2000}}}
ONCE_EACH = {"owner@nook.example": 1, "corner@example.com": 1, "ops@bookwish.test": 1}


async def test_digest_failed_on_python_retried_on_node(
    ctx: AppContext, bw_redis_url: str, expo: FakeExpo, smtp: tuple[SmtpSink, int],
) -> None:
    digest_seed(ctx)
    job_id = add_from_node(bw_redis_url, digest=True, jobOptions=FAST_DIGEST_RETRY)
    smtp[0].refuse.add("owner@nook.example")
    exc = await fail_once_on_python(ctx, bw_redis_url, names.ORDER_DIGEST, job_id)
    assert "nook" in str(exc)
    assert sent(expo, smtp) == {"corner@example.com": 1, "ops@bookwish.test": 1}
    smtp[0].refuse.clear()
    node = NodeWorker(bw_redis_url, expect=1, maxSeconds=40,
                      design=node_design(ctx, expo, smtp, helper=True))
    try:
        node.wait_for("completed")
    finally:
        node.stop()
    assert sent(expo, smtp) == ONCE_EACH
    assert column(ctx.db, "OrderDigestQueue", "processed") == [True, True]


async def test_digest_failed_on_node_retried_on_python(
    ctx: AppContext, bw_redis_url: str, expo: FakeExpo, smtp: tuple[SmtpSink, int],
) -> None:
    digest_seed(ctx)
    job_id = add_from_node(bw_redis_url, digest=True, jobOptions=FAST_DIGEST_RETRY)
    smtp[0].refuse.add("owner@nook.example")
    node = NodeWorker(bw_redis_url, maxSeconds=40,
                      design=node_design(ctx, expo, smtp, helper=True))
    try:
        [failed] = node.wait_for("failed")
    finally:
        node.stop()
    assert failed["jobId"] == job_id
    smtp[0].refuse.clear()
    outcome = await process_job(ctx, bw_redis_url, names.ORDER_DIGEST, job_id)
    assert outcome.state == "completed", outcome.value
    assert sent(expo, smtp) == ONCE_EACH
    assert column(ctx.db, "OrderDigestQueue", "processed") == [True, True]
    assert column(ctx.db, "BookwishOpsDigestQueue", "processed") == [True, True]
