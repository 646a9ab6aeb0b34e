"""The order digest's claims: which run sends which entry, so none is dropped or sent twice.

Entries are the Node app's rows of ``OrderDigestQueue`` and ``BookwishOpsDigestQueue``.
Claims are bookwish_jobs' own rows (``digest_claim``), so Prisma's tables only ever
see the update the Node code makes too: ``processed`` (and a processed-at stamp and
``@updatedAt`` where the table has those columns).

1. **Claim**: one INSERT ... SELECT adds a claim ``digest:<job id>:<job timestamp>`` for
   every unprocessed entry without one; the claim's primary key is the entry, so two
   runs cannot both claim it. The claim id is the same on every retry of a run, so a
   retry finds its own claims. Entries added later are unclaimed and go to the next
   run (or the retry).
2. **Intent**: before sending a group's email, its claims get ``send_started_at``
   (committed). If sending raises, the mark is cleared.
3. **Send**, then **mark** the entries processed and drop their claims, in one
   transaction.
4. **Release**: an attempt that fails drops its claims that never started sending
   (:func:`release`), so the next run, a retry or a new one from Node or Python,
   sends them; nothing waits for the failed run.

A run that finds claims of its own with ``send_started_at`` set on unprocessed entries
knows an earlier attempt died between sending and marking: it marks them processed
without sending again (logged as ``digest.delivery_uncertain``). Claims that a run
which never finished left (its process was killed, so nothing released them) are taken
over after ``STALE_CLAIM`` by the next run, ``send_started_at`` and all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, and_, delete, exists, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bookwish_jobs.context import AppContext
from bookwish_jobs.logs import log_event
from bookwish_jobs.models import utcnow
from bookwish_jobs.own_models import DigestClaim

# Longer than a run can last (the job's timeout is 10 minutes), with a wide margin.
STALE_CLAIM = timedelta(hours=2)


@dataclass(frozen=True, slots=True)
class Claimed:
    id: str
    order_id: str
    store_id: str | None
    is_special_order: bool
    send_started_at: datetime | None


def _insert(session: Session) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(DigestClaim)


def claim(ctx: AppContext, table: Table, claim_id: str) -> None:
    """Claim every unprocessed entry of ``table`` that no live run holds."""
    now = utcnow()
    unprocessed = select(table.c.id).where(table.c.processed.is_(False))
    with ctx.db.transaction() as s:
        s.execute(
            update(DigestClaim)
            .where(DigestClaim.entry_table == table.name, DigestClaim.claim_id != claim_id,
                   DigestClaim.claimed_at < now - STALE_CLAIM,
                   DigestClaim.entry_id.in_(unprocessed))
            .values(claim_id=claim_id, claimed_at=now)
            .execution_options(synchronize_session=False)
        )
        taken = exists().where(DigestClaim.entry_table == table.name,
                               DigestClaim.entry_id == table.c.id)
        rows = select(literal(table.name), table.c.id, literal(claim_id), literal(now)).where(
            table.c.processed.is_(False), ~taken)
        s.execute(_insert(s).from_select(
            ["entry_table", "entry_id", "claim_id", "claimed_at"], rows,
        ).on_conflict_do_nothing())


def claimed(ctx: AppContext, table: Table, claim_id: str) -> list[Claimed]:
    """This run's unprocessed entries of ``table``, oldest first where the table says."""
    store = table.c.storeId if "storeId" in table.c else literal(None)
    special = table.c.isSpecialOrder if "isSpecialOrder" in table.c else literal(False)
    order_by = [table.c.digest_created_at] if "digest_created_at" in table.c else []
    with ctx.db.transaction() as s:
        rows = s.execute(
            select(table.c.id, table.c.orderId, store, special, DigestClaim.send_started_at)
            .join(DigestClaim, and_(DigestClaim.entry_table == table.name,
                                    DigestClaim.entry_id == table.c.id))
            .where(DigestClaim.claim_id == claim_id, table.c.processed.is_(False))
            .order_by(*order_by, table.c.id)
        ).all()
    return [Claimed(r[0], r[1], r[2], bool(r[3]), r[4]) for r in rows]


def _set_started(ctx: AppContext, table: Table, ids: list[str],
                 value: datetime | None) -> None:
    with ctx.db.transaction() as s:
        s.execute(update(DigestClaim)
                  .where(DigestClaim.entry_table == table.name, DigestClaim.entry_id.in_(ids))
                  .values(send_started_at=value)
                  .execution_options(synchronize_session=False))


def mark_processed(ctx: AppContext, table: Table, ids: list[str]) -> None:
    """Mark the entries processed (stamped where the table can say when) and drop
    their claims, in one transaction."""
    now = utcnow()
    stamps = {key: now for key in ("digest_processed_at", "updated_at") if key in table.c}
    with ctx.db.transaction() as s:
        s.execute(update(table).where(table.c.id.in_(ids)).values(processed=True, **stamps))
        s.execute(delete(DigestClaim)
                  .where(DigestClaim.entry_table == table.name, DigestClaim.entry_id.in_(ids))
                  .execution_options(synchronize_session=False))


def release(ctx: AppContext, claim_id: str) -> int:
    """Drop this run's claims that never started sending; returns how many."""
    with ctx.db.transaction() as s:
        result = s.execute(delete(DigestClaim)
                           .where(DigestClaim.claim_id == claim_id,
                                  DigestClaim.send_started_at.is_(None))
                           .execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


def deliver_group(
    ctx: AppContext, table: Table, entries: list[Claimed], send: Callable[[list[Claimed]], None]
) -> dict[str, int]:
    """Send one email for ``entries`` unless a previous attempt may have sent it."""
    uncertain = [e.id for e in entries if e.send_started_at is not None]
    fresh = [e for e in entries if e.send_started_at is None]
    if uncertain:
        mark_processed(ctx, table, uncertain)
        log_event("digest.delivery_uncertain", table=table.name, entries=len(uncertain))
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
