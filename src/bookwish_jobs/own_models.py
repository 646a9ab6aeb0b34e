"""bookwish_jobs' own bookkeeping tables, outside the Node app's Prisma tables.

On PostgreSQL they live in their own schema (``BOOKWISH_JOBS_SCHEMA``, default
``bookwish_jobs``), created by ``--create-tables``; Prisma's tables and migration
history are never touched, and ``prisma migrate`` ignores a schema it does not
manage. On SQLite (no schemas) they are plain tables of the same file. The models name
the schema :data:`OWN_SCHEMA`; ``db.py`` maps it to the real one per database.

- ``notification_delivery``: one row per notification, channel and target that got it,
  so a retry never sends to the same device or address again.
- ``digest_claim``: which digest run owns which unprocessed digest entry, and whether
  it started sending it (see ``jobs/order_digest.py``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, MetaData, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bookwish_jobs.models import new_id, utcnow

OWN_SCHEMA = "bookwish_jobs"


class OwnBase(DeclarativeBase):
    metadata = MetaData(schema=OWN_SCHEMA)


class NotificationDelivery(OwnBase):
    __tablename__ = "notification_delivery"
    __table_args__ = (UniqueConstraint("notification_id", "channel", "target"),)

    id: Mapped[str] = mapped_column(String, primary_key=True, default=new_id)
    # Not a foreign key: the push token may be deleted later, the record stays.
    notification_id: Mapped[str] = mapped_column(String, index=True)
    channel: Mapped[str] = mapped_column(String)  # "push" | "email"
    target: Mapped[str] = mapped_column(String)  # push token or email address
    provider_id: Mapped[str | None] = mapped_column(String, nullable=True)
    delivered_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class DigestClaim(OwnBase):
    """A digest run's claim on one entry of ``OrderDigestQueue`` or ``BookwishOpsDigestQueue``.

    The primary key makes a claim exclusive: two runs inserting a claim for the same
    entry cannot both succeed.
    """

    __tablename__ = "digest_claim"

    entry_table: Mapped[str] = mapped_column(String, primary_key=True)
    entry_id: Mapped[str] = mapped_column(String, primary_key=True)
    claim_id: Mapped[str] = mapped_column(String, index=True)
    claimed_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    send_started_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
