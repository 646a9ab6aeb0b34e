"""order-digest: one email per store and one for ops; claim step, no drops, no resends."""

from __future__ import annotations

import logging
import smtplib
from email.message import EmailMessage
from typing import Any

import pytest
from sqlalchemy import select, text

from bookwish_jobs import names
from bookwish_jobs.context import AppContext
from bookwish_jobs.jobs import order_digest
from bookwish_jobs.models import BookwishOpsDigestQueue, OrderDigestQueue
from bookwish_jobs.payloads import OrderDigestPayload
from bookwish_jobs.producers import SyncProducers
from pyqueue import Backoff

from .conftest import SmtpSink, run_job
from .helpers import FakeJob, add_inventory, add_order, add_store, add_user


def seed(ctx: AppContext) -> SyncProducers:
    add_user(ctx.db, "owner", "owner@nook.example")
    add_store(ctx.db, "nook", name="The <Nook>", ownerId="owner", email="shop@nook.example")
    add_store(ctx.db, "corner", name="Corner", email="corner@example.com")
    add_store(ctx.db, "nomail", name="No Mail")
    add_user(ctx.db, "reader", "reader@example.com")
    add_inventory(ctx.db, "dune", "nook", title="Dune <1965>")
    add_order(ctx.db, "o1", "nook", status="paid")
    add_order(ctx.db, "o2", "nook", status="paid", user_id="reader", items=[("dune", 2)])
    for order_id, store in (("o3", "corner"), ("o4", "nomail")):
        add_order(ctx.db, order_id, store, status="paid")
    producers = SyncProducers(None, ctx.db)
    producers.queue_store_order_for_digest("nook", "o1", False)
    producers.queue_store_order_for_digest("nook", "o2", True)
    producers.queue_store_order_for_digest("corner", "o3", False)
    producers.queue_store_order_for_digest("nomail", "o4", False)
    producers.queue_order_for_ops_digest("o1")
    producers.queue_order_for_ops_digest("o3")
    return producers


def by_recipient(sink: SmtpSink) -> dict[str, Any]:
    return {m["To"]: m for m in sink.messages}


def text_of(message: Any, kind: str = "text/plain") -> str:
    return next(p.get_payload(decode=True).decode() for p in message.walk()
                if p.get_content_type() == kind)


def unprocessed(ctx: AppContext, table: Any) -> list[str]:
    with ctx.db.transaction() as s:
        return sorted(s.scalars(select(table.orderId).where(table.processed.is_(False))))


async def test_digest_per_store_and_ops(
    ctx: AppContext, bw_redis_url: str, smtp: tuple[SmtpSink, int]
) -> None:
    seed(ctx)
    outcome = await run_job(ctx, bw_redis_url, names.ORDER_DIGEST, {})
    assert outcome.state == "completed", outcome.value
    assert outcome.value == {"stores_emailed": 2, "store_entries": 3, "ops_entries": 2,
                             "uncertain": 0, "no_recipient": 1}
    mails = by_recipient(smtp[0])
    assert set(mails) == {"owner@nook.example", "corner@example.com", "ops@bookwish.test"}
    nook = text_of(mails["owner@nook.example"]).replace("\r\n", "\n")
    assert "N-o1" in nook
    assert "- N-o2  paid  reader@example.com [SPECIAL ORDER]\n    2 x Book dune\n" in nook
    assert "- N-o1  paid  no customer on file\n" in nook
    assert "2 &times; Book dune" in text_of(mails["owner@nook.example"], "text/html")
    assert "N-o3" not in nook
    assert "The &lt;Nook&gt;" in text_of(mails["owner@nook.example"], "text/html")
    assert "N-o1" in text_of(mails["ops@bookwish.test"])
    # The store with no address has its entry marked processed (and logged), as the
    # Node code does, so entries do not pile up for ever.
    assert unprocessed(ctx, OrderDigestQueue) == []
    assert unprocessed(ctx, BookwishOpsDigestQueue) == []
    again = await run_job(ctx, bw_redis_url, names.ORDER_DIGEST, {})
    assert again.value["store_entries"] == 0
    assert len(smtp[0].messages) == 3


def test_store_without_owner_uses_store_address(
    ctx: AppContext, smtp: tuple[SmtpSink, int]
) -> None:
    seed(ctx)
    with ctx.db.engine.begin() as conn:
        conn.execute(text('UPDATE "User" SET email = \'\' WHERE id = \'owner\''))
    order_digest.process(FakeJob(OrderDigestPayload()), ctx)  # type: ignore[arg-type]
    assert "shop@nook.example" in by_recipient(smtp[0])


