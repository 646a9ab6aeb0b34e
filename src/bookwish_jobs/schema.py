"""Which tables the worker creates, and when.

- **SQLite** (the embedded default) is bookwish_jobs' own database: at start-up the
  worker creates every missing table and column (:func:`prepare`).
- **PostgreSQL** is the Node app's database. Its tables (``User``, ``Order``, ...) are
  the Node app's, made by its Prisma migrations: the worker never creates or alters
  them. bookwish_jobs' own objects are the table ``NotificationDelivery`` and, on
  both digest queues, the columns ``claimId``, ``claimedAt``, ``sendStartedAt`` with
  the ``claimId`` index. One explicit command creates whichever of them are missing
  and nothing else: ``python -m bookwish_jobs.worker --create-tables``
  (:func:`create_own`). It is idempotent and safe to run from several places at
  once. At start-up the worker only checks: when a table or column it uses is
  missing, it stops (exit code 2) with a message that names what is missing and
  what to run, rather than failing job after job on SQL errors.
"""

from __future__ import annotations

from typing import cast

from sqlalchemy import Connection, Table, inspect, text

from bookwish_jobs.db import Database
from bookwish_jobs.models import Base, NotificationDelivery, OpsDigestQueue, StoreDigestQueue

OWN_TABLES: tuple[Table, ...] = (cast("Table", NotificationDelivery.__table__),)
_CLAIM_COLUMNS = ("claimId", "claimedAt", "sendStartedAt")
# Our columns on the Node app's tables.
OWN_COLUMNS: tuple[tuple[Table, tuple[str, ...]], ...] = (
    (cast("Table", StoreDigestQueue.__table__), _CLAIM_COLUMNS),
    (cast("Table", OpsDigestQueue.__table__), _CLAIM_COLUMNS),
)
CREATE_COMMAND = "python -m bookwish_jobs.worker --create-tables"
# Serialises concurrent --create-tables runs on PostgreSQL (any fixed 64-bit number).
_LOCK_KEY = 0x626F6F6B77697368


class SchemaError(RuntimeError):
    """The database lacks tables or columns the jobs use; the message says what to do."""


def _is_own(table: str, column: str | None = None) -> bool:
    return any(t.name == table for t in OWN_TABLES) or any(
        t.name == table and column in columns for t, columns in OWN_COLUMNS)


def missing(db: Database) -> list[tuple[str, str | None]]:
    """What the models use that the database lacks: ``(table, None)`` for a whole table,
    ``(table, column)`` for a column of an existing table."""
    inspector = inspect(db.engine)
    tables = set(inspector.get_table_names())
    out: list[tuple[str, str | None]] = []
    for table in Base.metadata.sorted_tables:
        if table.name not in tables:
            out.append((table.name, None))
            continue
        have = {c["name"] for c in inspector.get_columns(table.name)}
        out += [(table.name, c.name) for c in table.columns if c.name not in have]
    return out


def check(db: Database) -> None:
    """Raise :class:`SchemaError` unless every table and column the jobs use exists."""
    gaps = missing(db)
    if not gaps:
        return
    node = [_name(*gap) for gap in gaps if not _is_own(*gap)]
    own = [_name(*gap) for gap in gaps if _is_own(*gap)]
    if node:
        raise SchemaError(
            f"the database at DATABASE_URL lacks the Node app's {', '.join(node)}. "
            "Point DATABASE_URL at the BookWish database (with ?schema=... if Prisma "
            "uses one) and apply the Node app's migrations; bookwish_jobs never creates "
            "the Node app's tables on PostgreSQL."
        )
    raise SchemaError(
        f"bookwish_jobs' own {', '.join(own)} are missing. Create them once with "
        f"`{CREATE_COMMAND}` (it adds only these, and is safe to rerun)."
    )


def create_own(db: Database) -> list[str]:
    """Create bookwish_jobs' own table, columns and index where missing.

    Returns:
        What was created, e.g. ``['table "NotificationDelivery"']``; empty when nothing
        was missing.

    Raises:
        SchemaError: the digest queue tables (the Node app's) do not exist.
    """
    created: list[str] = []
    with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # DDL is transactional on PostgreSQL: a second run waits here, then sees
            # what the first one created.
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        inspector = inspect(conn)
        tables = set(inspector.get_table_names())
        absent = [t.name for t, _ in OWN_COLUMNS if t.name not in tables]
        if absent:
            raise SchemaError(
                f"the database at DATABASE_URL lacks the Node app's "
                f"{', '.join(map(_name, absent))}: point DATABASE_URL at the Node app's "
                "database (with ?schema=... if Prisma uses one); nothing was created"
            )
        for table in OWN_TABLES:
            if table.name not in tables:
                table.create(conn)
                created.append(_name(table.name))
            else:  # made by an older version: add what this one has since gained
                created += _add_columns(conn, table, tuple(table.c.keys()))
        for table, columns in OWN_COLUMNS:
            created += _add_columns(conn, table, columns)
    return created


def _add_columns(conn: Connection, table: Table, columns: tuple[str, ...]) -> list[str]:
    inspector = inspect(conn)
    have = {c["name"] for c in inspector.get_columns(table.name)}
    quote = conn.dialect.identifier_preparer.quote
    created: list[str] = []
    for name in columns:
        if name not in have:
            column_type = table.c[name].type.compile(dialect=conn.dialect)
            conn.execute(text(f"ALTER TABLE {quote(table.name)} ADD COLUMN {quote(name)} "
                              f"{column_type}"))
            created.append(_name(table.name, name))
    indexes = {i["name"] for i in inspector.get_indexes(table.name)}
    for index in table.indexes:
        if index.name not in indexes and set(index.columns.keys()) <= set(columns):
            index.create(conn)
            created.append(f"index {_quote(str(index.name))}")
    return created


def create(db: Database) -> list[str]:
    """``--create-tables``: on SQLite every missing table; then bookwish_jobs' own
    objects (:func:`create_own`); then :func:`check` the rest.

    Returns:
        What was created.

    Raises:
        SchemaError: something the jobs use is still missing (the Node app's).
    """
    created: list[str] = []
    if db.is_sqlite:
        before = set(inspect(db.engine).get_table_names())
        db.create_schema()
        created = [_name(t.name) for t in Base.metadata.sorted_tables if t.name not in before]
    created += create_own(db)
    check(db)
    return created


def prepare(db: Database) -> None:
    """Get the database ready for the worker at start-up (see the module docstring).

    Raises:
        SchemaError: on PostgreSQL, something the jobs use is missing.
    """
    if db.is_sqlite:
        create(db)  # also adds columns a file made by an older version lacks
    else:
        check(db)


def _quote(name: str) -> str:
    return f'"{name}"'


def _name(table: str, column: str | None = None) -> str:
    if column is None:
        return f"table {_quote(table)}"
    return f"column {_quote(table)}.{_quote(column)}"
