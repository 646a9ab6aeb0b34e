"""SQLAlchemy 2.0 models of the tables the jobs use, named as Prisma names them.

Prisma's defaults: the table is the model name (``"PushToken"``), the column is the
field name (``"userId"``), ids are text, ``DateTime`` is a timestamp without time zone
holding UTC. Enums are stored as text here, so the same models work on SQLite.

Tables of the Node app: ``User``, ``PushToken``, ``Store``, ``Order``, ``OrderItem``,
``Inventory``, ``Notification``, ``StoreDigestQueue``, ``OpsDigestQueue``.
Added by bookwish_jobs (on the Node app's database by ``--create-tables``, see
``schema.py``): the table ``NotificationDelivery`` and the digest claim columns
``claimId``, ``claimedAt`` and ``sendStartedAt`` on both digest queues.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    """Now, as the naive UTC timestamp Prisma stores."""
    return datetime.now(UTC).replace(tzinfo=None)


def new_id() -> str:
    return uuid.uuid4().hex


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "User"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String, unique=True)
    name: Mapped[str | None] = mapped_column(String, nullable=True)
    createdAt: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class PushToken(Base):
    __tablename__ = "PushToken"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    userId: Mapped[str] = mapped_column(ForeignKey("User.id", ondelete="CASCADE"), index=True)
    token: Mapped[str] = mapped_column(String, unique=True)
    platform: Mapped[str | None] = mapped_column(String, nullable=True)
    createdAt: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Store(Base):
    __tablename__ = "Store"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String)
    email: Mapped[str | None] = mapped_column(String, nullable=True)
    ownerId: Mapped[str | None] = mapped_column(ForeignKey("User.id"), nullable=True)
    # "manual" or "square"
    inventorySource: Mapped[str] = mapped_column(String, default="manual")
    squareAccessToken: Mapped[str | None] = mapped_column(String, nullable=True)
    squareLocationId: Mapped[str | None] = mapped_column(String, nullable=True)
    createdAt: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Order(Base):
    __tablename__ = "Order"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    orderNumber: Mapped[str] = mapped_column(String, unique=True)
    storeId: Mapped[str] = mapped_column(ForeignKey("Store.id"), index=True)
    userId: Mapped[str | None] = mapped_column(ForeignKey("User.id"), nullable=True)
    # pending | paid | fulfilled | cancelled
    status: Mapped[str] = mapped_column(String, default="pending", index=True)
    # pending | paid | failed | refunded
    paymentStatus: Mapped[str] = mapped_column(String, default="pending")
    totalCents: Mapped[int] = mapped_column(Integer, default=0)
    createdAt: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updatedAt: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class OrderItem(Base):
    __tablename__ = "OrderItem"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    orderId: Mapped[str] = mapped_column(ForeignKey("Order.id", ondelete="CASCADE"), index=True)
    inventoryId: Mapped[str | None] = mapped_column(ForeignKey("Inventory.id"), nullable=True)
    title: Mapped[str] = mapped_column(String, default="")
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    priceCents: Mapped[int] = mapped_column(Integer, default=0)


class Inventory(Base):
    __tablename__ = "Inventory"
    __table_args__ = (UniqueConstraint("storeId", "squareCatalogObjectId"),)

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    storeId: Mapped[str] = mapped_column(ForeignKey("Store.id"), index=True)
    title: Mapped[str] = mapped_column(String, default="")
    sku: Mapped[str | None] = mapped_column(String, nullable=True)
    squareCatalogObjectId: Mapped[str | None] = mapped_column(String, nullable=True)
    quantity: Mapped[int] = mapped_column(Integer, default=0)
    reservedQuantity: Mapped[int] = mapped_column(Integer, default=0)
    updatedAt: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class Notification(Base):
    __tablename__ = "Notification"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    userId: Mapped[str] = mapped_column(ForeignKey("User.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String)
    title: Mapped[str] = mapped_column(String)
    body: Mapped[str] = mapped_column(String)
    orderId: Mapped[str | None] = mapped_column(String, nullable=True)
    isRead: Mapped[bool] = mapped_column(Boolean, default=False)
    createdAt: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class NotificationDelivery(Base):
    """One row per notification, channel and target that received it (bookwish_jobs' own)."""

    __tablename__ = "NotificationDelivery"
    __table_args__ = (UniqueConstraint("notificationId", "channel", "target"),)

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    # Not a foreign key: the push token may be deleted later, the record stays.
    notificationId: Mapped[str] = mapped_column(String, index=True)
    channel: Mapped[str] = mapped_column(String)  # "push" | "email"
    target: Mapped[str] = mapped_column(String)  # push token or email address
    providerId: Mapped[str | None] = mapped_column(String, nullable=True)
    deliveredAt: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class _DigestEntry:
    """Columns shared by both digest queues (the claim columns are bookwish_jobs' own)."""

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    processed: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    processedAt: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    createdAt: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    claimId: Mapped[str | None] = mapped_column(String, nullable=True, index=True)
    claimedAt: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    sendStartedAt: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class StoreDigestQueue(_DigestEntry, Base):
    __tablename__ = "StoreDigestQueue"

    storeId: Mapped[str] = mapped_column(ForeignKey("Store.id"), index=True)
    orderId: Mapped[str] = mapped_column(ForeignKey("Order.id"))
    isSpecialOrder: Mapped[bool] = mapped_column(Boolean, default=False)


class OpsDigestQueue(_DigestEntry, Base):
    __tablename__ = "OpsDigestQueue"

    orderId: Mapped[str] = mapped_column(ForeignKey("Order.id"))
