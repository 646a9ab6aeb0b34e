"""order-digest: one email per store and one for ops; claim step, no drops, no resends."""

from __future__ import annotations

import logging
import smtplib
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select, text

from bookwish_jobs import names
from bookwish_jobs.context import AppContext
from bookwish_jobs.jobs import digest_claims, order_digest
from bookwish_jobs.payloads import OrderDigestPayload
from bookwish_jobs.producers import SyncProducers
from pyqueue import Backoff

from .conftest import SmtpSink, process_job, run_job
from .helpers import (
    FakeJob,
    add_inventory,
    add_item,
    add_order,
    add_store,
    add_user,
    column,
    insert_row,
)
from .node_app import run_node
from .prisma import Variant


def seed(ctx: AppContext) -> SyncProducers:
    add_user(ctx.db, "owner", "owner@nook.example")
    add_store(ctx.db, "nook", store_name="The <Nook>", ownerId="owner",
              email="shop@nook.example")
    add_store(ctx.db, "corner", store_name="Corner", email="corner@example.com")
    add_store(ctx.db, "nomail", store_name="No Mail")
    add_user(ctx.db, "reader", "reader@example.com")
    add_inventory(ctx.db, "dune", "nook")
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


def unprocessed(ctx: AppContext, table: str) -> list[str]:
    t = ctx.db.node.by_name(table)
    with ctx.db.transaction() as s:
        return sorted(s.scalars(select(t.c.orderId).where(t.c.processed.is_(False))))


async def test_digest_per_store_and_ops(
    ctx: AppContext, bw_redis_url: str, smtp: tuple[SmtpSink, int]
) -> None:
    seed(ctx)
    outcome = await run_job(ctx, bw_redis_url, names.ORDER_DIGEST, {})
    assert outcome.state == "completed", outcome.value
    assert outcome.value == {"storesEmailed": 2, "storeEntries": 3, "opsEntries": 2,
                             "uncertain": 0, "noRecipient": 1}
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
    assert unprocessed(ctx, "OrderDigestQueue") == []
    assert unprocessed(ctx, "BookwishOpsDigestQueue") == []
    again = await run_job(ctx, bw_redis_url, names.ORDER_DIGEST, {})
    assert again.value["storeEntries"] == 0
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
    assert unprocessed(ctx, "OrderDigestQueue") == ["late"]
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
    real_mark = digest_claims.mark_processed
    crashes: list[int] = []

    def crash_once(*args: Any) -> None:
        if not crashes:
            crashes.append(1)
            raise ConnectionError("database went away after the email was sent")
        real_mark(*args)

    monkeypatch.setattr(digest_claims, "mark_processed", crash_once)
    caplog.set_level(logging.INFO)
    outcome = await run_job(ctx, bw_redis_url, names.ORDER_DIGEST, {},
                            backoff=Backoff(type="fixed", delay=50))
    assert outcome.state == "completed"
    assert outcome.attempts_made == 1
    recipients = [m["To"] for m in smtp[0].messages]
    assert sorted(recipients) == sorted(set(recipients))  # nobody got the same digest twice
    assert len(recipients) == 3
    assert unprocessed(ctx, "OrderDigestQueue") == []
    assert unprocessed(ctx, "BookwishOpsDigestQueue") == []
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
    assert unprocessed(ctx, "OrderDigestQueue") == []


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
    assert unprocessed(ctx, "OrderDigestQueue") == []
    assert unprocessed(ctx, "BookwishOpsDigestQueue") == []


