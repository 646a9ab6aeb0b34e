"""Which tables the worker creates, and what it checks at start-up.

- **SQLite** (the embedded default) is bookwish_jobs' own database: at start-up the
  worker creates every missing table (:func:`prepare`).
- **PostgreSQL** is the Node app's database. Its tables (``User``, ``Order``, ...) are
  the Node app's, made by its Prisma migrations: the worker never creates or alters
  them. bookwish_jobs' own tables (``own_models.py``) live in their own schema, which
  one explicit command creates where missing: ``python -m bookwish_jobs.worker
  --create-tables`` (:func:`create_own`). It is idempotent and safe to run from several
  places at once.

At start-up the worker checks what the **enabled** queues use, and nothing else
(:data:`NEEDS`): the columns the design names or implies, the required open column
(``SQUARE_ITEM_ID_COLUMN`` for square-sync), any open column named explicitly, and
bookwish_jobs' own tables. What is missing stops it (exit code 2) with one line per gap,
each naming the queue that needs it and, for an open column, the setting that maps it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import inspect, text

from bookwish_jobs import names, sqlite_upgrade
from bookwish_jobs.columns import OPEN_COLUMNS, ColumnSettings, OpenColumn
from bookwish_jobs.db import Database
from bookwish_jobs.own_models import DigestClaim, NotificationDelivery, OwnBase

CREATE_COMMAND = "python -m bookwish_jobs.worker --create-tables"
# Serialises concurrent --create-tables runs on PostgreSQL (any fixed 64-bit number).
_LOCK_KEY = 0x626F6F6B77697368

# What each queue reads or writes of the Node app's tables, named or implied by the design.
NEEDS: dict[str, dict[str, tuple[str, ...]]] = {
    names.NOTIFICATIONS: {"User": ("id", "email"), "PushToken": ("userId", "token")},
    names.SQUARE_SYNC: {"Store": ("id", "inventorySource", "squareAccessToken"),
                        "Inventory": ("id", "storeId", "quantity")},
    names.RESERVATION_CLEANUP: {"Order": ("id", "status", "paymentStatus", "createdAt"),
                                "OrderItem": ("orderId", "inventoryId", "quantity"),
                                "Inventory": ("id", "reservedQuantity")},
    names.ORDER_DIGEST: {
        "OrderDigestQueue": ("id", "storeId", "orderId", "isSpecialOrder", "processed"),
        "BookwishOpsDigestQueue": ("id", "orderId", "processed"),
        "Store": ("id", "email", "ownerId"), "User": ("id", "email"),
        "Order": ("id", "orderNumber", "status", "userId", "createdAt"),
        "OrderItem": ("orderId", "quantity"),
    },
}
OWN_NEEDS: dict[str, tuple[str, ...]] = {
    names.NOTIFICATIONS: (NotificationDelivery.__tablename__,),
    names.ORDER_DIGEST: (DigestClaim.__tablename__,),
}


class SchemaError(RuntimeError):
    """The database lacks what the enabled queues use; the message says what to do."""


def missing_node(existing: Mapping[str, Iterable[str]], columns: ColumnSettings,
                 queues: Iterable[str]) -> list[str]:
    """One line per table or column of the Node app's that ``queues`` need and the
    database (whose tables have the ``existing`` columns) lacks."""
    have = {table: set(cols) for table, cols in existing.items()}
    out: list[str] = []
    for queue in queues:
        for table, wanted in NEEDS[queue].items():
            if table not in have:
                out.append(f"{queue} needs table {_quote(table)}")
                continue
            out += [f"{queue} needs column {_quote(table)}.{_quote(c)}"
                    for c in wanted if c not in have[table]]
        out += [gap for c in OPEN_COLUMNS if queue in c.queues
                for gap in _open_gaps(queue, c, columns, have)]
    return list(dict.fromkeys(out))


def _open_gaps(queue: str, column: OpenColumn, columns: ColumnSettings,
               have: Mapping[str, set[str]]) -> list[str]:
    name = columns.name(column)
    tables = [t for t in column.tables if t in have]
    if not tables or any(name in have[t] for t in tables):
        return []  # a missing table is reported above; one table with it is enough
    if column.required:
        where = " and ".join(f"{_quote(t)}.{_quote(name)}" for t in tables)
        hint = "; ".join(f"{_quote(t)} has {_list(have[t])}" for t in tables)
        return [f"{queue} needs column {where} ({column.meaning}): set "
                f"{columns.setting(column)} to the column that holds it ({hint})"]
    if columns.is_set(column):
        where = ", ".join(_quote(t) for t in tables)
        return [f"{queue}: {column.env} names column {_quote(name)}, which {where} "
                f"lack{'s' if len(tables) == 1 else ''} ({column.meaning}); unset it to "
                f"use {_quote(column.default)} where present"]
    return []


def missing_own(db: Database, queues: Iterable[str] | None = None) -> list[str]:
    """bookwish_jobs' own tables (those ``queues`` use; default all) that do not exist."""
    wanted = ({t for q in queues for t in OWN_NEEDS.get(q, ())} if queues is not None
              else {t.name for t in OwnBase.metadata.sorted_tables})
    have = set(inspect(db.engine).get_table_names(schema=db.own_schema))
    return [t.name for t in OwnBase.metadata.sorted_tables if t.name in wanted - have]


