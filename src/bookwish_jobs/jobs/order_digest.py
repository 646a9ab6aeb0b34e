"""``order-digest``: daily emails of new orders, per store and for BookWish operations.

Which run sends which entry, and why none is dropped or sent twice, is the claim step
of ``digest_claims.py``. A failed attempt releases the claims it did not start
sending, so the next run (its retry, or a new run a Node or Python producer adds)
sends them: an SMTP outage delays a digest, it does not hold it back.

A store whose email fails does not stop the others or the ops digest: the run goes
on, then fails so that the job's retry sends only what is still unsent. A store with
no address (no owner email, no store email) has its entries marked processed and
``digest.no_recipient`` logged, as the Node code does, so they do not pile up.

NULLs in nullable columns render as text, never as a failure: an item without a title
reads "(untitled)", an order without a customer email "no customer on file", a store
without a name gets a subject without one. The result's keys are camelCase
(``storesEmailed``, ``storeEntries``, ``opsEntries``, ``uncertain``, ``noRecipient``).
"""

from __future__ import annotations

import functools
import html
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, select

from bookwish_jobs.context import AppContext
from bookwish_jobs.jobs.digest_claims import (
    Claimed,
    claim,
    claimed,
    deliver_group,
    mark_processed,
    release,
)
from bookwish_jobs.logs import log_event
from bookwish_jobs.payloads import OrderDigestPayload
from bookwish_jobs.progress import NO_REPORT, Report
from bookwish_jobs.services.email import build_message
from pyqueue import Backoff, JobHandle, JobOptions

OPTIONS = JobOptions(
    attempts=3,
    backoff=Backoff(type="exponential", delay=60_000),
    remove_on_complete=True,
    remove_on_fail=False,
    timeout=600_000,
)
UNTITLED = "(untitled)"


class DigestIncompleteError(Exception):
    """Some digests could not be sent; the retry sends only those."""


@dataclass(frozen=True, slots=True)
class OrderLine:
    number: str | None
    status: str
    customer: str | None
    items: list[tuple[str | None, int | None]]
    is_special: bool


def _order_lines(ctx: AppContext, entries: list[Claimed]) -> list[OrderLine]:
    order, user, item = ctx.db.node.order, ctx.db.node.user, ctx.db.node.order_item
    special = {e.order_id: e.is_special_order for e in entries}
    title = item.c.order_item_title if "order_item_title" in item.c else None
    with ctx.db.transaction() as s:
        orders = s.execute(
            select(order.c.id, order.c.orderNumber, order.c.status, user.c.email)
            .select_from(order.outerjoin(user, user.c.id == order.c.userId))
            .where(order.c.id.in_(list(special))).order_by(order.c.createdAt, order.c.id)
        ).all()
        items: dict[str, list[tuple[str | None, int | None]]] = {}
        for row in s.execute(
            select(item.c.orderId, item.c.quantity, *([title] if title is not None else []))
            .where(item.c.orderId.in_(list(special))).order_by(item.c.id)
        ):
            items.setdefault(row[0], []).append((row[2] if title is not None else None, row[1]))
    return [OrderLine(number, status, customer, items.get(order_id, []), special[order_id])
            for order_id, number, status, customer in orders]


def render(title: str, lines: list[OrderLine]) -> tuple[str, str]:
    """``(text, html)`` bodies; every value from the database is HTML-escaped, and a
    NULL renders as "(untitled)" (an item's title) or as nothing."""
    text_rows, html_rows = [], []
    for line in lines:
        mark = " [SPECIAL ORDER]" if line.is_special else ""
        number = line.number or ""
        customer = line.customer or "no customer on file"
        items = [(item or UNTITLED, "" if quantity is None else str(quantity))
                 for item, quantity in line.items]
        text_rows.append(f"- {number}  {line.status}  {customer}{mark}")
        text_rows += [f"    {quantity} x {item}" for item, quantity in items]
        badge = " <strong>Special order</strong>" if line.is_special else ""
        item_rows = "".join(f"<li>{quantity} &times; {html.escape(item)}</li>"
                            for item, quantity in items)
        html_rows.append(f"<li>{html.escape(number)} &mdash; {html.escape(line.status)} "
                         f"&mdash; {html.escape(customer)}{badge}<ul>{item_rows}</ul></li>")
    text = f"{title}\n\n" + "\n".join(text_rows) + "\n"
    body = f"<h1>{html.escape(title)}</h1><ul>{''.join(html_rows)}</ul>"
    return text, f"<!doctype html><html><body>{body}</body></html>"


def _send_digest(ctx: AppContext, to: str, title: str, entries: list[Claimed]) -> None:
    text, html_body = render(title, _order_lines(ctx, entries))
    ctx.mailer.send(build_message(sender=ctx.settings.mail_from, to=to, subject=title,
                                  text=text, html_body=html_body))