async def test_a_failed_run_holds_nothing_back_smtp_down_then_back_then_a_node_run(
    ctx: AppContext, bw_redis_url: str, smtp: tuple[SmtpSink, int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 27: a run that failed while SMTP was down kept its claims for 2 hours, so
    the next run sent nothing. Now the failed run releases them."""
    seed(ctx)
    sink, port = smtp
    sink.controller.stop()  # SMTP down: connection refused
    caplog.set_level(logging.INFO)
    down = await run_job(ctx, bw_redis_url, names.ORDER_DIGEST, {"type": "daily"}, attempts=1)
    assert down.state == "failed"
    assert isinstance(down.value, order_digest.DigestIncompleteError)
    assert unprocessed(ctx, "OrderDigestQueue") == ["o1", "o2", "o3"]  # o4: no recipient
    [released] = [r.fields for r in caplog.records  # type: ignore[attr-defined]
                  if getattr(r, "event", "") == "digest.claims_released"]
    assert released["entries"] == 5  # 3 store entries, 2 ops entries
    sink.controller = Controller(sink, hostname="127.0.0.1", port=port)
    sink.controller.start()  # SMTP back
    [added] = [e for e in run_node({"action": "produce", "redisUrl": bw_redis_url,
                                    "digest": True}) if e["event"] == "added"]
    again = await process_job(ctx, bw_redis_url, names.ORDER_DIGEST, added["jobId"])
    assert again.state == "completed", again.value
    assert again.value == {"storesEmailed": 2, "storeEntries": 3, "opsEntries": 2,
                           "uncertain": 0, "noRecipient": 0}
    assert sorted(by_recipient(sink)) == ["corner@example.com", "ops@bookwish.test",
                                          "owner@nook.example"]
    assert unprocessed(ctx, "OrderDigestQueue") == []
    assert unprocessed(ctx, "BookwishOpsDigestQueue") == []


async def test_nulls_in_nullable_columns_render_and_never_fail_the_digest(
    ctx: AppContext, bw_redis_url: str, smtp: tuple[SmtpSink, int], variant: Variant,
) -> None:
    """An item without a title, an order without a customer (or, where the schema allows
    it, a customer without an email, an order without a number), a store without a
    name: the digest renders them and goes out."""
    add_user(ctx.db, "owner", "owner@nook.example")
    add_user(ctx.db, "ghostly", None if variant.id == "prisma-renamed" else "g@example.com")
    add_store(ctx.db, "nook", store_name=None if variant.id != "prisma" else "The Nook",
              ownerId="owner")
    add_inventory(ctx.db, "dune", "nook")
    add_order(ctx.db, "o1", "nook", status="paid", user_id="ghostly",
              number=None if variant.id == "prisma-renamed" else "N-o1")
    add_item(ctx.db, "o1", "dune", 2, None)
    add_item(ctx.db, "o1", None, 1, "Dune <1965>")
    insert_row(ctx.db, "OrderDigestQueue", storeId="nook", orderId="o1", isSpecialOrder=False)
    outcome = await run_job(ctx, bw_redis_url, names.ORDER_DIGEST, {"type": "daily"},
                            attempts=1)
    assert outcome.state == "completed", outcome.value
    [mail] = smtp[0].messages
    text = text_of(mail).replace("\r\n", "\n")
    assert "\n    2 x (untitled)\n" in text
    assert "\n    1 x Dune <1965>\n" in text
    assert "2 &times; (untitled)" in text_of(mail, "text/html")
    if variant.id == "prisma-renamed":
        assert "-   paid  no customer on file\n" in text
    if variant.id != "prisma":
        assert mail["Subject"] == "BookWish daily orders"
    assert unprocessed(ctx, "OrderDigestQueue") == []


async def test_processed_is_stamped_where_the_table_can_say_when(
    ctx: AppContext, bw_redis_url: str, smtp: tuple[SmtpSink, int], variant: Variant,
) -> None:
    """Without a processed-at column (the design's schema) the digest marks ``processed``
    alone; with one (under its default or a mapped name) it stamps it too."""
    seed(ctx)
    outcome = await run_job(ctx, bw_redis_url, names.ORDER_DIGEST, {"type": "daily"})
    assert outcome.state == "completed", outcome.value
    table = ctx.db.node.order_digest
    assert ("digest_processed_at" in table.c) == (variant.id != "prisma")
    if "digest_processed_at" in table.c:
        assert None not in column(ctx.db, "OrderDigestQueue", "digest_processed_at")


def test_without_an_ops_address_the_ops_entries_wait(
    ctx: AppContext, smtp: tuple[SmtpSink, int]
) -> None:
    seed(ctx)
    ctx.settings = ctx.settings.model_copy(update={"ops_digest_email": None})
    result = order_digest.process(FakeJob(OrderDigestPayload()), ctx)  # type: ignore[arg-type]
    assert result["opsEntries"] == 0
    assert "ops@bookwish.test" not in by_recipient(smtp[0])
    assert unprocessed(ctx, "BookwishOpsDigestQueue") == ["o1", "o3"]
