"""Settings: environment variables, overridden by command-line flags, validated by pydantic.

=====================  =====================  ======================================
variable               flag                   default
=====================  =====================  ======================================
REDIS_URL              --redis-url            a private local redis-server
DATABASE_URL           --database-url         sqlite:///./var/bookwish.db
SMTP_URL               --smtp-url             .eml files in ./var/outbox
EXPO_PUSH_URL          --expo-push-url        pushes are only logged
EXPO_ACCESS_TOKEN      (env only: a secret)   none
SQUARE_BASE_URL        --square-base-url      https://connect.squareup.com
DIGEST_TZ              --digest-tz            the process's TZ (see below)
OPS_DIGEST_EMAIL       --ops-digest-email     none (no ops digest is sent)
ALERT_EMAIL            --alert-email          OPS_DIGEST_EMAIL
MAIL_FROM              --mail-from            BookWish <no-reply@bookwish.local>
BOOKWISH_QUEUES        --queues               all four ("notifications=5,square-sync=1")
SHUTDOWN_GRACE         --shutdown-grace       25 (seconds)
METRICS_INTERVAL       --metrics-interval     60 (seconds)
FAILED_RETENTION_HOURS --failed-retention-hours  none: failed jobs are kept, as Bull's
                                              removeOnFail: false keeps them
METRICS_PORT           --metrics-port         none (no /metrics, /healthz, /readyz)
METRICS_HOST           --metrics-host         127.0.0.1
BOOKWISH_VAR_DIR       (env only)             ./var (embedded Redis, SQLite, outbox)
BOOKWISH_JOBS_SCHEMA   --own-schema           bookwish_jobs (PostgreSQL schema of our tables)
*_COLUMN               --*-column             the open columns' names (``columns.py``)
=====================  =====================  ======================================

``FAILED_RETENTION_HOURS``: when set, failed jobs older than that are removed hourly
(``queue.clean``) from the enabled queues, the Node app's failed jobs included, and the
worker says so at start-up (``worker.failed_retention``).

``SMTP_URL`` forms: ``smtp://user:pass@host:587`` (STARTTLS when offered;
``?starttls=require`` or ``?starttls=off``), ``smtps://user:pass@host:465``
(implicit TLS), ``file:///path/to/outbox``. Add ``?verify=off`` for a
self-signed certificate.

``DIGEST_TZ``: the schedules carry no ``tz`` (the Node app's don't), so their cron
fires in the local zone of the process that schedules each next instance. Setting
``DIGEST_TZ`` sets this process's ``TZ`` to it at start-up; give the Node process the
same ``TZ`` so both compute the same 06:00.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bookwish_jobs import names
from bookwish_jobs.columns import OPEN_COLUMNS, ColumnSettings

QUEUE_NAMES = names.QUEUE_NAMES


class ConfigError(ValueError):
    """A setting is invalid; the message names the variable or flag and the bad value."""


class SmtpSettings(BaseModel):
    """A parsed ``SMTP_URL`` (or the file outbox when ``outbox`` is set)."""

    model_config = ConfigDict(frozen=True)

    host: str = ""
    port: int = 0
    username: str | None = None
    password: str | None = Field(default=None, repr=False)
    tls: Literal["none", "starttls", "starttls-required", "implicit"] = "starttls"
    verify: bool = True
    outbox: Path | None = None

    @classmethod
    def parse(cls, url: str | None, default_outbox: Path) -> SmtpSettings:
        if not url:
            return cls(outbox=default_outbox)
        parts = urlsplit(url)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if parts.scheme == "file":
            return cls(outbox=Path(unquote(parts.path)))
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError(f"scheme must be smtp, smtps or file, got {parts.scheme!r}")
        if not parts.hostname:
            raise ValueError("a host is required")
        try:
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"bad port: {exc}") from None
        starttls = query.get("starttls", "auto")
        if starttls not in ("auto", "require", "off"):
            raise ValueError(f"starttls must be auto, require or off, got {starttls!r}")
        tls: Literal["none", "starttls", "starttls-required", "implicit"]
        if parts.scheme == "smtps":
            tls = "implicit"
        else:
            tls = {"auto": "starttls", "require": "starttls-required", "off": "none"}[
                starttls
            ]  # type: ignore[assignment]
        return cls(
            host=parts.hostname,
            port=port or (465 if parts.scheme == "smtps" else 25),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            tls=tls,
            verify=query.get("verify", "on") not in ("off", "0", "false"),
        )


class Settings(BaseModel):
    """Everything the worker needs, validated. Build it with :func:`load_settings`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    redis_url: str | None = None
    database_url: str = "sqlite:///./var/bookwish.db"
    smtp: SmtpSettings = SmtpSettings(outbox=Path("var/outbox"))
    expo_push_url: str | None = None
    expo_access_token: str | None = Field(default=None, repr=False)
    square_base_url: str = "https://connect.squareup.com"
    square_version: str = "2024-10-17"
    digest_tz: str | None = None
    ops_digest_email: str | None = None
    alert_email: str | None = None
    mail_from: str = "BookWish <no-reply@bookwish.local>"
    queues: dict[str, int] = Field(default_factory=lambda: dict(names.DEFAULT_CONCURRENCY))
    shutdown_grace: float = Field(default=25.0, ge=0)
    metrics_interval: float = Field(default=60.0, gt=0)
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    var_dir: Path = Path("var")
    own_schema: str = Field(default="bookwish_jobs", min_length=1, max_length=63)
    columns: ColumnSettings = ColumnSettings()
    # None: failed jobs are kept for ever, as removeOnFail: false keeps them. Set: those
    # older than this many hours are removed by an hourly queue.clean.
    failed_retention_hours: float | None = Field(default=None, ge=0)
    clean_interval: float = Field(default=3600.0, gt=0)

    @field_validator("redis_url")
    @classmethod
    def _redis(cls, value: str | None) -> str | None:
        if value and urlsplit(value).scheme not in ("redis", "rediss", "unix"):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value or None

    @field_validator("database_url")
    @classmethod
    def _database(cls, value: str) -> str:
        scheme = urlsplit(value).scheme.split("+")[0]
        if scheme not in ("sqlite", "postgresql", "postgres"):
            raise ValueError("must be a sqlite:// or postgresql:// URL")
        return value

    @field_validator("expo_push_url", "square_base_url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value and urlsplit(value).scheme not in ("http", "https"):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/") if value else None

    @field_validator("digest_tz")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        if not value:
            return None
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("unknown IANA time zone") from None
        return value

    @field_validator("ops_digest_email", "alert_email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value and "@" not in value:
            raise ValueError("not an email address")
        return value or None

    @field_validator("queues")
    @classmethod
    def _queues(cls, value: dict[str, int]) -> dict[str, int]:
        for name, concurrency in value.items():
            if name not in QUEUE_NAMES:
                raise ValueError(f"unknown queue {name!r} (known: {', '.join(QUEUE_NAMES)})")
            if concurrency < 1:
                raise ValueError(f"concurrency of {name!r} must be >= 1, got {concurrency}")
        if not value:
            raise ValueError("at least one queue is required")
        return value

    @property
    def alert_recipient(self) -> str | None:
        return self.alert_email or self.ops_digest_email


def parse_queues(text: str) -> dict[str, int]:
    """``"notifications=5,square-sync"`` → ``{"notifications": 5, "square-sync": 1}``."""
    out: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, number = item.partition("=")
        try:
            out[name.strip()] = int(number) if number else 1
        except ValueError:
            raise ValueError(f"concurrency of {name!r} is not an integer: {number!r}") from None
    return out


# (field, environment variable, flag)
_SIMPLE = (
    ("redis_url", "REDIS_URL", "--redis-url"),
    ("database_url", "DATABASE_URL", "--database-url"),
    ("expo_push_url", "EXPO_PUSH_URL", "--expo-push-url"),
    ("expo_access_token", "EXPO_ACCESS_TOKEN", None),
    ("square_base_url", "SQUARE_BASE_URL", "--square-base-url"),
    ("digest_tz", "DIGEST_TZ", "--digest-tz"),
    ("ops_digest_email", "OPS_DIGEST_EMAIL", "--ops-digest-email"),
    ("own_schema", "BOOKWISH_JOBS_SCHEMA", "--own-schema"),
    ("alert_email", "ALERT_EMAIL", "--alert-email"),
    ("mail_from", "MAIL_FROM", "--mail-from"),
    ("shutdown_grace", "SHUTDOWN_GRACE", "--shutdown-grace"),
    ("metrics_interval", "METRICS_INTERVAL", "--metrics-interval"),
    ("failed_retention_hours", "FAILED_RETENTION_HOURS", "--failed-retention-hours"),
    ("metrics_port", "METRICS_PORT", "--metrics-port"),
    ("metrics_host", "METRICS_HOST", "--metrics-host"),
)
_NAMES = {field: env for field, env, _ in _SIMPLE} | {
    "smtp": "SMTP_URL/--smtp-url", "queues": "BOOKWISH_QUEUES/--queues",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one flag per setting (each overrides its environment variable)."""
    for field, env, flag in _SIMPLE:
        if flag is not None:
            parser.add_argument(flag, dest=field, default=None, help=f"overrides ${env}")
    for column in OPEN_COLUMNS:
        parser.add_argument(column.flag, dest=f"column_{column.key}", default=None,
                            metavar="NAME", help=f"overrides ${column.env}: the column holding "
                                 f"{column.meaning} (default {column.default})")
    parser.add_argument("--smtp-url", dest="smtp_url", default=None, help="overrides $SMTP_URL")
    parser.add_argument("--queues", dest="queues", default=None,
                        help='queues and concurrency, e.g. "notifications=5,square-sync=1"')


def load_settings(
    args: argparse.Namespace | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Settings from ``env`` (default ``os.environ``) with ``args`` flags on top.

    Raises:
        ConfigError: naming each bad variable or flag and its value.
    """
    env = os.environ if env is None else env
    flags = vars(args) if args is not None else {}
    raw: dict[str, object] = {}
    sources: dict[str, str] = {}
    for field, name, flag in _SIMPLE:
        from_flag = flags.get(field)
        value = from_flag or env.get(name)
        if value not in (None, ""):
            raw[field] = value
            sources[field] = str(flag) if from_flag else name
    errors: list[str] = []
    var_dir = Path(env.get("BOOKWISH_VAR_DIR", "var"))
    raw["var_dir"] = var_dir
    if "database_url" not in raw:
        raw["database_url"] = f"sqlite:///{var_dir / 'bookwish.db'}"
    try:
        raw["smtp"] = SmtpSettings.parse(
            flags.get("smtp_url") or env.get("SMTP_URL"), var_dir / "outbox"
        )
    except ValueError as exc:
        errors.append(f"SMTP_URL/--smtp-url: {exc}")
    column_names: dict[str, str] = {}
    for column in OPEN_COLUMNS:
        value = flags.get(f"column_{column.key}") or env.get(column.env)
        if value:
            column_names[column.key] = str(value)
            sources[column.key] = column.env
    try:
        raw["columns"] = ColumnSettings.model_validate(column_names)
    except ValidationError as exc:
        errors.extend(_describe(exc, sources))
    queues = flags.get("queues") or env.get("BOOKWISH_QUEUES")
    if queues:
        try:
            raw["queues"] = parse_queues(str(queues))
        except ValueError as exc:
            errors.append(f"BOOKWISH_QUEUES/--queues: {exc}")
    if not errors:
        try:
            return Settings.model_validate(raw)
        except ValidationError as exc:
            errors.extend(_describe(exc, sources))
    raise ConfigError("invalid configuration:\n  " + "\n  ".join(errors))


def _describe(exc: ValidationError, sources: Mapping[str, str]) -> Sequence[str]:
    out = []
    for err in exc.errors():
        field = str(err["loc"][0]) if err["loc"] else "?"
        name = sources.get(field) or _NAMES.get(field, field)
        message = err["msg"].removeprefix("Value error, ")
        out.append(f"{name}: {message} (got {err.get('input')!r})")
    return out
