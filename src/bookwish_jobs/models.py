"""The Node app's Prisma tables, as SQLAlchemy Core tables built for one database.

Only the columns the jobs read or write are described. Prisma's conventions hold: the
table is the model name (``"OrderDigestQueue"``, ``prisma.orderDigestQueue`` in Node),
the column is the field name (``"userId"``), ids are text made by the client (Prisma's
``@default(cuid())`` is not a database default), ``DateTime`` is ``TIMESTAMP(3)`` without
time zone holding UTC, ``@updatedAt`` has no database default (Prisma's client sets it),
and enums are native PostgreSQL enums (``"OrderStatus"``...) or text.

The columns the design leaves open (``columns.py``) have a setting for their name and
may be absent: :func:`resolve` finds, for one database, which of them exist, and
:func:`build` makes the tables with exactly those. Their key in ``table.c`` is the
setting's field (``inventory.c.square_item_id``), whatever the column is called; the
fixed columns keep their Prisma names (``order.c.paymentStatus``).

Enum columns use :class:`EnumText`, which binds plain strings without a cast, so the
same statements work on native enums and on text columns (SQLAlchemy would otherwise
send ``'pending'::VARCHAR``, and ``"OrderStatus" = character varying`` has no operator).

Python code that writes rows supplies what Prisma's client would: ``id`` on insert,
the ``@default(now())`` stamp, and ``updatedAt`` on every row it updates.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    false,
)
from sqlalchemy.types import UserDefinedType

from bookwish_jobs.columns import OPEN_COLUMNS, ColumnSettings


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
        # Only for SQLite; on PostgreSQL Prisma's migration made the type.
        return "TEXT"


@dataclass(frozen=True, slots=True)
class Layout:
    """Where the open columns are in one database: ``(table, key) -> column name``,
    for the ones that exist only."""

    names: Mapping[tuple[str, str], str]

    def get(self, table: str, key: str) -> str | None:
        return self.names.get((table, key))


def resolve(columns: ColumnSettings, existing: Mapping[str, Iterable[str]]) -> Layout:
    """The layout of a database whose tables have the ``existing`` columns."""
    found: dict[tuple[str, str], str] = {}
    for open_column in OPEN_COLUMNS:
        name = columns.name(open_column)
        for table in open_column.tables:
            if name in set(existing.get(table, ())):
                found[(table, open_column.key)] = name
    return Layout(found)


def full_layout(columns: ColumnSettings) -> Layout:
    """Every open column present under its configured name (the SQLite database we make)."""
    return Layout({(table, c.key): columns.name(c) for c in OPEN_COLUMNS for table in c.tables})


@dataclass(frozen=True, slots=True)
class NodeTables:
    """The Node app's tables in one database (see the module docstring)."""

    metadata: MetaData
    layout: Layout
    user: Table
    push_token: Table
    store: Table
    inventory: Table
    order: Table
    order_item: Table
    order_digest: Table
    ops_digest: Table

    def by_name(self, name: str) -> Table:
        return self.metadata.tables[name]


def build(layout: Layout) -> NodeTables:
    """The tables, with the open columns the layout says exist."""
    md = MetaData()

    def open_column(table: str, key: str, type_: Any, **kw: Any) -> list[Column[Any]]:
        name = layout.get(table, key)
        return [] if name is None else [Column(name, type_, key=key, **kw)]

    def stamps(table: str, created: str | None) -> list[Column[Any]]:
        out = open_column(table, created, DateTime, default=utcnow) if created else []
        return out + open_column(table, "updated_at", DateTime, default=utcnow)

    def pk() -> Column[Any]:
        return Column("id", String, primary_key=True, default=new_id)

    user = Table("User", md, pk(), Column("email", String, nullable=True, unique=True))
    push_token = Table(
        "PushToken", md, pk(),
        Column("userId", ForeignKey("User.id", ondelete="CASCADE"), nullable=False, index=True),
        Column("token", String, nullable=False, unique=True),
    )
    store = Table(
        "Store", md, pk(),
        *open_column("Store", "store_name", String, nullable=True),
        Column("email", String, nullable=True),
        Column("ownerId", ForeignKey("User.id"), nullable=True),
        # enum InventorySource { manual square }
        Column("inventorySource", EnumText("InventorySource"), nullable=False,
               default="manual", server_default="manual"),
        Column("squareAccessToken", String, nullable=True),
        *open_column("Store", "square_location_id", String, nullable=True),
    )
    inventory = Table(
        "Inventory", md, pk(),
        Column("storeId", ForeignKey("Store.id"), nullable=False, index=True),
        *open_column("Inventory", "square_item_id", String, nullable=True),
        Column("quantity", Integer, nullable=False, default=0, server_default="0"),
        Column("reservedQuantity", Integer, nullable=False, default=0, server_default="0"),
        *stamps("Inventory", None),
    )
    order = Table(
        "Order", md, pk(),
        Column("orderNumber", String, nullable=True, unique=True),
        Column("storeId", ForeignKey("Store.id"), nullable=False, index=True),
        Column("userId", ForeignKey("User.id"), nullable=True),
        # enum OrderStatus { pending paid fulfilled cancelled }
        Column("status", EnumText("OrderStatus"), nullable=False, default="pending",
               server_default="pending"),
        # enum PaymentStatus { pending paid failed refunded }
        Column("paymentStatus", EnumText("PaymentStatus"), nullable=False, default="pending",
               server_default="pending"),
        Column("createdAt", DateTime, nullable=False, default=utcnow),
        *stamps("Order", None),
        Index(None, "status", "createdAt"),
    )
    order_item = Table(
        "OrderItem", md, pk(),
        Column("orderId", ForeignKey("Order.id", ondelete="CASCADE"), nullable=False, index=True),
        Column("inventoryId", ForeignKey("Inventory.id"), nullable=True),
        *open_column("OrderItem", "order_item_title", String, nullable=True),
        Column("quantity", Integer, nullable=False, default=1, server_default="1"),
    )

    def digest(name: str, *store: Column[Any]) -> Table:
        return Table(
            name, md, pk(), *store,
            Column("orderId", ForeignKey("Order.id"), nullable=False),
            *([Column("isSpecialOrder", Boolean, nullable=False, default=False,
                      server_default=false())] if store else []),
            Column("processed", Boolean, nullable=False, default=False, server_default=false(),
                   index=True),
            *stamps(name, "digest_created_at"),
            *open_column(name, "digest_processed_at", DateTime, nullable=True),
        )

    order_digest = digest("OrderDigestQueue",
                          Column("storeId", ForeignKey("Store.id"), nullable=False, index=True))
    ops_digest = digest("BookwishOpsDigestQueue")
    return NodeTables(md, layout, user, push_token, store, inventory, order, order_item,
                      order_digest, ops_digest)
