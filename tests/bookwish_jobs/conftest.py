"""Fixtures for bookwish_jobs: both databases, a local SMTP server, local Expo and Square.

PostgreSQL: postgresql://postgres@127.0.0.1:5432/test (override with BOOKWISH_TEST_PG_URL);
each test gets its own schema holding the Node app's tables as Prisma's migration makes
them (``prisma/migration.sql``: native enums; the ``postgresql-text`` variant has text
columns instead), plus its own schema for bookwish_jobs' tables; both are dropped
afterwards. When the server is unreachable the PostgreSQL tests fail with a message,
unless BOOKWISH_SKIP_POSTGRES=1.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from aiosmtpd.controller import Controller
from sqlalchemy import create_engine, text

from bookwish_jobs import schema
from bookwish_jobs.config import Settings, SmtpSettings
from bookwish_jobs.context import AppContext
from bookwish_jobs.db import Database
from bookwish_jobs.fakes import FakeExpo, FakeSquare
from bookwish_jobs.registry import make_worker
from bookwish_jobs.services.email import SmtpMailer
from bookwish_jobs.services.push import ExpoPushClient
from bookwish_jobs.services.square import SquareClient
from pyqueue.embedded import free_port

from .prisma import migration_sql

PG_URL = os.environ.get("BOOKWISH_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
SQUARE_TOKEN = "sq0atp-SECRET-token-value"


def _pg_admin() -> Any:
    engine = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1),
                           isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("select 1"))
    except Exception as exc:
        engine.dispose()
        if os.environ.get("BOOKWISH_SKIP_POSTGRES") == "1":
            pytest.skip(f"PostgreSQL unreachable ({PG_URL}) and BOOKWISH_SKIP_POSTGRES=1")
        pytest.fail(
            f"PostgreSQL is unreachable at {PG_URL}: {exc}. Start it, point "
            "BOOKWISH_TEST_PG_URL at one, or set BOOKWISH_SKIP_POSTGRES=1 to skip.",
            pytrace=False,
        )
    return engine


@contextmanager
def prisma_database(variant: str = "enums") -> Iterator[Database]:
    """A fresh PostgreSQL schema with the Node app's Prisma tables and bookwish_jobs' own
    tables (as ``--create-tables`` makes them), in per-test schemas."""
    admin = _pg_admin()
    tag = uuid.uuid4().hex[:12]
    node_schema, own_schema = f"bw_test_{tag}", f"bw_own_{tag}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{node_schema}"'))
        conn.execute(text(f'SET search_path TO "{node_schema}"'))
        conn.exec_driver_sql(migration_sql(variant))
        conn.execute(text("SET search_path TO DEFAULT"))
    db = Database(f"{PG_URL}?schema={node_schema}", own_schema=own_schema)
    try:
        schema.create_own(db)
        yield db
    finally:
        db.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{node_schema}" CASCADE'))
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{own_schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql", "postgresql-text"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A fresh database: a SQLite file with every table, or the Prisma-made PostgreSQL
    schema with native enums (``postgresql``) or text columns (``postgresql-text``)."""
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'bookwish.db'}")
        db.create_schema()
        yield db
        db.dispose()
        return
    with prisma_database("text" if request.param == "postgresql-text" else "enums") as db:
        yield db


@pytest.fixture
def bw_redis_url(redis_url: str) -> str:
    """The session's private Redis, database 7, emptied: the four queue names are fixed."""
    url = redis_url.rsplit("/", 1)[0] + "/7"
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    return url


@dataclass
class SmtpSink:
    messages: list[Any] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        import email

        message = email.message_from_bytes(envelope.original_content or envelope.content)
        self.messages.append(message)
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[SmtpSink, int]]:
    """A local aiosmtpd server; yields (sink with received messages, port)."""
    sink = SmtpSink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    yield sink, port
    controller.stop()


@pytest.fixture
def expo() -> Iterator[FakeExpo]:
    with FakeExpo() as server:
        yield server


@pytest.fixture
def square() -> Iterator[FakeSquare]:
    with FakeSquare(tokens={SQUARE_TOKEN}, page_size=2) as server:
        yield server


@pytest.fixture
def ctx(database: Database, smtp: tuple[SmtpSink, int], expo: FakeExpo, square: FakeSquare,
        tmp_path: Path) -> AppContext:
    smtp_settings = SmtpSettings(host="127.0.0.1", port=smtp[1], tls="none")
    settings = Settings(redis_url=None, database_url=database.url, smtp=smtp_settings,
                        expo_push_url=expo.url, square_base_url=square.url,
                        ops_digest_email="ops@bookwish.test", var_dir=tmp_path)
    sleeps: list[float] = []
    context = AppContext(settings=settings, db=database, mailer=SmtpMailer(smtp_settings),
                         push=ExpoPushClient(expo.url),
                         square=SquareClient(square.url, sleep=sleeps.append))
    context.sleeps = sleeps  # type: ignore[attr-defined]
    return context


@dataclass
class Outcome:
    state: str  # "completed" | "failed"
    value: Any  # result, or the exception
    attempts_made: int


async def run_job(ctx: AppContext, redis_url: str, queue: str, data: Any,
                  timeout: float = 20.0, name: str | None = None, **options: Any) -> Outcome:
    """Add one job to ``queue`` and process it with a real pyqueue worker until it is done."""
    qw = make_worker(queue, ctx, redis_url, concurrency=1, shutdown_grace=5)
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Outcome] = loop.create_future()
    wanted: dict[str, str] = {}

    def finish(job: Any, state: str, value: Any) -> None:
        if job.id == wanted.get("id") and not done.done():
            done.set_result(Outcome(state, value, job.attempts_made))

    qw.worker.on("completed", lambda job, result: finish(job, "completed", result))
    qw.worker.on("failed", lambda job, exc, final: finish(job, "failed", exc)
                 if final else None)
    await qw.worker.start()
    try:
        job = await qw.queue.add(data, name=name, **options)
        wanted["id"] = job.id
        return await asyncio.wait_for(done, timeout)
    finally:
        await qw.close()
