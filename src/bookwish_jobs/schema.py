"""Which tables the worker creates, and when.

- **SQLite** (the embedded default) is bookwish_jobs' own database: at start-up the
  worker creates every missing table (:func:`prepare`).
- **PostgreSQL** is the Node app's database. Its tables (``User``, ``Order``, ...) are
  the Node app's, made by its Prisma migrations: the worker never creates or alters
  them. bookwish_jobs' own tables (``own_models.py``) live in their own schema, which
  one explicit command creates where missing: ``python -m bookwish_jobs.worker
  --create-tables`` (:func:`create_own`). It is idempotent and safe to run from several
  places at once. At start-up the worker only checks: when a table or column the jobs
  use is missing, it stops (exit code 2) with a message that names what is missing
  and what to do, rather than failing job after job on SQL errors. Only the columns
  the jobs read or write are checked (those mapped in ``models.py``).
"""

from __future__ import annotations

from sqlalchemy import inspect, text

from bookwish_jobs import sqlite_upgrade
from bookwish_jobs.db import Database
from bookwish_jobs.models import Base
from bookwish_jobs.own_models import OwnBase

CREATE_COMMAND = "python -m bookwish_jobs.worker --create-tables"
# Serialises concurrent --create-tables runs on PostgreSQL (any fixed 64-bit number).
_LOCK_KEY = 0x626F6F6B77697368


class SchemaError(RuntimeError):
    """The database lacks tables or columns the jobs use; the message says what to do."""


def missing_node(db: Database) -> list[tuple[str, str | None]]:
    """What the jobs use of the Node app's tables that the database lacks:
    ``(table, None)`` for a whole table, ``(table, column)`` for a column."""
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


def missing_own(db: Database) -> list[str]:
    """bookwish_jobs' own tables that do not exist yet."""
    have = set(inspect(db.engine).get_table_names(schema=db.own_schema))
    return [t.name for t in OwnBase.metadata.sorted_tables if t.name not in have]


def check(db: Database) -> None:
    """Raise :class:`SchemaError` unless every table and column the jobs use exists."""
    node = [_name(*gap) for gap in missing_node(db)]
    if node:
        raise SchemaError(
            f"the database at DATABASE_URL lacks the Node app's {', '.join(node)}. "
            "Point DATABASE_URL at the BookWish database (with ?schema=... if Prisma "
            "uses one) and apply the Node app's migrations; bookwish_jobs never creates "
            "or alters the Node app's tables on PostgreSQL."
        )
    own = missing_own(db)
    if own:
        where = f" in schema {_quote(db.own_schema)}" if db.own_schema else ""
        raise SchemaError(
            f"bookwish_jobs' own tables {', '.join(map(_quote, own))}{where} are missing. "
            f"Create them once with `{CREATE_COMMAND}` (it creates only these, in "
            "bookwish_jobs' own schema, and is safe to rerun)."
        )


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
    return [_name(t.name) for t in OwnBase.metadata.sorted_tables if t.name not in have]


def create(db: Database) -> list[str]:
    """``--create-tables``: on SQLite every missing table; then bookwish_jobs' own
    (:func:`create_own`); then :func:`check` the rest.

    Raises:
        SchemaError: something the jobs use is still missing (the Node app's).
    """
    created: list[str] = []
    if db.is_sqlite:
        before = set(inspect(db.engine).get_table_names())
        Base.metadata.create_all(db.engine)
        created = [_name(t.name) for t in Base.metadata.sorted_tables if t.name not in before]
    created += create_own(db)
    if db.is_sqlite:
        created += sqlite_upgrade.upgrade(db)  # a file an older version made
    check(db)
    return created


def prepare(db: Database) -> None:
    """Get the database ready for the worker at start-up (see the module docstring).

    Raises:
        SchemaError: on PostgreSQL, something the jobs use is missing.
    """
    if db.is_sqlite:
        create(db)
    else:
        check(db)


def _quote(name: str | None) -> str:
    return f'"{name}"'


def _name(table: str, column: str | None = None) -> str:
    if column is None:
        return f"table {_quote(table)}"
    return f"column {_quote(table)}.{_quote(column)}"
