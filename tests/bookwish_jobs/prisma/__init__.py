"""The Node app's Prisma-made PostgreSQL schema, for tests (see migration.sql)."""

from __future__ import annotations

import re
from pathlib import Path

MIGRATION = Path(__file__).with_name("migration.sql")
ENUMS = ("OrderStatus", "PaymentStatus", "InventorySource", "NotificationType")


def migration_sql(variant: str = "enums") -> str:
    """The migration as Prisma writes it (``enums``), or with every enum column as TEXT
    (``text``: a schema whose statuses are ``String`` fields)."""
    sql = MIGRATION.read_text()
    if variant == "enums":
        return sql
    if variant != "text":
        raise ValueError(f"variant must be 'enums' or 'text', got {variant!r}")
    sql = re.sub(r'-- CreateEnum\nCREATE TYPE "\w+" AS ENUM \([^)]*\);\n', "", sql)
    for enum in ENUMS:
        sql = sql.replace(f'"{enum}" NOT NULL', "TEXT NOT NULL")
    assert "ENUM" not in sql
    return sql
