"""Schema: on PostgreSQL (the Node app's database) the worker creates nothing by itself;
``--create-tables`` adds only bookwish_jobs' own table and columns, idempotently. SQLite
gets everything at start-up."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import inspect, text

from bookwish_jobs.db import Database
from bookwish_jobs.models import Base, User
from bookwish_jobs.schema import create_own, missing, prepare
from bookwish_jobs.worker import main

from .helpers import get

DIGEST_TABLES = ("StoreDigestQueue", "OpsDigestQueue")
CLAIM_COLUMNS = ("claimId", "claimedAt", "sendStartedAt")
OWN_MISSING = {("NotificationDelivery", None)} | {
    (table, column) for table in DIGEST_TABLES for column in CLAIM_COLUMNS}
CREATED = ['table "NotificationDelivery"'] + [
    item for table in DIGEST_TABLES for item in
    [f'column "{table}"."{column}"' for column in CLAIM_COLUMNS] + [f'index "ix_{table}_claimId"']
]
postgres_only = pytest.mark.parametrize("database", ["postgresql"], indirect=True)


def as_node_database(db: Database) -> None:
    """Reduce a full schema to what the Node app's own migrations make."""
    with db.engine.begin() as conn:
        conn.execute(text('DROP TABLE "NotificationDelivery"'))
        for table in DIGEST_TABLES:
            conn.execute(text(f'DROP INDEX "ix_{table}_claimId"'))
            for column in CLAIM_COLUMNS:
                conn.execute(text(f'ALTER TABLE "{table}" DROP COLUMN "{column}"'))


def indexes(db: Database, table: str) -> set[str | None]:
    return {i["name"] for i in inspect(db.engine).get_indexes(table)}


@pytest.fixture
def quiet_main(monkeypatch: pytest.MonkeyPatch) -> None:
    # Keep the root logger off capsys's stream, which closes after the test.
    monkeypatch.setattr("bookwish_jobs.worker.logs.configure", lambda: None)


def test_create_own_adds_only_our_objects_and_is_idempotent(database: Database) -> None:
    as_node_database(database)
    with database.transaction() as s:
        s.add(User(id="u1", email="reader@example.com"))
    assert set(missing(database)) == OWN_MISSING
    assert create_own(database) == CREATED
    assert missing(database) == []
    assert all(f"ix_{t}_claimId" in indexes(database, t) for t in DIGEST_TABLES)
    assert create_own(database) == []
    assert get(database, User, "u1").email == "reader@example.com"


def test_create_own_from_two_processes_at_once(database: Database) -> None:
    as_node_database(database)
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda _: create_own(database), range(2)))
    assert sorted(runs[0] + runs[1]) == sorted(CREATED)  # each object made exactly once
    assert missing(database) == []


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_sqlite_is_prepared_at_start_up(database: Database) -> None:
    as_node_database(database)  # e.g. a file an older version made
    prepare(database)
    assert missing(database) == []


@postgres_only
@pytest.mark.usefixtures("quiet_main")
def test_postgres_worker_creates_nothing_and_says_what_to_run(
    database: Database, bw_redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    as_node_database(database)
    url = ["--database-url", database.url]
    assert main([*url, "--redis-url", bw_redis_url, "--no-schedule"]) == 2
    err = capsys.readouterr().err
    assert "--create-tables" in err
    assert '"NotificationDelivery"' in err
    assert set(missing(database)) == OWN_MISSING  # nothing created behind our back
    assert main(["--create-tables", *url]) == 0
    assert 'table "NotificationDelivery"' in capsys.readouterr().out
    assert missing(database) == []
    assert main(["--create-tables", *url]) == 0
    assert "nothing to create" in capsys.readouterr().out


@postgres_only
@pytest.mark.usefixtures("quiet_main")
def test_postgres_without_the_node_tables_is_refused(
    database: Database, bw_redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    Base.metadata.drop_all(database.engine)  # DATABASE_URL names the wrong schema
    url = ["--database-url", database.url]
    assert main([*url, "--redis-url", bw_redis_url, "--no-schedule"]) == 2
    err = capsys.readouterr().err
    assert "Node app" in err
    assert 'table "User"' in err
    assert main(["--create-tables", *url]) == 2
    assert "Node app" in capsys.readouterr().err
    assert inspect(database.engine).get_table_names() == []
