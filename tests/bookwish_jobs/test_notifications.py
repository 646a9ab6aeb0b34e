"""notifications: push to every token, email for critical types, escaping, per-token records,
and each kind of answer Expo gives."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from email.header import decode_header, make_header
from typing import Any

import pytest
from sqlalchemy import select

from bookwish_jobs import names
from bookwish_jobs.context import AppContext
from bookwish_jobs.fakes import FakeExpo
from bookwish_jobs.own_models import NotificationDelivery
from bookwish_jobs.producers import Producers
from bookwish_jobs.service import Service
from bookwish_jobs.services.push import ExpoPushClient, LogPushService
from pyqueue import Backoff, Queue, UnrecoverableError

from .conftest import SmtpSink, run_job
from .helpers import add_user, column


def payload(**overrides: Any) -> dict[str, Any]:
    base = {"notification_id": "n1", "user_id": "u1", "type": "order_update",
            "title": "Order <b>ready</b>", "body": "Hi <script>alert(1)</script> & bye",
            "order_id": "o1", "order_number": "BW-<1>"}
    return base | overrides


def parts(message: Any) -> tuple[str, str]:
    text = html = ""
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            text = part.get_payload(decode=True).decode()
        elif part.get_content_type() == "text/html":
            html = part.get_payload(decode=True).decode()
    return text, html


def deliveries(ctx: AppContext, channel: str) -> list[str]:
    with ctx.db.transaction() as s:
        return sorted(s.scalars(select(NotificationDelivery.target)
                                .where(NotificationDelivery.channel == channel)))


def tokens_left(ctx: AppContext) -> list[str]:
    return sorted(column(ctx.db, "PushToken", "token"))


def expo_error(code: str, message: str = "") -> dict[str, Any]:
    return {"errors": [{"code": code, "message": message or code, "isTransient": False}]}


async def test_critical_pushes_every_token_and_emails_escaped_html(
    ctx: AppContext, bw_redis_url: str, expo: FakeExpo, smtp: tuple[SmtpSink, int]
) -> None:
    add_user(ctx.db, "u1", "reader@example.com", ["tokA", "tokB"])
    outcome = await run_job(ctx, bw_redis_url, names.NOTIFICATIONS, payload())
    assert outcome.state == "completed", outcome.value
    assert sorted(m["to"] for m in expo.messages) == ["tokA", "tokB"]
    assert expo.messages[0]["title"] == "Order <b>ready</b>"
    [mail] = smtp[0].messages
    assert mail["Subject"] == "Order <b>ready</b>"
    assert mail["To"] == "reader@example.com"
    text, html = parts(mail)
    assert "<script>" in text  # the text part is plain text
    assert "<script>" not in html
    assert "<b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; bye" in html
    assert "BW-&lt;1&gt;" in html
    assert deliveries(ctx, "push") == ["tokA", "tokB"]
    assert deliveries(ctx, "email") == ["reader@example.com"]


async def test_non_critical_type_sends_no_email(
    ctx: AppContext, bw_redis_url: str, expo: FakeExpo, smtp: tuple[SmtpSink, int]
) -> None:
    add_user(ctx.db, "u1", "reader@example.com", ["tokA"])
    outcome = await run_job(ctx, bw_redis_url, names.NOTIFICATIONS,
                            payload(type="wishlist_match"))
    assert outcome.state == "completed"
    assert outcome.value["pushed"] == 1
    assert smtp[0].messages == []


async def test_device_not_registered_token_is_deleted(
    ctx: AppContext, bw_redis_url: str, expo: FakeExpo
) -> None:
    add_user(ctx.db, "u1", "reader@example.com", ["tokA", "gone"])
    expo.unregistered.add("gone")
    outcome = await run_job(ctx, bw_redis_url, names.NOTIFICATIONS,
                            payload(type="wishlist_match"))
    assert outcome.state == "completed"
    assert outcome.value["removedTokens"] == 1
    assert tokens_left(ctx) == ["tokA"]
    assert deliveries(ctx, "push") == ["tokA"]


async def test_retry_does_not_push_again_to_delivered_tokens(
    ctx: AppContext, bw_redis_url: str, expo: FakeExpo, smtp: tuple[SmtpSink, int]
) -> None:
    add_user(ctx.db, "u1", "reader@example.com", ["tokA", "tokB"])
    expo.ticket_errors["tokB"] = ["MessageRateExceeded"]
    outcome = await run_job(ctx, bw_redis_url, names.NOTIFICATIONS, payload(),
                            backoff=Backoff(type="fixed", delay=50))
    assert outcome.state == "completed"
    assert outcome.attempts_made == 1  # one failed attempt, then success
    pushed = [m["to"] for m in expo.messages]
    assert pushed.count("tokA") == 1
    assert pushed.count("tokB") == 2
    assert len(smtp[0].messages) == 1  # the email went out once, in the first attempt


async def test_expo_outage_is_retried(
    ctx: AppContext, bw_redis_url: str, expo: FakeExpo
) -> None:
    add_user(ctx.db, "u1", "reader@example.com", ["tokA"])
    expo.script.append((503, {}, {"errors": [{"code": "INTERNAL"}]}))
    outcome = await run_job(ctx, bw_redis_url, names.NOTIFICATIONS,
                            payload(type="wishlist_match"), backoff=Backoff(type="fixed",
                                                                           delay=50))
    assert outcome.state == "completed"
    assert outcome.attempts_made == 1
    assert deliveries(ctx, "push") == ["tokA"]


async def test_ticket_errors_only_delete_unregistered_tokens_and_are_not_retried(
    ctx: AppContext, bw_redis_url: str, expo: FakeExpo, caplog: pytest.LogCaptureFixture
) -> None:
    add_user(ctx.db, "u1", "reader@example.com", ["tokA", "big", "creds", "gone"])
    expo.ticket_errors |= {"big": ["MessageTooBig"], "creds": ["InvalidCredentials"]}
    expo.unregistered.add("gone")
    caplog.set_level(logging.INFO)
    outcome = await run_job(ctx, bw_redis_url, names.NOTIFICATIONS,
                            payload(type="wishlist_match"), backoff=Backoff(type="fixed",
                                                                           delay=50))
    assert outcome.state == "completed", outcome.value
    assert outcome.attempts_made == 0
    assert outcome.value == {"userFound": True, "skipped": 0, "emailed": False, "pushed": 1,
                             "removedTokens": 1, "failed": 2}
    assert tokens_left(ctx) == ["big", "creds", "tokA"]
    assert deliveries(ctx, "push") == ["tokA"]
    assert Counter(m["to"] for m in expo.messages) == dict.fromkeys(
        ["tokA", "big", "creds", "gone"], 1)
    levels = {r.fields["error"]: r.levelno for r in caplog.records  # type: ignore[attr-defined]
              if getattr(r, "event", "") == "push.ticket_error"}
    assert levels == {"MessageTooBig": logging.WARNING, "InvalidCredentials": logging.ERROR}


async def test_expo_429_is_retried_by_the_job(
    ctx: AppContext, bw_redis_url: str, expo: FakeExpo
) -> None:
    add_user(ctx.db, "u1", "reader@example.com", ["tokA"])
    expo.script.append((429, {}, expo_error("TOO_MANY_REQUESTS")))
    outcome = await run_job(ctx, bw_redis_url, names.NOTIFICATIONS,
                            payload(type="wishlist_match"), backoff=Backoff(type="fixed",
                                                                           delay=50))
    assert outcome.state == "completed", outcome.value
    assert outcome.attempts_made == 1
    assert deliveries(ctx, "push") == ["tokA"]
    assert expo.accepted == ["tokA"]


async def test_request_expo_refuses_fails_at_once_and_still_emails(
    ctx: AppContext, bw_redis_url: str, expo: FakeExpo, smtp: tuple[SmtpSink, int]
) -> None:
    add_user(ctx.db, "u1", "reader@example.com", ["tokA"])
    expo.script.append((400, {}, expo_error("VALIDATION_ERROR", '"[0].to" is not valid')))
    outcome = await run_job(ctx, bw_redis_url, names.NOTIFICATIONS, payload(),
                            backoff=Backoff(type="fixed", delay=50))
    assert outcome.state == "failed"
    assert isinstance(outcome.value, UnrecoverableError)
    assert "400" in str(outcome.value)
    assert "VALIDATION_ERROR" in str(outcome.value)
    assert outcome.attempts_made == 1
    assert len(expo.requests) == 1
    assert tokens_left(ctx) == ["tokA"]
    assert deliveries(ctx, "push") == []
    assert len(smtp[0].messages) == 1  # the critical email does not depend on push


async def test_tokens_of_several_expo_projects_go_one_request_per_project(
    ctx: AppContext, bw_redis_url: str, expo: FakeExpo
) -> None:
    add_user(ctx.db, "u1", "reader@example.com", ["tokA", "old", "tokB"])
    expo.projects["old"] = "@bookwish/old-build"
    outcome = await run_job(ctx, bw_redis_url, names.NOTIFICATIONS,
                            payload(type="wishlist_match"))
    assert outcome.state == "completed", outcome.value
    assert outcome.attempts_made == 0
    assert outcome.value["pushed"] == 3
    assert sorted(expo.accepted) == ["old", "tokA", "tokB"]
    first, *split = [sorted(m["to"] for m in r["body"]) for r in expo.requests]
    assert first == ["old", "tokA", "tokB"]  # refused: PUSH_TOO_MANY_EXPERIENCE_IDS
    assert sorted(split) == [["old"], ["tokA", "tokB"]]
    assert deliveries(ctx, "push") == ["old", "tokA", "tokB"]


async def test_failed_request_keeps_the_deliveries_of_earlier_requests(
    ctx: AppContext, bw_redis_url: str, expo: FakeExpo
) -> None:
    tokens = [f"ExponentPushToken[{i:03}]" for i in range(150)]
    add_user(ctx.db, "u1", "reader@example.com", tokens)
    # The first request (100 tokens) succeeds, the second (50) meets an outage.
    expo.script += [None, (503, {}, expo_error("INTERNAL_SERVER_ERROR"))]
    outcome = await run_job(ctx, bw_redis_url, names.NOTIFICATIONS,
                            payload(type="wishlist_match"), backoff=Backoff(type="fixed",
                                                                           delay=50))
    assert outcome.state == "completed", outcome.value
    assert outcome.attempts_made == 1
    assert [len(r["body"]) for r in expo.requests] == [100, 50, 50]
    assert sorted(expo.accepted) == tokens  # every device once, none twice
    assert outcome.value["skipped"] == 100
    assert deliveries(ctx, "push") == tokens


async def test_a_user_who_no_longer_exists_completes_without_an_alert(
    ctx: AppContext, bw_redis_url: str, expo: FakeExpo, smtp: tuple[SmtpSink, int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """As in Node: no tokens, no email, the job completes (no retry, no ops alert)."""
    caplog.set_level(logging.INFO)
    ctx.settings = ctx.settings.model_copy(update={"queues": {names.NOTIFICATIONS: 1}})
    service = Service(ctx, bw_redis_url)
    done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    await service.start()
    service.workers[names.NOTIFICATIONS].worker.on(
        "completed", lambda job, result: done.done() or done.set_result(result))
    service.workers[names.NOTIFICATIONS].worker.on(
        "failed", lambda job, exc: done.done() or done.set_exception(exc))
    producers = Producers(bw_redis_url)
    try:
        await producers.queue_notification(notification_id="n1", user_id="gone",
                                           type="payment_issue", title="t", body="b")
        result = await asyncio.wait_for(done, 20)
    finally:
        await producers.close()
        await service.close()
    assert result == {"userFound": False, "skipped": 0, "emailed": False, "pushed": 0,
                      "removedTokens": 0, "failed": 0}
    assert expo.requests == []
    assert smtp[0].messages == []  # neither the notification nor an alert
    events = {getattr(r, "event", "") for r in caplog.records}
    assert "notification.user_missing" in events
    assert "job.alert" not in events
    assert "job.failed" not in events


@pytest.mark.parametrize(("field", "value", "cut"), [
    ("title", "T" * 300, True), ("body", "B" * 5_000, True),
    ("body", "\u00e9\u2603" * 3_000, True), ("body", "B" * 3_000, False),
    ("title", "", False), ("body", "", False),
])
async def test_every_payload_node_accepts_is_sent_shortened_for_expo_only(
    ctx: AppContext, bw_redis_url: str, expo: FakeExpo, smtp: tuple[SmtpSink, int],
    field: str, value: str, cut: bool,
) -> None:
    add_user(ctx.db, "u1", "reader@example.com", ["tokA"])
    data = {"notificationId": "n1", "userId": "u1", "type": "order_update", "title": "Ready",
            "body": "Pick it up", "orderId": "o1"} | {field: value}
    outcome = await run_job(ctx, bw_redis_url, names.NOTIFICATIONS, data, attempts=1)
    assert outcome.state == "completed", outcome.value
    assert outcome.value["pushed"] == 1
    [pushed] = expo.messages
    # Fits Expo's 4096-byte payload with room to spare; cut ends with an ellipsis.
    size = len(json.dumps({k: pushed[k] for k in ("title", "body", "data")},
                          ensure_ascii=False).encode())
    assert size <= 4_096 - 200
    sent = pushed[field]
    if cut:
        assert sent.endswith("\u2026")
        assert value.startswith(sent[:-1])
    else:
        assert sent == value
    assert pushed["data"] == {"notificationId": "n1", "type": "order_update"}
    # The critical email is never dropped or shortened: it carries the whole text.
    [mail] = smtp[0].messages
    text, _html = parts(mail)
    if field == "body":
        assert text.replace("\r\n", "\n").rstrip("\n") == value
    else:
        assert str(make_header(decode_header(mail["Subject"] or ""))) == value


async def test_payload_validated_at_enqueue_and_at_processing(
    ctx: AppContext, bw_redis_url: str
) -> None:
    producers = Producers(bw_redis_url)
    try:
        with pytest.raises(ValueError, match="title"):
            await producers.queue_notification(notification_id="n", user_id="u", type="t",
                                               title=None, body="b")  # type: ignore[arg-type]
    finally:
        await producers.close()
    # A job written without the model (say, by another client) fails at processing.
    async with Queue(names.NOTIFICATIONS, bw_redis_url) as raw:
        await raw.add({"userId": "u1"})
    add_user(ctx.db, "u1", "reader@example.com")
    outcome = await run_job(ctx, bw_redis_url, names.NOTIFICATIONS, payload(user_id="u1"))
    assert outcome.state == "completed"
    async with Queue(names.NOTIFICATIONS, bw_redis_url) as raw:
        [failed] = await raw.get_jobs("failed")
        assert "NotificationPayload" in (failed.failed_reason or "")
        assert failed.attempts_made == 1


async def test_job_options(bw_redis_url: str) -> None:
    producers = Producers(bw_redis_url)
    try:
        job_id = await producers.queue_notification(notification_id="n", user_id="u",
                                                    type="order_update", title="t", body="b")
        job = await producers.queue(names.NOTIFICATIONS).get_job(job_id)
        assert job is not None
        assert job.opts.attempts == 3
        assert job.opts.backoff == Backoff(type="exponential", delay=2000)
        assert job.opts.remove_on_complete is True
        assert job.raw_opts["removeOnFail"] is False
    finally:
        await producers.close()


async def test_without_a_push_service_nothing_is_recorded_so_a_later_retry_sends(
    ctx: AppContext, bw_redis_url: str, expo: FakeExpo
) -> None:
    add_user(ctx.db, "u1", "reader@example.com", ["tokA", "tokB"])
    ctx.push = LogPushService()  # no EXPO_PUSH_URL
    first = await run_job(ctx, bw_redis_url, names.NOTIFICATIONS,
                          payload(type="wishlist_match"))
    assert first.state == "completed"
    assert first.value["notSent"] == 2
    assert deliveries(ctx, "push") == []
    ctx.push = ExpoPushClient(expo.url)  # configured now; the same notification again
    second = await run_job(ctx, bw_redis_url, names.NOTIFICATIONS,
                           payload(type="wishlist_match"))
    assert second.value["pushed"] == 2
    assert sorted(m["to"] for m in expo.messages) == ["tokA", "tokB"]
    assert deliveries(ctx, "push") == ["tokA", "tokB"]


async def test_a_job_queued_by_an_older_version_still_runs(
    ctx: AppContext, bw_redis_url: str, expo: FakeExpo
) -> None:
    """Older bookwish_jobs named the job and wrote snake_case; such jobs may still wait."""
    add_user(ctx.db, "u1", "reader@example.com", ["tokA"])
    outcome = await run_job(ctx, bw_redis_url, names.NOTIFICATIONS,
                            payload(type="wishlist_match"), name="send-notification")
    assert outcome.state == "completed", outcome.value
    assert [m["to"] for m in expo.messages] == ["tokA"]
