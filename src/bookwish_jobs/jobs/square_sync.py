"""``square-sync``: copy Square's inventory counts into one store's inventory rows.

Square answers one count per (catalog object, location, state). The store's quantity
of an object is the sum of its ``IN_STOCK`` counts over the store's locations:

- **Locations**: a store with a Square location (``squareLocationId``, or the column
  ``SQUARE_LOCATION_ID_COLUMN`` names) asks Square for that location only (and ignores
  any other location in the answer); a store without one, or a schema without such a
  column, counts every location of its Square account.
- **States**: only ``IN_STOCK`` is on hand and for sale. ``RESERVED_FOR_SALE``,
  ``RETURNED_BY_CUSTOMER``, ``IN_TRANSIT_TO``, ``RECEIVED_FROM_VENDOR``, ``WASTE``,
  ``SOLD`` and the rest are ignored; an object Square lists only in such states has 0
  in stock.
- **Negative counts**: Square lets a location sell more than it had; such a count
  adds 0, so one oversold location does not hide stock held at another.
- Square lists counts newest first, so a repeat of the same object, location and
  state (on a later page) is older and ignored.

Counts are matched to the store's inventory rows on Square's catalog object id, in
the column ``SQUARE_ITEM_ID_COLUMN`` names (default ``squareCatalogObjectId``).
Inventory rows whose catalog object Square does not list at all are left as they
are (``unknown`` counts the objects Square lists that the store has no row for).
The result's keys are camelCase (``storeId``, ``updated``, ...).
The store's access token is read from the database when the job runs: it is never
in the job data and never logged.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select, update

from bookwish_jobs.context import AppContext
from bookwish_jobs.logs import log_event
from bookwish_jobs.models import utcnow
from bookwish_jobs.payloads import SquareSyncPayload
from bookwish_jobs.progress import NO_REPORT, Report
from bookwish_jobs.services.square import InventoryCount, SquareAuthError
from pyqueue import Backoff, JobHandle, JobOptions, UnrecoverableError

OPTIONS = JobOptions(
    attempts=3,
    backoff=Backoff(type="exponential", delay=60_000),
    remove_on_complete=True,
    remove_on_fail=False,
    timeout=300_000,
)
_IN_CHUNK = 500
IN_STOCK = "IN_STOCK"


class SquareTokenRevokedError(UnrecoverableError):
    """Square refused the store's token (401): not retried, and ops are alerted."""


def store_quantities(
    counts: Iterable[InventoryCount], location_ids: set[str] | None
) -> dict[str, int]:
    """The store's quantity per catalog object, by the rules in the module docstring.

    Args:
        counts: Square's counts, in the order Square listed them (newest first).
        location_ids: the store's locations, or None for every location.
    """
    totals: dict[str, int] = {}
    seen: set[tuple[str, str | None]] = set()
    for count in counts:
        if location_ids is not None and count.location_id not in location_ids:
            continue
        totals.setdefault(count.catalog_object_id, 0)
        key = (count.catalog_object_id, count.location_id)
        if count.state != IN_STOCK or key in seen:
            continue
        seen.add(key)
        totals[count.catalog_object_id] += max(0, count.quantity)
    return totals


def _fetch_quantities(
    ctx: AppContext, token: str, location_id: str | None
) -> tuple[dict[str, int], int]:
    """``(quantity per catalog object, pages read)``, following Square's cursor."""
    counts: list[InventoryCount] = []
    pages = 0
    locations = [location_id] if location_id else None
    try:
        for page in ctx.square.batch_retrieve_counts(token, locations):
            pages += 1
            counts += page
    except SquareAuthError as exc:
        raise SquareTokenRevokedError(f"{exc}: reconnect Square for this store") from None
    return store_quantities(counts, set(locations) if locations else None), pages


def process(job: JobHandle[SquareSyncPayload], ctx: AppContext,
            report: Report = NO_REPORT) -> dict[str, Any]:
    store_id = job.data.store_id
    store, inventory = ctx.db.node.store, ctx.db.node.inventory
    with_location = "square_location_id" in store.c
    wanted = [store.c.inventorySource, store.c.squareAccessToken]
    with ctx.db.transaction() as s:
        row = s.execute(select(*wanted, *([store.c.square_location_id] if with_location else []))
                        .where(store.c.id == store_id)).first()
    source, token = (row.inventorySource, row.squareAccessToken) if row else (None, None)
    location_id = row.square_location_id if row and with_location else None
    if source != "square" or not token:
        reason = "store not found" if source is None else "store not on Square"
        log_event("square.sync_skipped", store_id=store_id, reason=reason)
        return {"storeId": store_id, "skipped": reason}
    report.log("fetching inventory counts from Square")
    counts, pages = _fetch_quantities(ctx, token, location_id)
    report.progress(50)
    report.log(f"{len(counts)} catalog objects in {pages} pages; updating inventory")
    updated = unchanged = unknown = 0
    ids = sorted(counts)
    square_id = inventory.c.square_item_id
    stamp = {"updated_at": utcnow()} if "updated_at" in inventory.c else {}
    with ctx.db.transaction() as s:
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = ids[start : start + _IN_CHUNK]
            rows = {
                r.square_item_id: r for r in s.execute(
                    select(inventory.c.id, square_id, inventory.c.quantity)
                    .where(inventory.c.storeId == store_id, square_id.in_(chunk)))
            }
            for object_id in chunk:
                found = rows.get(object_id)
                if found is None:
                    unknown += 1
                elif found.quantity != counts[object_id]:
                    s.execute(update(inventory).where(inventory.c.id == found.id)
                              .values(quantity=counts[object_id], **stamp))
                    updated += 1
                else:
                    unchanged += 1
    result: dict[str, Any] = {"storeId": store_id, "updated": updated, "unchanged": unchanged,
                              "unknown": unknown, "pages": pages}
    report.progress(100)
    report.log(f"updated {updated}, unchanged {unchanged}, unknown {unknown}")
    log_event("square.sync_completed", job_id=job.id, **result)
    return result
