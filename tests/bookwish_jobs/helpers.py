"""Small builders shared by the bookwish_jobs tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bookwish_jobs.db import Database
from bookwish_jobs.models import Inventory, Order, OrderItem, PushToken, Store, User, utcnow


@dataclass
class FakeJob:
    """What a processor reads from a pyqueue Job, for calling ``process`` directly."""

    data: Any
    id: str = "1"
    timestamp: int = 1_700_000_000_000
    attempts_made: int = 0


def add_user(db: Database, user_id: str, email: str, tokens: Sequence[str] = ()) -> None:
    with db.transaction() as s:
        s.add(User(id=user_id, email=email))
        s.flush()
        for token in tokens:
            s.add(PushToken(userId=user_id, token=token))


def add_store(db: Database, store_id: str, **fields: Any) -> None:
    with db.transaction() as s:
        s.add(Store(id=store_id, name=fields.pop("name", store_id), **fields))


def add_inventory(db: Database, inv_id: str, store_id: str, **fields: Any) -> None:
    with db.transaction() as s:
        s.add(Inventory(id=inv_id, storeId=store_id, **fields))


def add_order(db: Database, order_id: str, store_id: str, *, age_minutes: float = 0,
              status: str = "pending", items: Sequence[tuple[str, int]] = (),
              total_cents: int = 1000) -> None:
    with db.transaction() as s:
        s.add(Order(id=order_id, orderNumber=f"N-{order_id}", storeId=store_id, status=status,
                    totalCents=total_cents,
                    createdAt=utcnow() - timedelta(minutes=age_minutes)))
        s.flush()
        for inventory_id, quantity in items:
            s.add(OrderItem(orderId=order_id, inventoryId=inventory_id, quantity=quantity))


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