def check(db: Database, queues: Iterable[str] = names.QUEUE_NAMES) -> None:
    """Raise :class:`SchemaError` unless the database has what ``queues`` use."""
    queues = list(queues)
    node = missing_node(db.node_columns(), db.columns, queues)
    if node:
        raise SchemaError(
            "the database at DATABASE_URL lacks what the enabled queues use of the Node "
            "app's tables:\n  - " + "\n  - ".join(node) + "\nPoint DATABASE_URL at the "
            "BookWish database (with ?schema=... if Prisma uses one), apply the Node app's "
            "migrations, or map the open columns with the settings named above; "
            "bookwish_jobs never creates or alters the Node app's tables on PostgreSQL."
        )
    own = missing_own(db, queues)
    if own:
        where = f" in schema {_quote(db.own_schema)}" if db.own_schema else ""
        raise SchemaError(
            f"bookwish_jobs' own tables {', '.join(map(_quote, own))}{where} are missing. "
            f"Create them once with `{CREATE_COMMAND}` (it creates only these, in "
            "bookwish_jobs' own schema, and is safe to rerun)."
        )
    db.inspect_node()


def create_own(db: Database) -> list[str]:
    """Create bookwish_jobs' own schema and tables where missing.

    Returns:
        What was created, e.g. ``['table "digest_claim"']``; empty when nothing was.
    """
    with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # DDL is transactional on PostgreSQL: a second run waits here, then finds
            # what the first one created.
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
            if db.own_schema is not None:
                quoted = conn.dialect.identifier_preparer.quote(db.own_schema)
                conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {quoted}")
        have = set(inspect(conn).get_table_names(schema=db.own_schema))
        OwnBase.metadata.create_all(conn)
    return [f"table {_quote(t.name)}" for t in OwnBase.metadata.sorted_tables
            if t.name not in have]


def create(db: Database, queues: Iterable[str] = names.QUEUE_NAMES) -> list[str]:
    """``--create-tables``: on SQLite every missing table; then bookwish_jobs' own
    (:func:`create_own`); then :func:`check` the rest for ``queues``.

    Raises:
        SchemaError: something the queues use is still missing (the Node app's).
    """
    created: list[str] = []
    if db.is_sqlite:
        before = set(inspect(db.engine).get_table_names())
        full = db.full_tables()
        full.metadata.create_all(db.engine)
        created = [f"table {_quote(t.name)}" for t in full.metadata.sorted_tables
                   if t.name not in before]
    created += create_own(db)
    if db.is_sqlite:
        created += sqlite_upgrade.upgrade(db)  # a file an older version made
    check(db, queues)
    return created


def prepare(db: Database, queues: Iterable[str] = names.QUEUE_NAMES) -> None:
    """Get the database ready for the worker at start-up (see the module docstring).

    Raises:
        SchemaError: on PostgreSQL, something the enabled queues use is missing.
    """
    if db.is_sqlite:
        create(db, queues)
    else:
        check(db, queues)


def describe_layout(db: Database) -> dict[str, str | None]:
    """Where each open column is: ``{"Inventory.square_item_id": "squareItemId", ...}``,
    None where the table has no such column (for the start-up log)."""
    layout = db.node.layout
    return {f"{t}.{c.key}": layout.get(t, c.key) for c in OPEN_COLUMNS for t in c.tables}


def _quote(name: str | None) -> str:
    return f'"{name}"'


def _list(columns: Iterable[str]) -> str:
    return ", ".join(_quote(c) for c in sorted(columns))
