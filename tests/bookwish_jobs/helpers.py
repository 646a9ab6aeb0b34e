"""Small builders shared by the bookwish_jobs tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import MetaData, Table

from bookwish_jobs.db import Database
from bookwish_jobs.models import new_id, utcnow


@dataclass
class FakeJob:
    """What a processor reads from a pyqueue Job, for calling ``process`` directly."""

    data: Any
    id: str = "1"
    timestamp: int = 1_700_000_000_000
    attempts_made: int = 0


def insert_row(db: Database, table: str, **values: Any) -> str:
    """Insert a row of a Node app table as Prisma's client would: it supplies ``id`` and
    sets ``createdAt``/``updatedAt`` when the table has them (``@updatedAt`` has no
    database default). The table is reflected, so enum columns get their real type."""
    reflected = Table(table, MetaData(), autoload_with=db.engine)
    now = utcnow()
    values.setdefault("id", new_id())
    for column in ("createdAt", "updatedAt"):
        if column in reflected.c:
            values.setdefault(column, now)
    with db.engine.begin() as conn:
        conn.execute(reflected.insert().values(**values))
    return str(values["id"])


def add_user(db: Database, user_id: str, email: str, tokens: Sequence[str] = ()) -> None:
    insert_row(db, "User", id=user_id, email=email)
    for token in tokens:
        insert_row(db, "PushToken", userId=user_id, token=token)


def add_store(db: Database, store_id: str, **fields: Any) -> None:
    insert_row(db, "Store", id=store_id, name=fields.pop("name", store_id), **fields)


def add_inventory(db: Database, inv_id: str, store_id: str, **fields: Any) -> None:
    fields.setdefault("title", inv_id)
    insert_row(db, "Inventory", id=inv_id, storeId=store_id, **fields)


def add_order(db: Database, order_id: str, store_id: str, *, age_minutes: float = 0,
              status: str = "pending", items: Sequence[tuple[str, int]] = (),
              user_id: str | None = None) -> None:
    insert_row(db, "Order", id=order_id, orderNumber=f"N-{order_id}", storeId=store_id,
               status=status, userId=user_id,
               createdAt=utcnow() - timedelta(minutes=age_minutes))
    for inventory_id, quantity in items:
        insert_row(db, "OrderItem", orderId=order_id, inventoryId=inventory_id,
                   title=f"Book {inventory_id}", quantity=quantity)


def get(db: Database, model: Any, key: str) -> Any:
    with db.transaction() as s:
        return s.get(model, key)


def job_hash(redis_url: str, queue: str, job_id: str) -> dict[str, str]:
    """A job's hash exactly as stored in Redis (what a Node worker reads)."""
    import redis

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        return client.hgetall(f"bull:{queue}:{job_id}")  # type: ignore[return-value]
    finally:
        client.close()
