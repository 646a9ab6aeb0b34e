"""``square-sync``: copy Square's inventory counts into one store's inventory rows.

The store's access token is read from the database when the job runs: it is never
in the job data and never logged.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from bookwish_jobs.context import AppContext
from bookwish_jobs.logs import log_event
from bookwish_jobs.models import Inventory, Store
from bookwish_jobs.services.square import SquareAuthError
from pyqueue import Backoff, Job, JobOptions, UnrecoverableError

JOB_NAME = "square-sync"
HOURLY_MS = 3_600_000
OPTIONS = JobOptions(
    attempts=3,
    backoff=Backoff(type="exponential", delay=60_000),
    remove_on_complete=True,
    remove_on_fail=False,
)
_IN_CHUNK = 500


class SquareSyncPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    store_id: str = Field(min_length=1)


def schedule_id(store_id: str) -> str:
    """The job id of a store's hourly sync (dedupes the schedule)."""
    return f"square-sync-{store_id}"


def _fetch_counts(ctx: AppContext, token: str, location_id: str | None) -> tuple[dict[str, int],
                                                                               int]:
    counts: dict[str, int] = {}
    pages = 0
    try:
        for page in ctx.square.batch_retrieve_counts(token, [location_id] if location_id else None):
            pages += 1
            for count in page:
                if count.state == "IN_STOCK":
                    counts[count.catalog_object_id] = (
                        counts.get(count.catalog_object_id, 0) + count.quantity
                    )
    except SquareAuthError as exc:
        raise UnrecoverableError(f"{exc}: reconnect Square for this store") from None
    return counts, pages


def process(job: Job[SquareSyncPayload], ctx: AppContext) -> dict[str, Any]:
    store_id = job.data.store_id
    with ctx.db.transaction() as s:
        store = s.get(Store, store_id)
        token = store.squareAccessToken if store is not None else None
        location_id = store.squareLocationId if store is not None else None
        source = store.inventorySource if store is not None else None
    if source != "square" or not token:
        reason = "store not found" if source is None else "store not on Square"
        log_event("square.sync_skipped", store_id=store_id, reason=reason)
        return {"store_id": store_id, "skipped": reason}
    counts, pages = _fetch_counts(ctx, token, location_id)
    updated = unchanged = unknown = 0
    ids = sorted(counts)
    with ctx.db.transaction() as s:
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = ids[start : start + _IN_CHUNK]
            rows = {
                row.squareCatalogObjectId: row
                for row in s.scalars(select(Inventory).where(
                    Inventory.storeId == store_id, Inventory.squareCatalogObjectId.in_(chunk)
                ))
            }
            for object_id in chunk:
                row = rows.get(object_id)
                if row is None:
                    unknown += 1
                elif row.quantity != counts[object_id]:
                    row.quantity = counts[object_id]
                    updated += 1
                else:
                    unchanged += 1
    result: dict[str, Any] = {"store_id": store_id, "updated": updated, "unchanged": unchanged,
              "unknown": unknown, "pages": pages}
    log_event("square.sync_completed", job_id=job.id, **result)
    return result
