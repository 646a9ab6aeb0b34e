"""Fixtures for bookwish_jobs: both databases, a local SMTP server, local Expo and Square.

Every test that takes ``database`` (or ``ctx``) runs on each schema variant
(``prisma/__init__.py``): ``sqlite``, ``prisma`` (the design's models as Prisma migrates
them) and ``prisma-renamed`` (other names for the open columns, text statuses). The
database carries the variant's column settings, as a deployment would set them.

PostgreSQL: postgresql://postgres@127.0.0.1:5432/test (override with BOOKWISH_TEST_PG_URL);
each test gets its own schema ``bw_<random>`` holding the variant's ``migration.sql``,
plus its own schema for bookwish_jobs' tables; both are dropped afterwards. When the
server is unreachable the PostgreSQL tests fail with a message, unless
BOOKWISH_SKIP_POSTGRES=1.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Awaitable, Callable, Iterator
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
from pyqueue import Queue
from pyqueue.embedded import free_port

from .prisma import VARIANTS, Variant

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
def prisma_schemas(variant: Variant) -> Iterator[tuple[str, str]]:
    """Fresh PostgreSQL schemas ``(node, own)``: the first holds the variant's Prisma
    tables, made by its migration.sql; the second is empty, for bookwish_jobs' tables."""
    admin = _pg_admin()
    tag = uuid.uuid4().hex[:12]
    node_schema, own_schema = f"bw_{tag}", f"bw_own_{tag}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{node_schema}"'))
        conn.execute(text(f'SET search_path TO "{node_schema}"'))
        conn.exec_driver_sql(variant.migration_sql)
        conn.execute(text("SET search_path TO DEFAULT"))
    try:
        yield node_schema, own_schema
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{node_schema}" CASCADE'))
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{own_schema}" CASCADE'))
        admin.dispose()


@contextmanager
def prisma_database(variant: Variant) -> Iterator[Database]:
    """The variant's Prisma tables and bookwish_jobs' own (as ``--create-tables`` makes
    them), in per-test schemas."""
    with prisma_schemas(variant) as (node_schema, own_schema):
        db = Database(f"{PG_URL}?schema={node_schema}", own_schema=own_schema,
                      columns=variant.columns)
        try:
            schema.create_own(db)
            yield db
        finally:
            db.dispose()


@pytest.fixture(params=list(VARIANTS))
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A fresh database of each schema variant (``prisma/__init__.py``)."""
    variant = VARIANTS[request.param]
    if variant.folder is None:
        db = Database(f"sqlite:///{tmp_path / 'bookwish.db'}", columns=variant.columns)
        db.create_schema()
        yield db
        db.dispose()
        return
    with prisma_database(variant) as db:
        yield db


@pytest.fixture
def variant(database: Database, request: pytest.FixtureRequest) -> Variant:
    """The schema variant ``database`` is."""
    return VARIANTS[request.node.callspec.params["database"]]


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
    controller: Any = None  # the aiosmtpd Controller serving it (tests stop and restart it)
    refuse: set[str] = field(default_factory=set)  # recipients answered 550

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any,  # noqa: N802
                          address: str, rcpt_options: Any) -> str:
        if address in self.refuse:
            return "550 5.2.2 mailbox full"
        envelope.rcpt_tos.append(address)
        return "250 OK"

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
    sink.controller = Controller(sink, hostname="127.0.0.1", port=port)
    sink.controller.start()
    yield sink, port
    if sink.controller is not None:
        sink.controller.stop()


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
                        ops_digest_email="ops@bookwish.test", var_dir=tmp_path,
                        columns=database.columns)
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
    async def add(into: Queue[Any]) -> str:
        return (await into.add(data, name=name, **options)).id

    return await _process(ctx, redis_url, queue, add, timeout)


async def process_job(ctx: AppContext, redis_url: str, queue: str, job_id: str,
                      timeout: float = 30.0) -> Outcome:
    """Process a job someone else added (the Node app, say) until it is done."""
    async def added(_into: Queue[Any]) -> str:
        return job_id

    return await _process(ctx, redis_url, queue, added, timeout)


async def _process(ctx: AppContext, redis_url: str, queue: str,
                   add: Callable[[Queue[Any]], Awaitable[str]], timeout: float) -> Outcome:
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
        wanted["id"] = await add(qw.queue)
        return await asyncio.wait_for(done, timeout)
    finally:
        await qw.close()
