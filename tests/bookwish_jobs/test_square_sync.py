"""square-sync: pagination, counts into inventory rows, locations and states, 401 / 429 / 5xx,
token never leaked."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from sqlalchemy import update

from bookwish_jobs import names
from bookwish_jobs.context import AppContext
from bookwish_jobs.fakes import FakeSquare
from bookwish_jobs.jobs.square_sync import store_quantities
from bookwish_jobs.logs import JsonFormatter
from bookwish_jobs.producers import Producers
from bookwish_jobs.registry import QUEUES
from bookwish_jobs.service import Service
from bookwish_jobs.services.square import InventoryCount
from pyqueue import Backoff, Queue, UnrecoverableError

from .conftest import SQUARE_TOKEN, run_job
from .helpers import add_inventory, add_store, get


def count(object_id: str, quantity: int | str, state: str = "IN_STOCK",
          location: str = "L1") -> dict[str, Any]:
    return {"catalog_object_id": object_id, "catalog_object_type": "ITEM_VARIATION",
            "state": state, "location_id": location, "quantity": str(quantity),
            "calculated_at": "2024-01-01T00:00:00Z"}


# One merchant account, two locations, several states: what Square answers when the
# request does not name a location.
TWO_LOCATIONS = [
    count("A", 3), count("A", 4, location="L2"),
    count("A", 2, state="RESERVED_FOR_SALE", location="L2"), count("A", 1, state="WASTE"),
    count("B", -2),  # L1 sold more than it had: Square lets a count go negative
    count("B", 5, location="L2"),
    count("C", 3, state="IN_TRANSIT_TO", location="L2"),  # none of C is for sale
]


def square_store(ctx: AppContext, location: str | None = "L1") -> None:
    add_store(ctx.db, "s1", inventorySource="square", squareAccessToken=SQUARE_TOKEN,
              square_location_id=location)
    add_inventory(ctx.db, "i1", "s1", square_item_id="A", quantity=1)
    add_inventory(ctx.db, "i2", "s1", square_item_id="B", quantity=5)
    add_inventory(ctx.db, "i3", "s1", square_item_id="C", quantity=0)


async def test_sync_follows_cursor_and_updates_counts(
    ctx: AppContext, bw_redis_url: str, square: FakeSquare, caplog: pytest.LogCaptureFixture
) -> None:
    square_store(ctx)
    square.counts = [count("A", 4), count("B", 5), count("C", 2), count("ZZZ", 9),
                     count("C", 1, state="WASTE")]
    caplog.set_level(logging.INFO)
    outcome = await run_job(ctx, bw_redis_url, names.SQUARE_SYNC, {"store_id": "s1"})
    assert outcome.state == "completed", outcome.value
    assert outcome.value == {"storeId": "s1", "updated": 2, "unchanged": 1, "unknown": 1,
                             "pages": 3}
    assert [get(ctx.db, "Inventory", i).quantity for i in ("i1", "i2", "i3")] == [4, 5, 2]
    cursors = [r["body"].get("cursor") for r in square.requests]
    assert cursors == [None, "2", "4"]
    assert all(r["headers"]["Authorization"] == f"Bearer {SQUARE_TOKEN}"
               for r in square.requests)
    assert all(r["body"]["location_ids"] == ["L1"] for r in square.requests)
    [event] = [r for r in caplog.records if getattr(r, "event", "") == "square.sync_completed"]
    assert event.fields["updated"] == 2  # type: ignore[attr-defined]
    logged = "\n".join(JsonFormatter().format(r) for r in caplog.records)
    assert SQUARE_TOKEN not in logged


async def test_store_without_location_sums_in_stock_over_all_locations(
    ctx: AppContext, bw_redis_url: str, square: FakeSquare
) -> None:
    square_store(ctx, location=None)
    inventory = ctx.db.node.inventory
    with ctx.db.transaction() as s:
        s.execute(update(inventory).where(inventory.c.id == "i3").values(quantity=6))
    square.counts = TWO_LOCATIONS
    outcome = await run_job(ctx, bw_redis_url, names.SQUARE_SYNC, {"store_id": "s1"})
    assert outcome.state == "completed", outcome.value
    assert all("location_ids" not in r["body"] for r in square.requests)
    # A: 3 at L1 + 4 at L2 (reserved and wasted copies are not for sale); B: L1's
    # oversold -2 does not eat L2's 5; C: listed only in transit, so none in stock.
    assert [get(ctx.db, "Inventory", i).quantity for i in ("i1", "i2", "i3")] == [7, 5, 0]
    assert outcome.value["updated"] == 2
    assert outcome.value["unchanged"] == 1


async def test_store_location_limits_the_counts(
    ctx: AppContext, bw_redis_url: str, square: FakeSquare
) -> None:
    square_store(ctx, location="L2")
    square.counts = TWO_LOCATIONS
    outcome = await run_job(ctx, bw_redis_url, names.SQUARE_SYNC, {"store_id": "s1"})
    assert outcome.state == "completed", outcome.value
    assert all(r["body"]["location_ids"] == ["L2"] for r in square.requests)
    assert [get(ctx.db, "Inventory", i).quantity for i in ("i1", "i2", "i3")] == [4, 5, 0]


def test_store_quantities_rules() -> None:
    def c(obj: str, quantity: int, state: str = "IN_STOCK", location: str = "L1"
          ) -> InventoryCount:
        return InventoryCount(obj, location, state, quantity)

    counts = [c("A", 5), c("A", 9), c("A", 2, location="L2"), c("B", 1, location="L3"),
              c("D", 4, state="SOLD")]
    # Square lists newest first: a second count for the same object, location and
    # state is older and is ignored.
    assert store_quantities(counts, None) == {"A": 7, "B": 1, "D": 0}
    # Counts at other locations are ignored even if Square sends them.
    assert store_quantities(counts, {"L1"}) == {"A": 5, "D": 0}
    assert store_quantities([], {"L1"}) == {}


async def test_token_is_never_in_job_data(ctx: AppContext, bw_redis_url: str) -> None:
    square_store(ctx)
    producers = Producers(bw_redis_url, ctx.db)
    try:
        job_id = await producers.trigger_store_sync("s1")
        await producers.schedule_square_syncs()
        queue = producers.queue(names.SQUARE_SYNC)
        jobs = await queue.get_jobs(["waiting", "delayed"])
        assert {j.id for j in jobs} >= {job_id}
        for job in jobs:
            assert SQUARE_TOKEN not in str(job.to_json())
        trigger = await queue.get_job(job_id)
        assert trigger is not None
        assert trigger.opts.attempts == 1
    finally:
        await producers.close()


async def test_revoked_token_fails_without_retry(
    ctx: AppContext, bw_redis_url: str, square: FakeSquare
) -> None:
    square_store(ctx)
    square.tokens.clear()  # Square now answers 401
    outcome = await run_job(ctx, bw_redis_url, names.SQUARE_SYNC, {"store_id": "s1"})
    assert outcome.state == "failed"
    assert isinstance(outcome.value, UnrecoverableError)
    assert outcome.attempts_made == 1
    assert len(square.requests) == 1
    assert SQUARE_TOKEN not in str(outcome.value)


async def test_rate_limit_honours_retry_after(
    ctx: AppContext, bw_redis_url: str, square: FakeSquare
) -> None:
    square_store(ctx)
    square.counts = [count("A", 3)]
    square.script.append((429, {"Retry-After": "7"}, {"errors": [{"code": "RATE_LIMITED"}]}))
    outcome = await run_job(ctx, bw_redis_url, names.SQUARE_SYNC, {"store_id": "s1"})
    assert outcome.state == "completed"
    assert outcome.attempts_made == 0  # handled inside the attempt
    assert ctx.sleeps == [7.0]  # type: ignore[attr-defined]
    assert get(ctx.db, "Inventory", "i1").quantity == 3


async def test_server_errors_are_retried(
    ctx: AppContext, bw_redis_url: str, square: FakeSquare
) -> None:
    square_store(ctx)
    square.counts = [count("A", 8)]
    square.script.append((503, {}, {"errors": [{"category": "API_ERROR"}]}))
    outcome = await run_job(ctx, bw_redis_url, names.SQUARE_SYNC, {"store_id": "s1"},
                            backoff=Backoff(type="fixed", delay=50))
    assert outcome.state == "completed"
    assert outcome.attempts_made == 1
    assert get(ctx.db, "Inventory", "i1").quantity == 8


async def test_store_no_longer_on_square_is_skipped(
    ctx: AppContext, bw_redis_url: str, square: FakeSquare
) -> None:
    add_store(ctx.db, "s2", inventorySource="manual")
    outcome = await run_job(ctx, bw_redis_url, names.SQUARE_SYNC, {"store_id": "s2"})
    assert outcome.state == "completed"
    assert outcome.value["skipped"] == "store not on Square"
    assert square.requests == []


async def test_a_200_that_is_not_json_fails_the_run_clearly(
    ctx: AppContext, bw_redis_url: str, square: FakeSquare
) -> None:
    square_store(ctx)
    square.script.append((200, {}, b"<html>upstream proxy error</html>"))
    outcome = await run_job(ctx, bw_redis_url, names.SQUARE_SYNC, {"storeId": "s1"},
                            attempts=1)
    assert outcome.state == "failed"
    assert "not a JSON object" in str(outcome.value)
    assert get(ctx.db, "Inventory", "i1").quantity == 1


async def test_a_non_numeric_quantity_fails_the_run_and_changes_nothing(
    ctx: AppContext, bw_redis_url: str, square: FakeSquare
) -> None:
    square_store(ctx)
    square.counts = [count("B", 9), count("A", "lots")]
    outcome = await run_job(ctx, bw_redis_url, names.SQUARE_SYNC, {"storeId": "s1"},
                            attempts=1)
    assert outcome.state == "failed"
    assert "non-numeric quantity 'lots' for catalog object A" in str(outcome.value)
    assert get(ctx.db, "Inventory", "i2").quantity == 5  # not half-applied


async def test_a_repeated_cursor_ends_the_run_with_an_error(
    ctx: AppContext, bw_redis_url: str, square: FakeSquare
) -> None:
    square_store(ctx)
    page = {"counts": [count("A", 2)], "cursor": "same"}
    square.script += [(200, {}, page)] * 5
    outcome = await run_job(ctx, bw_redis_url, names.SQUARE_SYNC, {"storeId": "s1"},
                            attempts=1)
    assert outcome.state == "failed"
    assert "repeated a pagination cursor after 2 pages" in str(outcome.value)
    assert len(square.requests) == 2
    assert get(ctx.db, "Inventory", "i1").quantity == 1


async def test_a_revoked_token_raises_an_alert(
    ctx: AppContext, bw_redis_url: str, square: FakeSquare, smtp: tuple[Any, int]
) -> None:
    square_store(ctx)
    square.tokens.clear()
    alerts: list[tuple[str, str]] = []
    seen = asyncio.Event()

    async def hook(queue: str, job: Any, exc: BaseException) -> None:
        alerts.append((queue, str(exc)))
        seen.set()

    service = Service(ctx, bw_redis_url, alert_hooks=[hook])
    await service.start()
    producers = Producers(bw_redis_url, ctx.db)
    try:
        await producers.trigger_store_sync("s1")
        await asyncio.wait_for(seen.wait(), 20)
    finally:
        await producers.close()
        await service.close()
    assert alerts == [(names.SQUARE_SYNC,
                       "Square rejected the access token (401): reconnect Square for this store")]
    [mail] = smtp[0].messages
    assert mail["To"] == "ops@bookwish.test"
    assert SQUARE_TOKEN not in mail.as_string()


async def test_sync_reports_progress_and_job_log_lines(
    ctx: AppContext, bw_redis_url: str, square: FakeSquare
) -> None:
    square_store(ctx)
    square.counts = [count("A", 4), count("B", 5), count("C", 2)]
    outcome = await run_job(ctx, bw_redis_url, names.SQUARE_SYNC, {"storeId": "s1"},
                            remove_on_complete=False)
    assert outcome.state == "completed"
    async with Queue(names.SQUARE_SYNC, bw_redis_url) as queue:
        [job] = await queue.get_jobs("completed")
        lines, count_ = await queue.get_job_logs(job.id)
        assert job.progress_value == 100
    assert count_ == 3
    assert lines == ["fetching inventory counts from Square",
                     "3 catalog objects in 2 pages; updating inventory",
                     "updated 2, unchanged 1, unknown 0"]


def test_every_job_has_a_timeout() -> None:
    for spec in QUEUES.values():
        assert spec.options.timeout, spec.name