def _store_recipient(ctx: AppContext, store_id: str) -> tuple[str | None, str | None]:
    """``(name, address)``: the owner's email, else the store's (``store.owner?.email ||
    store.email``); None for a store that no longer exists."""
    store, user = ctx.db.node.store, ctx.db.node.user
    name = store.c.store_name if "store_name" in store.c else None
    with ctx.db.transaction() as s:
        row = s.execute(
            select(store.c.email, user.c.email, *([name] if name is not None else []))
            .select_from(store.outerjoin(user, user.c.id == store.c.ownerId))
            .where(store.c.id == store_id)
        ).first()
    if row is None:
        return None, None
    return (row[2] if name is not None else None), row[1] or row[0] or None


def _subject(store_name: str | None) -> str:
    return f"BookWish daily orders for {store_name}" if store_name else "BookWish daily orders"


def process(job: JobHandle[OrderDigestPayload], ctx: AppContext,
            report: Report = NO_REPORT) -> dict[str, Any]:
    # Same on every retry of this job, different for any other job (ids can repeat
    # after a Redis reset, creation timestamps don't).
    claim_id = f"digest:{job.id}:{job.timestamp}"
    try:
        return _run(job, ctx, report, claim_id)
    except BaseException:
        try:
            released = release(ctx, claim_id)
        except Exception as exc:  # the database is down too: claims wait for STALE_CLAIM
            log_event("digest.release_failed", logging.WARNING, job_id=job.id,
                      error=str(exc) or type(exc).__name__)
        else:
            log_event("digest.claims_released", job_id=job.id, entries=released)
        raise


def _run(job: JobHandle[OrderDigestPayload], ctx: AppContext, report: Report,
         claim_id: str) -> dict[str, Any]:
    totals = {"storesEmailed": 0, "storeEntries": 0, "opsEntries": 0, "uncertain": 0,
              "noRecipient": 0}
    failed: list[str] = []
    stores_table, ops_table = ctx.db.node.order_digest, ctx.db.node.ops_digest
    claim(ctx, stores_table, claim_id)
    by_store: dict[str, list[Claimed]] = {}
    for entry in claimed(ctx, stores_table, claim_id):
        by_store.setdefault(entry.store_id or "", []).append(entry)
    report.log(f"claimed {sum(map(len, by_store.values()))} store entries "
               f"for {len(by_store)} stores")
    for done_stores, (store_id, entries) in enumerate(by_store.items(), start=1):
        name, to = _store_recipient(ctx, store_id)
        if to is None:
            mark_processed(ctx, stores_table, [e.id for e in entries])
            log_event("digest.no_recipient", logging.WARNING, store_id=store_id,
                      entries=len(entries))
            totals["noRecipient"] += len(entries)
            continue
        send = functools.partial(_send_digest, ctx, to, _subject(name))
        if not _deliver(ctx, stores_table, entries, send, totals, failed, store_id):
            continue
        report.progress(int(90 * done_stores / max(1, len(by_store))))
    ops_to = ctx.settings.ops_digest_email
    if ops_to:
        claim(ctx, ops_table, claim_id)
        ops_entries = claimed(ctx, ops_table, claim_id)
        report.log(f"claimed {len(ops_entries)} ops entries")
        if ops_entries:
            send_ops = functools.partial(_send_digest, ctx, ops_to, "BookWish operations digest")
            _deliver(ctx, ops_table, ops_entries, send_ops, totals, failed, None)
    report.progress(100)
    if failed:
        raise DigestIncompleteError(f"digest not sent for {', '.join(failed)}; the retry "
                                    "sends only these")
    log_event("digest.completed", job_id=job.id, **totals)
    report.log(f"done: {totals}")
    return totals


def _deliver(ctx: AppContext, table: Table, entries: list[Claimed], send: Any,
             totals: dict[str, int], failed: list[str], store_id: str | None) -> bool:
    """One group's email; a failure is logged and noted in ``failed``, not raised."""
    try:
        done = deliver_group(ctx, table, entries, send)
    except Exception as exc:
        failed.append(store_id if store_id is not None else "ops")
        log_event("digest.store_failed" if store_id is not None else "digest.ops_failed",
                  logging.ERROR, store_id=store_id, entries=len(entries),
                  error=str(exc) or type(exc).__name__)
        return False
    if store_id is None:
        totals["opsEntries"] = done["sent"]
    else:
        totals["storesEmailed"] += 1 if done["sent"] else 0
        totals["storeEntries"] += done["sent"]
    totals["uncertain"] += done["uncertain"]
    return True
