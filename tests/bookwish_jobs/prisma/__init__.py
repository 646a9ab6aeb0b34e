"""The BookWish databases the tests run on: the schema variants.

- ``sqlite``: bookwish_jobs' own embedded database, made from ``models.py`` with the
  default names of the open columns.
- ``prisma``: ``design/`` - the models the design implies, with the names of the schema
  from issue 27 (``Inventory.squareItemId``, no processed-at stamp), native enums.
- ``prisma-renamed``: ``renamed/`` - every open column under another name, String
  statuses instead of enums, nullable email and store name, @updatedAt on Order only.

Each Prisma variant is a ``schema.prisma`` and the ``migration.sql`` that ``prisma
migrate dev`` writes for it (by hand: the Prisma CLI cannot fetch its engines on these
machines; ``test_prisma_fixtures.py`` checks the two agree), plus the column settings a
deployment on it would set.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bookwish_jobs.columns import ColumnSettings

HERE = Path(__file__).parent


@dataclass(frozen=True, slots=True)
class Variant:
    id: str
    folder: str | None  # prisma/<folder> with schema.prisma and migration.sql; None: SQLite
    columns: ColumnSettings
    enums: bool  # statuses are native PostgreSQL enums

    @property
    def schema_prisma(self) -> Path:
        assert self.folder is not None, self.id
        return HERE / self.folder / "schema.prisma"

    @property
    def migration_sql(self) -> str:
        assert self.folder is not None, self.id
        return (HERE / self.folder / "migration.sql").read_text()

    @property
    def env(self) -> dict[str, str]:
        """The column settings as a deployment sets them (environment variables)."""
        from bookwish_jobs.columns import OPEN_COLUMNS

        return {c.env: str(getattr(self.columns, c.key)) for c in OPEN_COLUMNS
                if self.columns.is_set(c)}


SQLITE = Variant("sqlite", None, ColumnSettings(), enums=False)
DESIGN = Variant("prisma", "design", ColumnSettings(square_item_id="squareItemId"), enums=True)
RENAMED = Variant("prisma-renamed", "renamed", ColumnSettings(
    square_item_id="squareVariationId", square_location_id="squareLocation",
    store_name="displayName", order_item_title="bookTitle", digest_processed_at="digestedAt",
    digest_created_at="queuedAt", updated_at="modifiedAt",
), enums=False)
VARIANTS: dict[str, Variant] = {v.id: v for v in (SQLITE, DESIGN, RENAMED)}
PRISMA_VARIANTS = [DESIGN.id, RENAMED.id]
