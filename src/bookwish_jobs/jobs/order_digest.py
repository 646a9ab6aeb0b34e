"""``order-digest``: daily emails of new orders, per store and for BookWish operations.

Entries are the Node app's rows of ``OrderDigestQueue`` and ``BookwishOpsDigestQueue``.
Claims are bookwish_jobs' own rows (``digest_claim``), so Prisma's tables only ever
see the ``processed``/``processedAt`` update the Node code makes too.

Claim step (no entry is dropped, none is emailed twice):

1. **Claim**: one INSERT ... SELECT adds a claim ``digest:<job id>:<job timestamp>`` for
   every unprocessed entry without one; the claim's primary key is the entry, so
   two runs cannot both claim it. The claim id is the same on every retry of this
   run, so a retry finds its own claims. Entries added later are unclaimed and go to
   the next digest. Claims older than ``STALE_CLAIM`` left by a run that never
   finished are taken over by the next run.
2. **Intent**: before sending a group's email, its claims get ``send_started_at``
   (committed). If sending raises, the mark is cleared.
3. **Send**, then **mark** the entries ``processed`` and drop their claims, in one
   transaction.

A retry that finds claims with ``send_started_at`` set on unprocessed entries knows
the previous attempt died between sending and marking: it marks them processed
without sending again (logged as ``digest.delivery_uncertain``).

A store whose email fails does not stop the others or the ops digest: the run goes
on, then fails so that the job's retry sends only what is still unsent. A store with
no address (no owner email, no store email) has its entries marked processed and
``digest.no_recipient`` logged, as the Node code does, so they do not pile up.
"""

from __future__ import annotations

import functools
import html
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, exists, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bookwish_jobs.context import AppContext
from bookwish_jobs.logs import log_event
from bookwish_jobs.models import (
    BookwishOpsDigestQueue,
    Order,
    OrderDigestQueue,
    OrderItem,
    Store,
    User,
    utcnow,
)
from bookwish_jobs.own_models import DigestClaim
from bookwish_jobs.payloads import OrderDigestPayload
from bookwish_jobs.progress import NO_REPORT, Report
from bookwish_jobs.services.email import build_message
from pyqueue import Backoff, JobHandle, JobOptions

STALE_CLAIM = timedelta(hours=2)
OPTIONS = JobOptions(
    attempts=3,
    backoff=Backoff(type="exponential", delay=60_000),
    remove_on_complete=True,
    remove_on_fail=False,
    timeout=600_000,
)
Table = type[OrderDigestQueue] | type[BookwishOpsDigestQueue]


class DigestIncompleteError(Exception):
    """Some digests could not be sent; the retry sends only those."""


@dataclass(frozen=True, slots=True)
class Claimed:
    id: str
    order_id: str
    store_id: str | None
    is_special_order: bool
    send_started_at: datetime | None


@dataclass(frozen=True, slots=True)
class OrderLine:
    number: str
    status: str
    customer: str | None
    items: list[tuple[str, int]]
    is_special: bool


def _insert(session: Session) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(DigestClaim)


def claim(ctx: AppContext, table: Table, claim_id: str) -> None:
    now = utcnow()
    name = table.__tablename__
    unprocessed = select(table.id).where(table.processed.is_(False))
    with ctx.db.transaction() as s:
        s.execute(
            update(DigestClaim)
            .where(DigestClaim.entry_table == name, DigestClaim.claim_id != claim_id,
                   DigestClaim.claimed_at < now - STALE_CLAIM,
                   DigestClaim.entry_id.in_(unprocessed))
            .values(claim_id=claim_id, claimed_at=now)
            .execution_options(synchronize_session=False)
        )
        taken = exists().where(DigestClaim.entry_table == name, DigestClaim.entry_id == table.id)
        rows = select(literal(name), table.id, literal(claim_id), literal(now)).where(
            table.processed.is_(False), ~taken)
        s.execute(_insert(s).from_select(
            ["entry_table", "entry_id", "claim_id", "claimed_at"], rows,
        ).on_conflict_do_nothing())


