"""What a processor gets besides its job: settings, database and the three services."""

from __future__ import annotations

from dataclasses import dataclass

from bookwish_jobs.config import Settings
from bookwish_jobs.db import Database
from bookwish_jobs.services.email import Mailer, make_mailer
from bookwish_jobs.services.push import ExpoPushClient, LogPushService, PushService
from bookwish_jobs.services.square import SquareClient


@dataclass
class AppContext:
    settings: Settings
    db: Database
    mailer: Mailer
    push: PushService
    square: SquareClient


def build_context(settings: Settings) -> AppContext:
    """The real services for ``settings`` (file outbox / log-only push when unset)."""
    push: PushService = (
        ExpoPushClient(settings.expo_push_url, settings.expo_access_token)
        if settings.expo_push_url else LogPushService()
    )
    return AppContext(
        settings=settings,
        db=Database(settings.database_url, settings.own_schema, settings.columns),
        mailer=make_mailer(settings.smtp),
        push=push,
        square=SquareClient(settings.square_base_url, version=settings.square_version),
    )
