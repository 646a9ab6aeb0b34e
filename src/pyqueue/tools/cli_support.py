"""The CLI's plumbing: common options, one Redis client, exit codes, errors as one line.

Exit codes (also in ``pyqueue --help`` and docs/operating/cli.md):

==  ========================================================
0   success
1   the operation was refused or failed (a locked job, a declined prompt)
2   bad arguments
3   unknown queue or job
4   Redis unreachable, or it refused the credentials
130 interrupted (Ctrl-C) outside ``watch``
==  ========================================================
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn, ParamSpec, TypeVar
from urllib.parse import urlsplit

import click
import redis.asyncio as aioredis
from redis.exceptions import (
    AuthenticationError,
    AuthorizationError,
    RedisError,
    ResponseError,
)
from redis.exceptions import (
    ConnectionError as RedisConnectionError,
)
from redis.exceptions import (
    TimeoutError as RedisTimeoutError,
)
from rich.console import Console

from pyqueue import (
    InvalidOptionsError,
    Job,
    JobNotFound,
    JobStateError,
    PyQueueError,
    Queue,
    monitoring,
)
from pyqueue.monitoring import detect_format
from pyqueue.tools import deployments, overview

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_REDIS = 4
EXIT_INTERRUPTED = 130
EXIT_CODES_HELP = (
    "Exit codes: 0 ok, 1 refused or failed, 2 bad arguments, 3 unknown queue or job, "
    "4 Redis unreachable or credentials refused, 130 interrupted."
)
DEFAULT_URL = "redis://127.0.0.1:6379/0"

P = ParamSpec("P")
T = TypeVar("T")

_SCHEMES = ("redis", "rediss", "unix", "redis+sentinel", "rediss+sentinel", "redis+cluster",
            "rediss+cluster")


class CliError(Exception):
    """An error the CLI reports as one line on stderr, with an exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


def redact(url: str) -> str:
    """The URL with its password hidden, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)).geturl()


@dataclass(frozen=True, slots=True)
class Settings:
    """The options every command takes."""

    redis_url: str
    prefix: str
    json: bool

    def client(self) -> aioredis.Redis:
        parts = urlsplit(self.redis_url)
        if parts.scheme not in _SCHEMES:
            raise CliError(
                f"--redis-url: scheme must be one of {', '.join(_SCHEMES)}, in "
                f"{redact(self.redis_url)!r}",
                EXIT_USAGE,
            )
        try:
            # Short connect timeout: an unreachable host should fail in seconds, not minutes.
            return deployments.open_client(self.redis_url, connect_timeout=5, read_timeout=30)
        except (ValueError, InvalidOptionsError) as exc:
            raise CliError(f"--redis-url: {exc}", EXIT_USAGE) from None

    def emit_json(self, value: Any) -> None:
        click.echo(json.dumps(value, indent=2, default=str, ensure_ascii=False))


def common(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--redis-url``, ``--prefix`` and ``--json`` to a command; pass them as ``settings``."""

    @click.option("--redis-url", envvar="REDIS_URL", default=DEFAULT_URL, show_default=True,
                  help="Redis server URL (env REDIS_URL).")
    @click.option("--prefix", envvar="PYQUEUE_PREFIX", default="bull", show_default=True,
                  help="Bull key prefix (env PYQUEUE_PREFIX).")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
    @functools.wraps(func)
    def wrapper(redis_url: str, prefix: str, as_json: bool, **kwargs: Any) -> Any:
        if not prefix or "@" in prefix:
            raise CliError(f"--prefix: must be non-empty and without '@', got {prefix!r}",
                           EXIT_USAGE)
        return func(Settings(redis_url, prefix, as_json), **kwargs)

    return wrapper