def _claimed(ctx: AppContext, table: Table, claim_id: str) -> list[Claimed]:
    name = table.__tablename__
    store_col = getattr(table, "storeId", literal(None))
    special_col = getattr(table, "isSpecialOrder", literal(False))
    with ctx.db.transaction() as s:
        rows = s.execute(
            select(table.id, table.orderId, store_col, special_col, DigestClaim.send_started_at)
            .join(DigestClaim, and_(DigestClaim.entry_table == name,
                                    DigestClaim.entry_id == table.id))
            .where(DigestClaim.claim_id == claim_id, table.processed.is_(False))
            .order_by(table.createdAt, table.id)
        ).all()
    return [Claimed(r[0], r[1], r[2], bool(r[3]), r[4]) for r in rows]


def _set_started(ctx: AppContext, table: Table, ids: list[str],
                 value: datetime | None) -> None:
    with ctx.db.transaction() as s:
        s.execute(update(DigestClaim)
                  .where(DigestClaim.entry_table == table.__tablename__,
                         DigestClaim.entry_id.in_(ids))
                  .values(send_started_at=value)
                  .execution_options(synchronize_session=False))


def mark_processed(ctx: AppContext, table: Table, ids: list[str]) -> None:
    with ctx.db.transaction() as s:
        s.execute(update(table).where(table.id.in_(ids))
                  .values(processed=True, processedAt=utcnow())
                  .execution_options(synchronize_session=False))
        s.execute(delete(DigestClaim)
                  .where(DigestClaim.entry_table == table.__tablename__,
                         DigestClaim.entry_id.in_(ids))
                  .execution_options(synchronize_session=False))


def deliver_group(
    ctx: AppContext, table: Table, entries: list[Claimed], send: Callable[[list[Claimed]], None]
) -> dict[str, int]:
    """Send one email for ``entries`` unless a previous attempt may have sent it."""
    uncertain = [e.id for e in entries if e.send_started_at is not None]
    fresh = [e for e in entries if e.send_started_at is None]
    if uncertain:
        mark_processed(ctx, table, uncertain)
        log_event("digest.delivery_uncertain", table=table.__tablename__, entries=len(uncertain))
    if fresh:
        ids = [e.id for e in fresh]
        _set_started(ctx, table, ids, utcnow())
        try:
            send(fresh)
        except BaseException:
            _set_started(ctx, table, ids, None)
            raise
        mark_processed(ctx, table, ids)
    return {"sent": len(fresh), "uncertain": len(uncertain)}


def _order_lines(ctx: AppContext, entries: list[Claimed]) -> list[OrderLine]:
    special = {e.order_id: e.is_special_order for e in entries}
    with ctx.db.transaction() as s:
        orders = s.execute(
            select(Order.id, Order.orderNumber, Order.status, User.email)
            .outerjoin(User, User.id == Order.userId)
            .where(Order.id.in_(list(special))).order_by(Order.createdAt, Order.id)
        ).all()
        items: dict[str, list[tuple[str, int]]] = {}
        for order_id, title, quantity in s.execute(
            select(OrderItem.orderId, OrderItem.title, OrderItem.quantity)
            .where(OrderItem.orderId.in_(list(special))).order_by(OrderItem.id)
        ):
            items.setdefault(order_id, []).append((title, quantity))
    return [OrderLine(number, status, customer, items.get(order_id, []), special[order_id])
            for order_id, number, status, customer in orders]


def render(title: str, lines: list[OrderLine]) -> tuple[str, str]:
    """``(text, html)`` bodies; every value from the database is HTML-escaped."""
    text_rows, html_rows = [], []
    for line in lines:
        mark = " [SPECIAL ORDER]" if line.is_special else ""
        customer = line.customer or "no customer on file"
        text_rows.append(f"- {line.number}  {line.status}  {customer}{mark}")
        text_rows += [f"    {quantity} x {item}" for item, quantity in line.items]
        badge = " <strong>Special order</strong>" if line.is_special else ""
        item_rows = "".join(f"<li>{quantity} &times; {html.escape(item)}</li>"
                            for item, quantity in line.items)
        html_rows.append(f"<li>{html.escape(line.number)} &mdash; {html.escape(line.status)} "
                         f"&mdash; {html.escape(customer)}{badge}<ul>{item_rows}</ul></li>")
    text = f"{title}\n\n" + "\n".join(text_rows) + "\n"
    body = f"<h1>{html.escape(title)}</h1><ul>{''.join(html_rows)}</ul>"
    return text, f"<!doctype html><html><body>{body}</body></html>"


