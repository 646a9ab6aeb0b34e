"""The database: one engine and session factory for SQLite or PostgreSQL.

``DATABASE_URL`` takes Prisma's form too: ``postgresql://user@host/db?schema=name``
sets the search path, as Prisma does. bookwish_jobs' own tables (``own_models.py``) are
in their own schema on PostgreSQL (``own_schema``, default ``bookwish_jobs``) and in
the main file on SQLite. SQLite runs in WAL mode and every
transaction starts with ``BEGIN IMMEDIATE``, so two writers queue up on the busy
timeout instead of failing on a stale snapshot.

The Node app's tables (``models.py``) are built for each database: ``db.node`` finds,
on first use, which of the open columns (``columns.py``) the database has.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from bookwish_jobs import models
from bookwish_jobs.columns import ColumnSettings
from bookwish_jobs.models import NodeTables
from bookwish_jobs.own_models import OWN_SCHEMA, OwnBase

DEFAULT_OWN_SCHEMA = "bookwish_jobs"


def make_engine(url: str) -> Engine:
    """An engine for a ``sqlite://`` or ``postgres(ql)://`` URL."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername.startswith("postgresql"):
        query = dict(parsed.query)
        schema = query.pop("schema", None)
        connect_args: dict[str, Any] = {}
        if schema:
            connect_args["options"] = f"-csearch_path={schema}"
        parsed = parsed.set(query=query)
        return create_engine(parsed, connect_args=connect_args, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(parsed, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class Database:
    """An engine plus a session factory. ``with db.transaction() as s:`` commits or rolls back."""

    def __init__(self, url: str, own_schema: str = DEFAULT_OWN_SCHEMA,
                 columns: ColumnSettings | None = None) -> None:
        self.url = url
        self.columns = columns or ColumnSettings()
        self.raw_engine = make_engine(url)
        sqlite = self.raw_engine.dialect.name == "sqlite"
        self.own_schema: str | None = None if sqlite else own_schema
        self.engine = self.raw_engine.execution_options(
            schema_translate_map={OWN_SCHEMA: self.own_schema})
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._node: NodeTables | None = None
        self._lock = threading.Lock()

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @property
    def node(self) -> NodeTables:
        """The Node app's tables with the open columns this database has (found once)."""
        node = self._node
        if node is None:
            with self._lock:
                node = self._node = self._node or self.inspect_node()
        return node

    def inspect_node(self) -> NodeTables:
        """Look at the database again (after :meth:`create_schema`, say)."""
        self._node = models.build(models.resolve(self.columns, self.node_columns()))
        return self._node

    def node_columns(self) -> dict[str, list[str]]:
        """Every column of every table in the Node app's schema, by table."""
        found = inspect(self.engine).get_multi_columns()
        return {table: [c["name"] for c in cols] for (_schema, table), cols in found.items()}

    def full_tables(self) -> NodeTables:
        """The tables with every open column, under its configured name (what SQLite gets)."""
        return models.build(models.full_layout(self.columns))

    def create_schema(self) -> None:
        """Create every missing table, the Node app's included (existing ones are left as
        they are). For SQLite; the worker goes through :mod:`bookwish_jobs.schema`, which
        never creates the Node app's tables on PostgreSQL.
        """
        self.full_tables().metadata.create_all(self.engine)
        self.create_own_tables()
        self.inspect_node()

    def create_own_tables(self) -> None:
        """bookwish_jobs' own schema (PostgreSQL) and tables, where missing."""
        with self.engine.begin() as conn:
            if self.own_schema is not None:
                quoted = conn.dialect.identifier_preparer.quote(self.own_schema)
                conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {quoted}")
            OwnBase.metadata.create_all(conn)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with self.sessions.begin() as session:
            yield session

    def dispose(self) -> None:
        self.raw_engine.dispose()
