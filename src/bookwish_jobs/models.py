"""SQLAlchemy 2.0 models of the Node app's Prisma tables: only the columns the jobs use.

Prisma's defaults: the table is the model name (``"PushToken"``, ``"OrderDigestQueue"``
for ``model OrderDigestQueue``, which the Node code calls ``prisma.orderDigestQueue``),
the column is the field name (``"userId"``), ids are text made by the client (Prisma's
``@default(cuid())`` is not a database default), ``DateTime`` is ``TIMESTAMP(3)`` without
time zone holding UTC, ``@updatedAt`` has no database default (Prisma's client sets
it), and enums are native PostgreSQL enums (``"OrderStatus"``...).

So that the same statements work on native enums and on text columns, enum columns
use :class:`EnumText`, which binds plain strings without a cast: SQLAlchemy would
otherwise send ``'pending'::VARCHAR``, and ``"OrderStatus" = character varying`` has
no operator. PostgreSQL infers the column's type for an uncast literal.

Python code that writes rows supplies what Prisma's client would: ``id`` on insert
and ``updatedAt`` on the rows it updates (``Order``, ``Inventory``).

Database defaults (``server_default``) are the ones Prisma's migration writes for
``@default(...)`` values; they matter only for the SQLite schema made from these models.

Mapped here are exactly the columns the jobs read or write; the start-up check
(``schema.py``) requires these and nothing else, so other columns of the Node schema
do not matter. bookwish_jobs' own tables are in ``own_models.py``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String, false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import UserDefinedType


def utcnow() -> datetime:
    """Now, as the naive UTC timestamp Prisma stores (millisecond precision)."""
    now = datetime.now(UTC).replace(tzinfo=None)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def new_id() -> str:
    return uuid.uuid4().hex


class EnumText(UserDefinedType[str]):
    """A Prisma enum column: a native enum on PostgreSQL (or text), bound without a cast."""

    cache_ok = True

    def __init__(self, enum_name: str) -> None:
        self.enum_name = enum_name

    def get_col_spec(self, **_kw: Any) -> str:
        # Only for SQLite and test schemas; on PostgreSQL Prisma's migration made the type.
        return "TEXT"


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "User"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String, unique=True)


class PushToken(Base):
    __tablename__ = "PushToken"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    userId: Mapped[str] = mapped_column(ForeignKey("User.id", ondelete="CASCADE"), index=True)
    token: Mapped[str] = mapped_column(String, unique=True)


class Store(Base):
    __tablename__ = "Store"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String)
    email: Mapped[str | None] = mapped_column(String, nullable=True)
    ownerId: Mapped[str | None] = mapped_column(ForeignKey("User.id"), nullable=True)
    # enum InventorySource { manual square }
    inventorySource: Mapped[str] = mapped_column(EnumText("InventorySource"), default="manual",
                                                 server_default="manual")
    squareAccessToken: Mapped[str | None] = mapped_column(String, nullable=True)
    squareLocationId: Mapped[str | None] = mapped_column(String, nullable=True)


class Order(Base):
    __tablename__ = "Order"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    orderNumber: Mapped[str] = mapped_column(String, unique=True)
    storeId: Mapped[str] = mapped_column(ForeignKey("Store.id"), index=True)
    userId: Mapped[str | None] = mapped_column(ForeignKey("User.id"), nullable=True)
    # enum OrderStatus { pending paid fulfilled cancelled }
    status: Mapped[str] = mapped_column(EnumText("OrderStatus"), default="pending",
                                        server_default="pending", index=True)
    # enum PaymentStatus { pending paid failed refunded }
    paymentStatus: Mapped[str] = mapped_column(EnumText("PaymentStatus"), default="pending",
                                               server_default="pending")
    createdAt: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updatedAt: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class OrderItem(Base):
    __tablename__ = "OrderItem"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    orderId: Mapped[str] = mapped_column(ForeignKey("Order.id", ondelete="CASCADE"), index=True)
    inventoryId: Mapped[str | None] = mapped_column(ForeignKey("Inventory.id"), nullable=True)
    title: Mapped[str] = mapped_column(String, default="")
    quantity: Mapped[int] = mapped_column(Integer, default=1, server_default="1")


class Inventory(Base):
    __tablename__ = "Inventory"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    storeId: Mapped[str] = mapped_column(ForeignKey("Store.id"), index=True)
    title: Mapped[str] = mapped_column(String, default="")
    squareCatalogObjectId: Mapped[str | None] = mapped_column(String, nullable=True)
    quantity: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    reservedQuantity: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    updatedAt: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class _DigestEntry:
    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    processed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false(),
                                            index=True)
    processedAt: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    createdAt: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class OrderDigestQueue(_DigestEntry, Base):
    """Prisma ``model OrderDigestQueue`` (``prisma.orderDigestQueue``)."""

    __tablename__ = "OrderDigestQueue"

    storeId: Mapped[str] = mapped_column(ForeignKey("Store.id"), index=True)
    orderId: Mapped[str] = mapped_column(ForeignKey("Order.id"))
    isSpecialOrder: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class BookwishOpsDigestQueue(_DigestEntry, Base):
    """Prisma ``model BookwishOpsDigestQueue`` (``prisma.bookwishOpsDigestQueue``)."""

    __tablename__ = "BookwishOpsDigestQueue"

    orderId: Mapped[str] = mapped_column(ForeignKey("Order.id"))