def _send_digest(ctx: AppContext, to: str, title: str, entries: list[Claimed]) -> None:
    text, html_body = render(title, _order_lines(ctx, entries))
    ctx.mailer.send(build_message(sender=ctx.settings.mail_from, to=to, subject=title,
                                  text=text, html_body=html_body))


def _store_recipient(ctx: AppContext, store_id: str) -> tuple[str, str | None]:
    with ctx.db.transaction() as s:
        store = s.get(Store, store_id)
        if store is None:
            return store_id, None
        owner = s.get(User, store.ownerId) if store.ownerId else None
        return store.name, (owner.email if owner is not None else None) or store.email or None


def process(job: JobHandle[OrderDigestPayload], ctx: AppContext,
            report: Report = NO_REPORT) -> dict[str, Any]:
    # Same on every retry of this job, different for any other job (ids can repeat
    # after a Redis reset, creation timestamps don't).
    claim_id = f"digest:{job.id}:{job.timestamp}"
    totals = {"stores_emailed": 0, "store_entries": 0, "ops_entries": 0, "uncertain": 0,
              "no_recipient": 0}
    failed: list[str] = []
    claim(ctx, OrderDigestQueue, claim_id)
    by_store: dict[str, list[Claimed]] = {}
    for entry in _claimed(ctx, OrderDigestQueue, claim_id):
        by_store.setdefault(entry.store_id or "", []).append(entry)
    report.log(f"claimed {sum(map(len, by_store.values()))} store entries "
               f"for {len(by_store)} stores")
    for done_stores, (store_id, entries) in enumerate(by_store.items(), start=1):
        name, to = _store_recipient(ctx, store_id)
        if to is None:
            mark_processed(ctx, OrderDigestQueue, [e.id for e in entries])
            log_event("digest.no_recipient", logging.WARNING, store_id=store_id,
                      entries=len(entries))
            totals["no_recipient"] += len(entries)
            continue
        title = f"BookWish daily orders for {name}"
        send = functools.partial(_send_digest, ctx, to, title)
        try:
            done = deliver_group(ctx, OrderDigestQueue, entries, send)
        except Exception as exc:
            failed.append(store_id)
            log_event("digest.store_failed", logging.ERROR, store_id=store_id,
                      entries=len(entries), error=str(exc) or type(exc).__name__)
            continue
        totals["stores_emailed"] += 1 if done["sent"] else 0
        totals["store_entries"] += done["sent"]
        totals["uncertain"] += done["uncertain"]
        report.progress(int(90 * done_stores / max(1, len(by_store))))
    ops_to = ctx.settings.ops_digest_email
    if ops_to:
        claim(ctx, BookwishOpsDigestQueue, claim_id)
        ops_entries = _claimed(ctx, BookwishOpsDigestQueue, claim_id)
        report.log(f"claimed {len(ops_entries)} ops entries")
        if ops_entries:
            send_ops = functools.partial(_send_digest, ctx, ops_to, "BookWish operations digest")
            try:
                done = deliver_group(ctx, BookwishOpsDigestQueue, ops_entries, send_ops)
                totals["ops_entries"] = done["sent"]
                totals["uncertain"] += done["uncertain"]
            except Exception as exc:
                failed.append("ops")
                log_event("digest.ops_failed", logging.ERROR, entries=len(ops_entries),
                          error=str(exc) or type(exc).__name__)
    report.progress(100)
    if failed:
        raise DigestIncompleteError(f"digest not sent for {', '.join(failed)}; the retry "
                                    "sends only these")
    log_event("digest.completed", job_id=job.id, **totals)
    report.log(f"done: {totals}")
    return totals