def run(settings: Settings, body: Callable[[aioredis.Redis], Awaitable[T]]) -> T:
    """Run ``body(client)`` on a fresh client; turn Redis failures into :class:`CliError`."""

    async def main() -> T:
        client = settings.client()
        try:
            await client.ping()
            return await body(client)
        finally:
            await client.aclose()

    where = redact(settings.redis_url)
    try:
        return asyncio.run(main())
    except (AuthenticationError, AuthorizationError) as exc:
        raise CliError(f"Redis at {where} refused the credentials: {exc}", EXIT_REDIS) from None
    except ResponseError as exc:
        text = str(exc)
        if text.startswith(("NOAUTH", "WRONGPASS", "NOPERM")):
            raise CliError(f"Redis at {where} refused the credentials: {text}",
                           EXIT_REDIS) from None
        raise CliError(f"Redis error: {text}", EXIT_FAILED) from None
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        raise CliError(f"cannot reach Redis at {where}: {exc}", EXIT_REDIS) from None
    except RedisError as exc:
        raise CliError(f"Redis error: {exc}", EXIT_FAILED) from None
    except JobNotFound as exc:
        raise CliError(str(exc), EXIT_NOT_FOUND) from None
    except InvalidOptionsError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    except (JobStateError, PyQueueError) as exc:
        raise CliError(str(exc), EXIT_FAILED) from None


async def existing_queue(client: aioredis.Redis, settings: Settings, name: str) -> Queue[Any]:
    """The queue called ``name``, or exit 3 when nothing of it is in Redis."""
    keys = monitoring.queue_keys(settings.prefix, name)
    if not await overview.queue_exists(client, keys):
        raise CliError(
            f"unknown queue {name!r} under prefix {settings.prefix!r} (no {keys.base}* keys)",
            EXIT_NOT_FOUND,
        )
    try:
        # Opened in the format its keys show, so every command speaks it (None: neither
        # shows yet, and the queue decides on first use as any protocol=None queue).
        found = await detect_format(client, settings.prefix, name)
        return overview.open_queue(client, settings.prefix, name, found)
    except InvalidOptionsError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None


async def existing_job(queue: Queue[Any], job_id: str) -> Job[Any]:
    """The job ``job_id``, or exit 3: no such job, or the id names another key of the queue."""
    found = await monitoring.get_job(queue, job_id)
    if found is None:
        raise CliError(not_a_job(queue.name, job_id), EXIT_NOT_FOUND)
    return found


def not_a_job(queue: str, job_id: str) -> str:
    """Why ``job_id`` gave no job: unknown, or it spells one of the queue's own keys."""
    if monitoring.names_queue_key(job_id):
        return (f"job {job_id!r} not found in queue {queue!r} ({job_id!r} names a key of the "
                "queue itself, not a job)")
    return f"job {job_id!r} not found in queue {queue!r}"


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    raise CliError(message, code)


def console() -> Console:
    """The console tables print on: the terminal's width, or 200 columns when piped.

    Piped output is not cut to 80 columns: a table narrower than its content
    would truncate ids and names, which scripts and logs need whole.
    """
    return Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)


def format_duration(ms: int | None) -> str:
    """A duration in ms, short: ``850ms``, ``12.3s``, ``4m05s``; ``-`` when unknown."""
    if ms is None or ms < 0:
        return "-"
    if ms < 1000:
        return f"{ms}ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f}s"
    return format_age(ms / 1000)


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def parse_duration_ms(text: str, option: str) -> int:
    """``500ms``, ``30s``, ``15m``, ``2h``, ``7d``, ``1w`` -> milliseconds."""
    found = _DURATION.match(text.strip().lower())
    if found is None:
        fail(f"{option}: give a duration with a unit like 30s, 15m, 2h or 7d, got {text!r}",
             EXIT_USAGE)
    return int(float(found.group(1)) * _UNIT_MS[found.group(2)])


def format_ms(ms: int | None) -> str:
    """A Bull millisecond timestamp as local ISO time, ``-`` when unset."""
    if not ms:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def format_age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds // 60:.0f}m{seconds % 60:02.0f}s"
    if seconds < 86400:
        return f"{seconds // 3600:.0f}h{seconds % 3600 // 60:02.0f}m"
    return f"{seconds // 86400:.0f}d{seconds % 86400 // 3600:02.0f}h"


def report(exc: CliError) -> NoReturn:
    click.echo(f"pyqueue: error: {exc}", err=True)
    sys.exit(exc.code)
