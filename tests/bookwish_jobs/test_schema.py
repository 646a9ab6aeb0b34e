"""Schema: on PostgreSQL (the Node app's database) the worker never creates or alters the
Prisma tables; ``--create-tables`` makes only bookwish_jobs' own schema and tables,
idempotently. The start-up check asks only for what the enabled queues use, names the
queue that needs a missing column and the setting that maps an open one. SQLite gets
everything at start-up."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import select, text

from bookwish_jobs import names
from bookwish_jobs.columns import ColumnSettings
from bookwish_jobs.db import Database
from bookwish_jobs.demo import seed
from bookwish_jobs.own_models import NotificationDelivery
from bookwish_jobs.schema import SchemaError, check, create_own, missing_own, prepare
from bookwish_jobs.worker import main

from .conftest import PG_URL, prisma_schemas
from .helpers import add_user, column, get
from .prisma import DESIGN, PRISMA_VARIANTS, RENAMED, VARIANTS, Variant

OLD_SQLITE = Path(__file__).with_name("old_sqlite_0_1.sql")
OLD_SQLITE_0_2 = Path(__file__).with_name("old_sqlite_0_2.sql")
OWN_CREATED = ['table "digest_claim"', 'table "notification_delivery"']
postgres_only = pytest.mark.parametrize("database", PRISMA_VARIANTS, indirect=True)


def drop_own(db: Database) -> None:
    with db.engine.begin() as conn:
        if db.own_schema is None:
            conn.execute(text("DROP TABLE notification_delivery"))
            conn.execute(text("DROP TABLE digest_claim"))
        else:
            conn.execute(text(f'DROP SCHEMA "{db.own_schema}" CASCADE'))


def node_structure(db: Database) -> list[tuple[object, ...]]:
    """Every column, type, default and constraint of the Prisma tables."""
    with db.engine.connect() as conn:
        columns = conn.execute(text(
            "SELECT table_name, column_name, data_type, udt_name, column_default, is_nullable "
            "FROM information_schema.columns WHERE table_schema = current_schema() "
            "ORDER BY 1, 2")).all()
        constraints = conn.execute(text(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE connamespace = current_schema()::regnamespace ORDER BY 1")).all()
        indexes = conn.execute(text(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
            "ORDER BY 1")).all()
    return [tuple(r) for r in (*columns, *constraints, *indexes)]


@pytest.fixture
def quiet_main(monkeypatch: pytest.MonkeyPatch) -> None:
    # Keep the root logger off capsys's stream, which closes after the test.
    monkeypatch.setattr("bookwish_jobs.worker.logs.configure", lambda: None)


@postgres_only
def test_create_own_makes_only_our_schema_and_never_alters_prisma_tables(
    database: Database
) -> None:
    drop_own(database)
    before = node_structure(database)
    assert missing_own(database) == ["digest_claim", "notification_delivery"]
    assert create_own(database) == OWN_CREATED
    assert create_own(database) == []
    assert missing_own(database) == []
    assert node_structure(database) == before
    with database.engine.connect() as conn:
        # Other tests (and other people's runs) have schemas of their own on the server.
        schemas = set(conn.scalars(text(
            "SELECT table_schema FROM information_schema.tables WHERE table_name = "
            "'digest_claim' AND table_schema IN (current_schema(), :own)"),
            {"own": database.own_schema}))
    assert schemas == {database.own_schema}


@postgres_only
def test_create_own_from_two_processes_at_once(database: Database) -> None:
    drop_own(database)
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda _: create_own(database), range(2)))
    assert sorted(runs[0] + runs[1]) == sorted(OWN_CREATED)  # each made exactly once
    assert missing_own(database) == []


@postgres_only
def test_check_asks_only_for_what_the_enabled_queues_use(
    database: Database, variant: Variant
) -> None:
    check(database)  # with the variant's column settings: everything is there
    with database.engine.begin() as conn:
        # Tables and columns of the Node schema that no job touches: their absence is fine.
        conn.execute(text('DROP TABLE "Notification"'))
        conn.execute(text('ALTER TABLE "User" DROP COLUMN "createdAt"'))
    check(database)
    # Without the settings, the open columns go back to their defaults: the cleanup
    # needs none of them, the Square sync cannot run without its item id.
    plain = Database(database.url, str(database.own_schema), ColumnSettings())
    try:
        check(plain, [names.RESERVATION_CLEANUP, names.NOTIFICATIONS])
        with pytest.raises(SchemaError) as err:
            check(plain)
        message = str(err.value)
        assert 'square-sync needs column "Inventory"."squareCatalogObjectId"' in message
        assert "SQUARE_ITEM_ID_COLUMN (or --square-item-id-column)" in message
        assert f'"{variant.columns.square_item_id}"' in message  # what the table has
        assert message.count("\n  - ") == 1  # the optional columns are just not used
    finally:
        plain.dispose()
    with database.engine.begin() as conn:
        conn.execute(text('ALTER TABLE "Order" DROP COLUMN "paymentStatus"'))
    check(database, [names.NOTIFICATIONS, names.SQUARE_SYNC, names.ORDER_DIGEST])
    with pytest.raises(SchemaError, match=r'reservation-cleanup needs column '
                                          r'"Order"\."paymentStatus"'):
        check(database)


@postgres_only
def test_an_open_column_set_explicitly_must_exist(database: Database) -> None:
    typo = Database(database.url, str(database.own_schema),
                    database.columns.model_copy(update={"digest_processed_at": "sentAt"}))
    try:
        check(typo, [names.SQUARE_SYNC])
        with pytest.raises(SchemaError) as err:
            check(typo, [names.ORDER_DIGEST])
    finally:
        typo.dispose()
    assert ('order-digest: DIGEST_PROCESSED_AT_COLUMN names column "sentAt", which '
            '"OrderDigestQueue", "BookwishOpsDigestQueue" lack') in str(err.value)


@postgres_only
def test_only_the_own_tables_of_enabled_queues_are_required(database: Database) -> None:
    drop_own(database)
    check(database, [names.RESERVATION_CLEANUP, names.SQUARE_SYNC])
    with pytest.raises(SchemaError, match='"notification_delivery"'):
        check(database, [names.NOTIFICATIONS])


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_sqlite_is_prepared_at_start_up(database: Database) -> None:
    drop_own(database)
    prepare(database)
    assert missing_own(database) == []


@postgres_only
@pytest.mark.usefixtures("quiet_main")
def test_postgres_worker_creates_nothing_and_says_what_to_run(
    database: Database, variant: Variant, bw_redis_url: str,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in variant.env.items():
        monkeypatch.setenv(name, value)
    drop_own(database)
    url = ["--database-url", database.url, "--own-schema", str(database.own_schema)]
    assert main([*url, "--redis-url", bw_redis_url, "--no-schedule"]) == 2
    err = capsys.readouterr().err
    assert "--create-tables" in err
    assert '"digest_claim"' in err
    assert missing_own(database) == ["digest_claim", "notification_delivery"]
    assert main(["--create-tables", *url]) == 0
    assert 'table "digest_claim"' in capsys.readouterr().out
    assert missing_own(database) == []
    assert main(["--create-tables", *url]) == 0
    assert "nothing to create" in capsys.readouterr().out


@postgres_only
@pytest.mark.usefixtures("quiet_main")
def test_postgres_without_the_node_tables_is_refused(
    database: Database, bw_redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with database.engine.begin() as conn:  # DATABASE_URL names the wrong schema
        conn.execute(text("DROP SCHEMA current_schema() CASCADE".replace(
            "current_schema()", f'"{database.url.rsplit("=", 1)[1]}"')))
        conn.execute(text(f'CREATE SCHEMA "{database.url.rsplit("=", 1)[1]}"'))
    url = ["--database-url", database.url, "--own-schema", str(database.own_schema)]
    assert main([*url, "--redis-url", bw_redis_url, "--no-schedule"]) == 2
    err = capsys.readouterr().err
    assert "Node app" in err
    assert 'table "User"' in err
    assert main(["--create-tables", *url]) == 2
    assert "Node app" in capsys.readouterr().err


def test_an_sqlite_file_of_version_0_1_is_upgraded_keeping_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "bookwish.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(OLD_SQLITE.read_text())
        conn.executescript("""
            INSERT INTO "User" VALUES ('u1', 'reader@example.com', 'Reader', '2024-01-01');
            INSERT INTO "Store" (id, name, "inventorySource", "createdAt")
                VALUES ('s1', 'Nook', 'manual', '2024-01-01');
            INSERT INTO "Order" (id, "orderNumber", "storeId", status, "paymentStatus",
                "totalCents", "createdAt", "updatedAt")
                VALUES ('o1', 'N-1', 's1', 'paid', 'paid', 100, '2024-01-01', '2024-01-01');
            INSERT INTO "StoreDigestQueue" (id, processed, "createdAt", "storeId", "orderId",
                "isSpecialOrder") VALUES ('d1', 0, '2024-01-01', 's1', 'o1', 1),
                                         ('d2', 1, '2024-01-01', 's1', 'o1', 0);
            INSERT INTO "NotificationDelivery" VALUES
                ('x1', 'n1', 'push', 'tokA', 'ticket-1', '2024-01-01');
        """)
    db = Database(f"sqlite:///{path}")
    try:
        prepare(db)
        # The current models can write again (0.1's User.createdAt was NOT NULL).
        add_user(db, "u2", "second@example.com", ["tokB"])
        assert get(db, "User", "u1").email == "reader@example.com"
        # the unprocessed entry, carried over
        assert column(db, "OrderDigestQueue", "id") == ["d1"]
        assert column(db, "OrderDigestQueue", "isSpecialOrder") == [True]
        with db.transaction() as s:
            assert [(d.notification_id, d.target) for d in
                    s.scalars(select(NotificationDelivery))] == [("n1", "tokA")]
        prepare(db)  # again: nothing more to do, nothing carried twice
        assert column(db, "OrderDigestQueue", "id") == ["d1"]
    finally:
        db.dispose()




def run_worker_until_started(env: dict[str, str], cwd: Path) -> list[dict[str, object]]:
    """``python -m bookwish_jobs.worker`` until it logs worker.started, then SIGTERM;
    returns its log events. Fails with its stderr if it exits on its own."""
    proc = subprocess.Popen([sys.executable, "-m", "bookwish_jobs.worker"], cwd=cwd,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stderr is not None
    lines: list[str] = []
    for line in proc.stderr:
        lines.append(line)
        if '"event": "worker.started"' in line:
            proc.send_signal(signal.SIGTERM)
            break
    _, rest = proc.communicate(timeout=30)
    lines += rest.splitlines()
    assert proc.returncode == 0, "".join(lines)[-3000:]
    return [json.loads(line) for line in lines if line.startswith("{")]


def worker_env(db_url: str, own_schema: str, redis_url: str, **extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items()
            if not k.endswith("_COLUMN") and k not in ("BOOKWISH_QUEUES", "DATABASE_URL")}
    return keep | {"DATABASE_URL": db_url, "BOOKWISH_JOBS_SCHEMA": own_schema,
                   "REDIS_URL": redis_url, "PYTHONUNBUFFERED": "1"} | extra


@pytest.mark.timeout(90)
@pytest.mark.parametrize(("variant_id", "queues", "with_settings"), [
    (DESIGN.id, "reservation-cleanup=1", False),  # issue 27: refused before, no setting needed
    (RENAMED.id, "", True),  # every queue, every open column mapped
])
@pytest.mark.usefixtures("quiet_main")
def test_the_worker_starts_on_each_prisma_schema_unaltered(
    variant_id: str, queues: str, with_settings: bool, bw_redis_url: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    variant = VARIANTS[variant_id]
    settings = variant.env if with_settings else {}
    with prisma_schemas(variant) as (node_schema, own_schema):
        url = f"{PG_URL}?schema={node_schema}"
        extra = settings | ({"BOOKWISH_QUEUES": queues} if queues else {})
        for name, value in worker_env(url, own_schema, bw_redis_url, **extra).items():
            monkeypatch.setenv(name, value)
        assert main(["--create-tables"]) == 0
        events = run_worker_until_started(
            worker_env(url, own_schema, bw_redis_url, **extra), tmp_path)
    [started] = [e for e in events if e["event"] == "worker.started"]
    assert set(started["queues"]) == (  # type: ignore[arg-type]
        {"reservation-cleanup"} if queues else set(names.QUEUE_NAMES))
    [layout] = [e["columns"] for e in events if e["event"] == "worker.columns"]
    assert isinstance(layout, dict)
    assert layout["Inventory.square_item_id"] == (
        variant.columns.square_item_id if with_settings else None)
    assert layout["OrderDigestQueue.digest_processed_at"] == (
        "digestedAt" if variant is RENAMED else None)


@pytest.mark.usefixtures("quiet_main")
def test_a_missing_column_names_the_queue_and_the_setting(
    bw_redis_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    with prisma_schemas(DESIGN) as (node_schema, own_schema):
        url = f"{PG_URL}?schema={node_schema}"
        for name, value in worker_env(url, own_schema, bw_redis_url).items():
            monkeypatch.setenv(name, value)
        assert main(["--create-tables"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n  - ") == 1, err
    assert ('  - square-sync needs column "Inventory"."squareCatalogObjectId" (the Square '
            'catalog object id that Square\'s inventory counts are matched on): set '
            'SQUARE_ITEM_ID_COLUMN (or --square-item-id-column) to the column that holds it '
            '("Inventory" has "createdAt", "id", "quantity", "reservedQuantity", '
            '"squareItemId", "storeId", "updatedAt")') in err


def test_an_sqlite_file_made_before_the_open_columns_still_works(tmp_path: Path) -> None:
    """The previous version's file had Inventory.title NOT NULL, which no job writes now:
    start-up rebuilds that table, keeping its rows, and the demo can seed it again."""
    path = tmp_path / "bookwish.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(OLD_SQLITE_0_2.read_text())
        conn.executescript("""
            INSERT INTO "Store" (id, name, "inventorySource") VALUES ('s1', 'Nook', 'square');
            INSERT INTO "Inventory" (id, "storeId", title, "squareCatalogObjectId", quantity,
                "reservedQuantity", "updatedAt") VALUES ('i1', 's1', 'Dune', 'SQ-1', 4, 1,
                '2024-01-01 00:00:00');
        """)
    db = Database(f"sqlite:///{path}")
    try:
        prepare(db)
        row = get(db, "Inventory", "i1")
        assert (row.square_item_id, row.quantity, row.reservedQuantity) == ("SQ-1", 4, 1)
        seeded = seed(db)  # inserts inventory rows without a title, order items with one
        assert get(db, "Order", seeded["paid_order"]).status == "paid"
    finally:
        db.dispose()
