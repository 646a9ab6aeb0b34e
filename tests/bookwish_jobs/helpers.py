"""Small builders shared by the bookwish_jobs tests.

Rows are written as Prisma's client writes them, whatever the schema variant: by the
names the jobs use (``quantity``, or an open column's key such as ``square_item_id``,
which the variant's settings map to its column), with a client-made ``id`` and every
timestamp the client fills (``@default(now())`` and ``@updatedAt``) set in UTC.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import DateTime, MetaData, Table, select

from bookwish_jobs.columns import BY_KEY
from bookwish_jobs.db import Database
from bookwish_jobs.models import new_id, utcnow


@dataclass
class FakeJob:
    """What a processor reads from a pyqueue Job, for calling ``process`` directly."""

    data: Any
    id: str = "1"
    timestamp: int = 1_700_000_000_000
    attempts_made: int = 0


_REFLECTED: weakref.WeakKeyDictionary[Database, dict[str, Table]] = weakref.WeakKeyDictionary()


def _reflected(db: Database, table: str) -> Table:
    """The table as the database has it, every column included (reflected once per test)."""
    tables = _REFLECTED.setdefault(db, {})
    if table not in tables:
        tables[table] = Table(table, MetaData(), autoload_with=db.engine)
    return tables[table]


def insert_row(db: Database, table: str, **values: Any) -> str:
    """Insert a row of a Node app table as Prisma's client would. An open column the
    variant does not have (``digest_processed_at`` on ``prisma``, say) is left out."""
    known = db.node.by_name(table).c
    reflected = _reflected(db, table)
    row: dict[str, Any] = {}
    for key, value in values.items():
        if key in known:
            row[known[key].name] = value
        elif key not in BY_KEY:
            row[key] = value  # a column the jobs do not use (Notification.type, say)
    row.setdefault("id", new_id())
    now = utcnow()
    for column in reflected.columns:
        if isinstance(column.type, DateTime) and not column.nullable:
            row.setdefault(column.name, now)
    with db.engine.begin() as conn:
        conn.execute(reflected.insert().values(**row))
    return str(row["id"])


def add_user(db: Database, user_id: str, email: str | None, tokens: Sequence[str] = ()) -> None:
    insert_row(db, "User", id=user_id, email=email)
    for token in tokens:
        insert_row(db, "PushToken", userId=user_id, token=token)


def add_store(db: Database, store_id: str, **fields: Any) -> None:
    fields.setdefault("store_name", store_id)
    insert_row(db, "Store", id=store_id, **fields)


def add_inventory(db: Database, inv_id: str, store_id: str, **fields: Any) -> None:
    insert_row(db, "Inventory", id=inv_id, storeId=store_id, **fields)


def add_order(db: Database, order_id: str, store_id: str, *, age_minutes: float = 0,
              status: str = "pending", items: Sequence[tuple[str, int]] = (),
              user_id: str | None = None, number: str | None = "") -> None:
    """An order (number ``N-<id>`` unless given) and its items ``(inventory id, quantity)``,
    each titled ``Book <inventory id>``."""
    insert_row(db, "Order", id=order_id, orderNumber=f"N-{order_id}" if number == "" else number,
               storeId=store_id, status=status, userId=user_id,
               createdAt=utcnow() - timedelta(minutes=age_minutes))
    for inventory_id, quantity in items:
        add_item(db, order_id, inventory_id, quantity, f"Book {inventory_id}")


def add_item(db: Database, order_id: str, inventory_id: str | None, quantity: int,
             title: str | None) -> None:
    insert_row(db, "OrderItem", orderId=order_id, inventoryId=inventory_id, quantity=quantity,
               order_item_title=title)


def get(db: Database, table: str, key: str) -> Any:
    """One row of a Node app table by id; columns by the names the jobs use."""
    t = db.node.by_name(table)
    with db.engine.connect() as conn:
        return conn.execute(select(t).where(t.c.id == key)).one()


def column(db: Database, table: str, name: str) -> list[Any]:
    """Every value of one column (by the name the jobs use), in id order."""
    t = db.node.by_name(table)
    with db.engine.connect() as conn:
        return list(conn.scalars(select(t.c[name]).order_by(t.c.id)))


def job_hash(redis_url: str, queue: str, job_id: str) -> dict[str, str]:
    """A job's hash exactly as stored in Redis (what a Node worker reads)."""
    import redis

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        return client.hgetall(f"bull:{queue}:{job_id}")  # type: ignore[return-value]
    finally:
        client.close()
