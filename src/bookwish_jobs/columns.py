"""The Node app's columns that the BookWish design leaves open, and the settings naming them.

The design's code names most of what the jobs touch (``prisma.order.update({data:
{status, paymentStatus}})``, ``where: {processed: false}``, ...), and its relations
(``owner``, ``user``, ``items``, ``order``) imply their foreign keys under Prisma's usual
``<relation>Id`` names. Those columns are fixed. A few more are used that the design
never names; each is a setting, with the default below:

=========================  ===============================  ======================  ==========
setting (env / flag)       column (tables)                  default                 kind
=========================  ===============================  ======================  ==========
SQUARE_ITEM_ID_COLUMN      Square's catalog object id       ``squareCatalogObjectId``  required
                           (Inventory)
SQUARE_LOCATION_ID_COLUMN  the store's Square location      ``squareLocationId``    optional
                           (Store)
STORE_NAME_COLUMN          the store's name (Store)         ``name``                optional
ORDER_ITEM_TITLE_COLUMN    what an item is called           ``title``               optional
                           (OrderItem)
DIGEST_PROCESSED_AT_COLUMN when an entry was mailed         ``processedAt``         optional
                           (both digest tables)
DIGEST_CREATED_AT_COLUMN   when an entry was queued         ``createdAt``           optional
                           (both digest tables)
UPDATED_AT_COLUMN          Prisma's ``@updatedAt`` (Order,  ``updatedAt``           optional
                           Inventory, both digest tables)
=========================  ===============================  ======================  ==========

*Required*: the queue that uses it (``square-sync``) does not start without it. *Optional*:
used where the table has it, left alone where it does not (without a processed-at
column the digest marks ``processed`` alone; without a title an item reads
"(untitled)"; without a location a store counts every location of its Square account).
An optional setting given explicitly must name a column that exists in at least one of
its tables, so a typo stops the worker instead of silently writing nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, field_validator

from bookwish_jobs import names


@dataclass(frozen=True, slots=True)
class OpenColumn:
    """One column the design leaves open (see the module docstring)."""

    key: str  # the ColumnSettings field, and the column's key in models.NodeTables
    env: str
    tables: tuple[str, ...]
    default: str
    queues: tuple[str, ...]  # the queues that read or write it
    required: bool
    meaning: str

    @property
    def flag(self) -> str:
        return "--" + self.env.lower().replace("_", "-")


_DIGESTS = ("OrderDigestQueue", "BookwishOpsDigestQueue")
OPEN_COLUMNS: tuple[OpenColumn, ...] = (
    OpenColumn("square_item_id", "SQUARE_ITEM_ID_COLUMN", ("Inventory",),
               "squareCatalogObjectId", (names.SQUARE_SYNC,), True,
               "the Square catalog object id that Square's inventory counts are matched on"),
    OpenColumn("square_location_id", "SQUARE_LOCATION_ID_COLUMN", ("Store",),
               "squareLocationId", (names.SQUARE_SYNC,), False,
               "the store's Square location (without it every location counts)"),
    OpenColumn("store_name", "STORE_NAME_COLUMN", ("Store",), "name",
               (names.ORDER_DIGEST,), False, "the store's name, in its digest's subject"),
    OpenColumn("order_item_title", "ORDER_ITEM_TITLE_COLUMN", ("OrderItem",), "title",
               (names.ORDER_DIGEST,), False, "what an item is called in a digest"),
    OpenColumn("digest_processed_at", "DIGEST_PROCESSED_AT_COLUMN", _DIGESTS, "processedAt",
               (names.ORDER_DIGEST,), False, "when a digest entry was mailed"),
    OpenColumn("digest_created_at", "DIGEST_CREATED_AT_COLUMN", _DIGESTS, "createdAt",
               (names.ORDER_DIGEST,), False, "when a digest entry was queued"),
    OpenColumn("updated_at", "UPDATED_AT_COLUMN",
               ("Order", "Inventory", *_DIGESTS), "updatedAt",
               (names.SQUARE_SYNC, names.RESERVATION_CLEANUP, names.ORDER_DIGEST), False,
               "Prisma's @updatedAt, set on every row the jobs update"),
)
BY_KEY: dict[str, OpenColumn] = {c.key: c for c in OPEN_COLUMNS}


class ColumnSettings(BaseModel):
    """The open columns' names in this database; None means the default."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    square_item_id: str | None = None
    square_location_id: str | None = None
    store_name: str | None = None
    order_item_title: str | None = None
    digest_processed_at: str | None = None
    digest_created_at: str | None = None
    updated_at: str | None = None

    @field_validator("*")
    @classmethod
    def _column_name(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.strip() or value != value.strip():
            raise ValueError("a column name cannot be empty or start or end with spaces")
        if "\x00" in value or len(value.encode()) > 63:
            raise ValueError("not a PostgreSQL column name (at most 63 bytes, no NUL)")
        return value

    def name(self, column: OpenColumn) -> str:
        """The column's name in this database: the setting, else the default."""
        value: str | None = getattr(self, column.key)
        return value or column.default

    def is_set(self, column: OpenColumn) -> bool:
        return getattr(self, column.key) is not None

    def setting(self, column: OpenColumn) -> str:
        """How an operator sets it, for messages: ``SQUARE_ITEM_ID_COLUMN (--square-...)``."""
        return f"{column.env} (or {column.flag})"
