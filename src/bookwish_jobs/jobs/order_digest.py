"""``order-digest``: daily emails of new orders, per store and for BookWish operations.

Claim step (no entry is dropped, none is emailed twice):

1. **Claim**: one UPDATE sets ``claimId = "digest:<job id>:<job timestamp>"`` on every unprocessed,
   unclaimed entry. The job id is the same on every retry of this run, so a retry
   finds its own claim. Entries added later are unclaimed and go to the next digest.
2. **Intent**: before sending a group's email, its entries get ``sendStartedAt``
   (committed). If sending raises, the mark is cleared and the job retries.
3. **Send**, then **mark** the entries ``processed``.

A retry that finds claimed entries with ``sendStartedAt`` set but not processed knows
the previous attempt died between sending and marking: it marks them processed
without sending again (logged as ``digest.delivery_uncertain``). Claims older than
``STALE_CLAIM`` left by a run that never finished are taken over by the next run.
"""

from __future__ import annotations

import functools
import html
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update

from bookwish_jobs.context import AppContext
from bookwish_jobs.logs import log_event
from bookwish_jobs.models import OpsDigestQueue, Order, Store, StoreDigestQueue, User, utcnow
from bookwish_jobs.payloads import OrderDigestPayload
from bookwish_jobs.services.email import build_message
from pyqueue import Backoff, Job, JobOptions

STALE_CLAIM = timedelta(hours=2)
OPTIONS = JobOptions(
    attempts=3,
    backoff=Backoff(type="exponential", delay=60_000),
    remove_on_complete=True,
    remove_on_fail=False,
    timeout=600_000,
)
Table = type[StoreDigestQueue] | type[OpsDigestQueue]


def claim(ctx: AppContext, table: Table, claim_id: str) -> None:
    now = utcnow()
    with ctx.db.transaction() as s:
        s.execute(
            update(table)
            .where(table.processed.is_(False), or_(
                table.claimId.is_(None),
                and_(table.claimId != claim_id, table.claimedAt < now - STALE_CLAIM),
            ))
            .values(claimId=claim_id, claimedAt=now)
            .execution_options(synchronize_session=False)
        )


def _set(ctx: AppContext, table: Table, ids: list[str], **values: Any) -> None:
    with ctx.db.transaction() as s:
        s.execute(update(table).where(table.id.in_(ids)).values(**values)
                  .execution_options(synchronize_session=False))


def deliver_group(
    ctx: AppContext, table: Table, entries: list[Any], send: Callable[[list[Any]], None]
) -> dict[str, int]:
    """Send one email for ``entries`` unless a previous attempt may have sent it."""
    uncertain = [e.id for e in entries if e.sendStartedAt is not None]
    fresh = [e for e in entries if e.sendStartedAt is None]
    if uncertain:
        mark_processed(ctx, table, uncertain)
        log_event("digest.delivery_uncertain", table=table.__tablename__, entries=len(uncertain))
    if fresh:
        ids = [e.id for e in fresh]
        _set(ctx, table, ids, sendStartedAt=utcnow())
        try:
            send(fresh)
        except BaseException:
            _set(ctx, table, ids, sendStartedAt=None)
            raise
        mark_processed(ctx, table, ids)
    return {"sent": len(fresh), "uncertain": len(uncertain)}


def mark_processed(ctx: AppContext, table: Table, ids: list[str]) -> None:
    _set(ctx, table, ids, processed=True, processedAt=utcnow())


def _order_lines(ctx: AppContext, entries: list[Any]) -> list[tuple[str, int, str, bool]]:
    special = {e.orderId: bool(getattr(e, "isSpecialOrder", False)) for e in entries}
    with ctx.db.transaction() as s:
        orders = s.scalars(select(Order).where(Order.id.in_(list(special)))
                           .order_by(Order.createdAt)).all()
        return [(o.orderNumber, o.totalCents, o.status, special[o.id]) for o in orders]


def render(title: str, lines: list[tuple[str, int, str, bool]]) -> tuple[str, str]:
    text_rows, html_rows = [], []
    for number, cents, status, is_special in lines:
        mark = " [SPECIAL ORDER]" if is_special else ""
        text_rows.append(f"- {number}  ${cents / 100:.2f}  {status}{mark}")
        badge = " <strong>Special order</strong>" if is_special else ""
        html_rows.append(f"<li>{html.escape(number)} &mdash; ${cents / 100:.2f} "
                         f"&mdash; {html.escape(status)}{badge}</li>")
    text = f"{title}\n\n" + "\n".join(text_rows) + "\n"
    body = f"<h1>{html.escape(title)}</h1><ul>{''.join(html_rows)}</ul>"
    return text, f"<!doctype html><html><body>{body}</body></html>"


def _send_digest(ctx: AppContext, to: str, title: str, entries: list[Any]) -> None:
    text, html_body = render(title, _order_lines(ctx, entries))
    ctx.mailer.send(build_message(sender=ctx.settings.mail_from, to=to, subject=title,
                                  text=text, html_body=html_body))


def _store_recipient(ctx: AppContext, store_id: str) -> tuple[str, str | None]:
    with ctx.db.transaction() as s:
        store = s.get(Store, store_id)
        if store is None:
            return store_id, None
        owner = s.get(User, store.ownerId) if store.ownerId else None
        return store.name, (owner.email if owner is not None else None) or store.email


def _claimed(ctx: AppContext, table: Table, claim_id: str) -> list[Any]:
    with ctx.db.transaction() as s:
        return list(s.scalars(select(table).where(table.claimId == claim_id,
                                                  table.processed.is_(False))
                              .order_by(table.createdAt)))


def process(job: Job[OrderDigestPayload], ctx: AppContext) -> dict[str, Any]:
    # Same on every retry of this job, different for any other job (ids can repeat
    # after a Redis reset, creation timestamps don't).
    claim_id = f"digest:{job.id}:{job.timestamp}"
    totals = {"stores_emailed": 0, "store_entries": 0, "ops_entries": 0, "uncertain": 0}
    claim(ctx, StoreDigestQueue, claim_id)
    by_store: dict[str, list[Any]] = {}
    for entry in _claimed(ctx, StoreDigestQueue, claim_id):
        by_store.setdefault(entry.storeId, []).append(entry)
    for store_id, entries in by_store.items():
        name, to = _store_recipient(ctx, store_id)
        if to is None:
            # Keep the entries for a later digest, once the store has an address.
            _set(ctx, StoreDigestQueue, [e.id for e in entries], claimId=None, claimedAt=None)
            log_event("digest.no_recipient", store_id=store_id, entries=len(entries))
            continue
        title = f"BookWish daily orders for {name}"
        send = functools.partial(_send_digest, ctx, to, title)
        done = deliver_group(ctx, StoreDigestQueue, entries, send)
        totals["stores_emailed"] += 1 if done["sent"] else 0
        totals["store_entries"] += done["sent"]
        totals["uncertain"] += done["uncertain"]
    ops_to = ctx.settings.ops_digest_email
    if ops_to:
        claim(ctx, OpsDigestQueue, claim_id)
        entries = _claimed(ctx, OpsDigestQueue, claim_id)
        if entries:
            send_ops = functools.partial(_send_digest, ctx, ops_to, "BookWish operations digest")
            done = deliver_group(ctx, OpsDigestQueue, entries, send_ops)
            totals["ops_entries"] = done["sent"]
            totals["uncertain"] += done["uncertain"]
    log_event("digest.completed", job_id=job.id, **totals)
    return totals