def test_entry_added_during_the_run_goes_to_the_next_digest(
    ctx: AppContext, smtp: tuple[SmtpSink, int]
) -> None:
    producers = seed(ctx)
    add_order(ctx.db, "late", "corner", status="paid")
    real_send = ctx.mailer.send
    added: list[str] = []

    def send_and_add(message: EmailMessage) -> None:
        if not added:
            added.append(producers.queue_store_order_for_digest("corner", "late", False))
        real_send(message)

    ctx.mailer.send = send_and_add  # type: ignore[method-assign]
    order_digest.process(FakeJob(OrderDigestPayload(), id="1"), ctx)  # type: ignore[arg-type]
    assert "N-late" not in text_of(by_recipient(smtp[0])["corner@example.com"])
    assert unprocessed(ctx, OrderDigestQueue) == ["late"]
    smtp[0].messages.clear()
    ctx.mailer.send = real_send  # type: ignore[method-assign]
    order_digest.process(FakeJob(OrderDigestPayload(), id="2"), ctx)  # type: ignore[arg-type]
    [mail] = smtp[0].messages
    assert "N-late" in text_of(mail)


async def test_crash_between_send_and_mark_does_not_resend(
    ctx: AppContext, bw_redis_url: str, smtp: tuple[SmtpSink, int],
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    seed(ctx)
    real_mark = order_digest.mark_processed
    crashes: list[int] = []

    def crash_once(*args: Any) -> None:
        if not crashes:
            crashes.append(1)
            raise ConnectionError("database went away after the email was sent")
        real_mark(*args)

    monkeypatch.setattr(order_digest, "mark_processed", crash_once)
    caplog.set_level(logging.INFO)
    outcome = await run_job(ctx, bw_redis_url, names.ORDER_DIGEST, {},
                            backoff=Backoff(type="fixed", delay=50))
    assert outcome.state == "completed"
    assert outcome.attempts_made == 1
    recipients = [m["To"] for m in smtp[0].messages]
    assert sorted(recipients) == sorted(set(recipients))  # nobody got the same digest twice
    assert len(recipients) == 3
    assert unprocessed(ctx, OrderDigestQueue) == []
    assert unprocessed(ctx, BookwishOpsDigestQueue) == []
    assert any(getattr(r, "event", "") == "digest.delivery_uncertain" for r in caplog.records)


async def test_failed_send_is_retried_and_sent_once(
    ctx: AppContext, bw_redis_url: str, smtp: tuple[SmtpSink, int]
) -> None:
    seed(ctx)
    real_send = ctx.mailer.send
    failures: list[int] = []

    def flaky(message: EmailMessage) -> None:
        if not failures:
            failures.append(1)
            raise OSError("SMTP server unreachable")
        real_send(message)

    ctx.mailer.send = flaky  # type: ignore[method-assign]
    outcome = await run_job(ctx, bw_redis_url, names.ORDER_DIGEST, {},
                            backoff=Backoff(type="fixed", delay=50))
    assert outcome.state == "completed"
    assert outcome.attempts_made == 1
    assert len(smtp[0].messages) == 3
    assert unprocessed(ctx, OrderDigestQueue) == []


async def test_a_refused_store_email_blocks_neither_other_stores_nor_ops(
    ctx: AppContext, bw_redis_url: str, smtp: tuple[SmtpSink, int]
) -> None:
    seed(ctx)
    real_send = ctx.mailer.send
    refusals: list[str] = []

    def refuse_nook_once(message: EmailMessage) -> None:
        if message["To"] == "owner@nook.example" and not refusals:
            refusals.append(message["To"])
            raise smtplib.SMTPRecipientsRefused({message["To"]: (550, b"mailbox full")})
        real_send(message)

    ctx.mailer.send = refuse_nook_once  # type: ignore[method-assign]
    outcome = await run_job(ctx, bw_redis_url, names.ORDER_DIGEST, {"type": "daily"},
                            backoff=Backoff(type="fixed", delay=50))
    assert outcome.state == "completed"
    assert outcome.attempts_made == 1  # the first attempt failed, for the nook only
    # The first attempt still mailed the corner store and ops; the retry mailed the nook.
    assert [m["To"] for m in smtp[0].messages] == [
        "corner@example.com", "ops@bookwish.test", "owner@nook.example"]
    assert unprocessed(ctx, OrderDigestQueue) == []
    assert unprocessed(ctx, BookwishOpsDigestQueue) == []
