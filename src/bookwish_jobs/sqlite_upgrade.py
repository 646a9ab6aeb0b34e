"""Upgrading an embedded SQLite file made by an older bookwish_jobs (``var/bookwish.db``).

SQLite is bookwish_jobs' own database, so unlike PostgreSQL its tables may be changed.
Version 0.1 made its tables from fuller models: columns the jobs no longer use, some
``NOT NULL`` without a default (``User.createdAt``, ``Order.totalCents``, ...), which
would refuse every insert of the current models. :func:`upgrade` rebuilds such a table
with the current layout, keeping its rows, and carries the 0.1 digest entries and
delivery records over to their current tables (``StoreDigestQueue`` became
``OrderDigestQueue``, ``OpsDigestQueue`` became ``BookwishOpsDigestQueue``,
``NotificationDelivery`` became ``notification_delivery``), so nothing pending is lost
and no notification is sent twice. Those three 0.1 tables are kept, renamed with the suffix
``__0_1_carried_over``, so a second start-up does not carry them again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table, inspect
from sqlalchemy.schema import CreateIndex, CreateTable

from bookwish_jobs.columns import BY_KEY
from bookwish_jobs.db import Database

_DIGEST = '"id", "storeId", "orderId", "isSpecialOrder", "processed", "processedAt", "createdAt"'
_OPS = '"id", "orderId", "processed", "processedAt", "createdAt"'
# (0.1 table, current table, current columns, the 0.1 columns giving them, condition)
_CARRY_OVER = (
    ("StoreDigestQueue", "OrderDigestQueue", _DIGEST, _DIGEST, '"processed" = 0'),
    ("OpsDigestQueue", "BookwishOpsDigestQueue", _OPS, _OPS, '"processed" = 0'),
    ("NotificationDelivery", "notification_delivery",
     "id, notification_id, channel, target, provider_id, delivered_at",
     '"id", "notificationId", channel, target, "providerId", "deliveredAt"', "1 = 1"),
)


def _digest_columns(db: Database, columns: str) -> str:
    """The current digest columns: 0.1's stamps under the names the settings give them."""
    for old, key in (("processedAt", "digest_processed_at"), ("createdAt", "digest_created_at")):
        columns = columns.replace(f'"{old}"', f'"{db.columns.name(BY_KEY[key])}"')
    return columns


def _blocking(columns: Sequence[Mapping[str, Any]], table: Table) -> bool:
    """Whether the existing table has a NOT NULL column without default the model lacks."""
    return any(not c["nullable"] and c.get("default") is None and c["name"] not in table.c
               and not c.get("primary_key") for c in columns)


def upgrade(db: Database) -> list[str]:
    """Rebuild the tables an older version made that the current models cannot write.

    Returns:
        What was done, e.g. ``['rebuilt table "User"', 'carried over 2 rows of ...']``.
    """
    inspector = inspect(db.engine)
    existing = set(inspector.get_table_names())
    stale = [t for t in db.full_tables().metadata.sorted_tables
             if t.name in existing and _blocking(inspector.get_columns(t.name), t)]
    carry = [c for c in _CARRY_OVER if c[0] in existing]
    if not stale and not carry:
        return []
    done: list[str] = []
    raw = db.raw_engine.raw_connection()
    try:
        cur = raw.cursor()
        # Foreign keys off, legacy renames: other tables keep pointing at the name.
        cur.execute("PRAGMA foreign_keys=OFF")
        cur.execute("PRAGMA legacy_alter_table=ON")
        cur.execute("BEGIN IMMEDIATE")
        for table in stale:
            had = {c["name"] for c in inspector.get_columns(table.name)}
            keep = ", ".join(f'"{c.name}"' for c in table.columns if c.name in had)
            cur.execute(f'ALTER TABLE "{table.name}" RENAME TO "{table.name}__0_1"')
            cur.execute(str(CreateTable(table).compile(dialect=db.engine.dialect)))
            cur.execute(f'INSERT INTO "{table.name}" ({keep}) SELECT {keep} '
                        f'FROM "{table.name}__0_1"')
            cur.execute(f'DROP TABLE "{table.name}__0_1"')  # and its indexes, by their names
            for index in table.indexes:
                cur.execute(str(CreateIndex(index).compile(dialect=db.engine.dialect)))
            done.append(f'rebuilt table "{table.name}"')
        for old, new, wanted, source, where in carry:
            columns = wanted if new == "notification_delivery" else _digest_columns(db, wanted)
            cur.execute(f'INSERT OR IGNORE INTO "{new}" ({columns}) SELECT {source} '
                        f'FROM "{old}" WHERE {where}')
            done.append(f'carried over {max(cur.rowcount, 0)} rows of "{old}" to "{new}"')
            cur.execute(f'ALTER TABLE "{old}" RENAME TO "{old}__0_1_carried_over"')
        cur.execute("COMMIT")
        cur.execute("PRAGMA legacy_alter_table=OFF")
        cur.execute("PRAGMA foreign_keys=ON")
    except BaseException:
        raw.rollback()
        raise
    finally:
        raw.close()
    return done

