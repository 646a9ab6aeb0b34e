"""The Prisma fixtures are what ``prisma migrate dev`` makes of their schema.prisma.

The Prisma CLI cannot fetch its engines on these machines, so each variant's
migration.sql is written by hand. This test loads it into PostgreSQL and checks the
result against the schema.prisma beside it by Prisma's documented rules: a table per
model, a column per scalar field in field order (``String`` TEXT, ``Int`` INTEGER,
``Boolean`` BOOLEAN, ``DateTime`` TIMESTAMP(3), an enum its native type), NOT NULL
unless optional, ``@default`` as a database default except the client-made ``cuid()``/
``uuid()`` (and no default for ``@updatedAt``), ``<Model>_pkey``, ``<Model>_<fields>_key``
for ``@unique``/``@@unique``, ``<Model>_<fields>_idx`` for ``@@index``, and a
``<Model>_<field>_fkey`` per relation, ``ON DELETE`` ``CASCADE`` when asked, else ``SET
NULL`` for an optional relation and ``RESTRICT`` for a required one, ``ON UPDATE CASCADE``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest
from sqlalchemy import Engine, create_engine, text

from .conftest import PG_URL, prisma_schemas
from .prisma import PRISMA_VARIANTS, VARIANTS, Variant

SQL_TYPES = {"String": "text", "Int": "integer", "Boolean": "boolean",
             "DateTime": "timestamp without time zone"}


@dataclass
class Model:
    name: str
    columns: list[tuple[str, str, bool, str | None]] = field(default_factory=list)
    indexes: set[str] = field(default_factory=set)  # (unique?) names
    foreign_keys: dict[str, tuple[str, str]] = field(default_factory=dict)


def _fields(block: str) -> list[str]:
    return re.findall(r"\[([^\]]*)\]", block)


def parse(schema: str) -> tuple[dict[str, list[str]], dict[str, Model]]:
    """``(enums, models)`` of a schema.prisma, reduced to what the DDL shows."""
    enums = {name: body.split() for name, body in
             re.findall(r"^enum (\w+) \{([^}]*)\}", schema, re.MULTILINE)}
    models: dict[str, Model] = {}
    for name, body in re.findall(r"^model (\w+) \{(.*?)^\}", schema, re.MULTILINE | re.DOTALL):
        model = models[name] = Model(name)
        model.indexes.add(f"{name}_pkey")
        for line in (ln.split("//")[0].strip() for ln in body.splitlines()):
            if line.startswith("@@unique"):
                model.indexes.add(f"{name}_{'_'.join(_fields(line)[0].split(', '))}_key")
            elif line.startswith("@@index"):
                model.indexes.add(f"{name}_{'_'.join(_fields(line)[0].split(', '))}_idx")
            if not line or line.startswith("@@"):
                continue
            fname, ftype, *attrs = line.split(maxsplit=2)
            attr = attrs[0] if attrs else ""
            base = ftype.rstrip("?[]")
            if "@relation" in attr:
                [local, *_] = _fields(attr.split("fields:")[1])
                on_delete = "CASCADE" if "onDelete: Cascade" in attr else (
                    "SET NULL" if ftype.endswith("?") else "RESTRICT")
                model.foreign_keys[f"{name}_{local}_fkey"] = (base, on_delete)
                continue
            if ftype.endswith("[]") or (base not in SQL_TYPES and base not in enums):
                continue  # the other side of a relation
            default = re.search(r"@default\((.*?\)?)\)(?:\s|$)", attr)
            db_default = None if default is None else _db_default(default.group(1), base, enums)
            sql_type = "USER-DEFINED:" + base if base in enums else SQL_TYPES[base]
            model.columns.append((fname, sql_type, ftype.endswith("?"), db_default))
            if "@unique" in attr:
                model.indexes.add(f"{name}_{fname}_key")
    return enums, models


def _db_default(value: str, base: str, enums: dict[str, list[str]]) -> str | None:
    if value in ("cuid()", "uuid()"):
        return None  # made by Prisma's client
    if value == "now()":
        return "CURRENT_TIMESTAMP"
    if base in enums:
        return f"'{value}'::\"{base}\""
    if base == "String":
        return f"'{value.strip(chr(34))}'::text"
    return value


@pytest.mark.parametrize("variant_id", PRISMA_VARIANTS)
def test_migration_sql_is_what_prisma_makes_of_schema_prisma(variant_id: str) -> None:
    variant = VARIANTS[variant_id]
    enums, models = parse(variant.schema_prisma.read_text())
    engine = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        _check(engine, variant, enums, models)
    finally:
        engine.dispose()


def _check(engine: Engine, variant: Variant, enums: dict[str, list[str]],
           models: dict[str, Model]) -> None:
    with prisma_schemas(variant) as (schema, _own), engine.connect() as conn:
        where = {"s": schema}
        found_enums: dict[str, list[str]] = {}
        for name, label in conn.execute(text(
                "SELECT t.typname, e.enumlabel FROM pg_enum e JOIN pg_type t "
                "ON t.oid = e.enumtypid JOIN pg_namespace n ON n.oid = t.typnamespace "
                "WHERE n.nspname = :s ORDER BY t.typname, e.enumsortorder"), where):
            found_enums.setdefault(name, []).append(label)
        assert found_enums == enums
        tables = set(conn.scalars(text(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = :s"), where))
        assert tables == set(models)
        for model in models.values():
            # A default of an enum type names the type with its schema (not on our path).
            columns = [(n, f"USER-DEFINED:{udt}" if t == "USER-DEFINED" else t,
                        nullable == "YES", default and default.replace(f"{schema}.", ""))
                       for n, t, udt, nullable, default in conn.execute(text(
                           "SELECT column_name, data_type, udt_name, is_nullable, "
                           "column_default FROM information_schema.columns WHERE "
                           "table_schema = :s AND table_name = :t ORDER BY ordinal_position"),
                           where | {"t": model.name})]
            assert columns == model.columns, model.name
            precision = set(conn.scalars(text(
                "SELECT datetime_precision FROM information_schema.columns WHERE "
                "table_schema = :s AND table_name = :t AND data_type LIKE 'timestamp%'"),
                where | {"t": model.name}))
            assert precision <= {3}, model.name
            indexes = set(conn.scalars(text(
                "SELECT indexname FROM pg_indexes WHERE schemaname = :s AND tablename = :t"),
                where | {"t": model.name}))
            assert indexes == model.indexes, model.name
            foreign_keys = {
                name: (target, {"c": "CASCADE", "n": "SET NULL", "r": "RESTRICT"}[on_delete])
                for name, target, on_delete, on_update in conn.execute(text(
                    "SELECT c.conname, f.relname, c.confdeltype, c.confupdtype "
                    "FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid "
                    "JOIN pg_class f ON f.oid = c.confrelid JOIN pg_namespace n "
                    "ON n.oid = r.relnamespace WHERE c.contype = 'f' AND n.nspname = :s "
                    "AND r.relname = :t"), where | {"t": model.name})
                if on_update == "c"
            }
            assert foreign_keys == model.foreign_keys, model.name
