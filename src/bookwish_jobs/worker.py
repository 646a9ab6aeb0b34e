"""``python -m bookwish_jobs.worker``: run BookWish's queues.

With nothing configured it runs on embedded defaults: a private redis-server (data in
``./var/redis``), SQLite (``./var/bookwish.db``) and the file outbox (``./var/outbox``).
``--demo`` seeds sample data, queues one job of each kind, prints a summary and exits
0 once all four have completed. SIGTERM or SIGINT stops it gracefully: no new jobs,
active ones get ``SHUTDOWN_GRACE`` seconds, the rest go back to the queue.

Before anything else the database is prepared or checked (``schema.py``) for the
enabled queues (``BOOKWISH_QUEUES``): on SQLite missing tables are created; on
PostgreSQL (the Node app's database) nothing is created, and a table or column an
enabled queue uses that is missing stops the worker with exit code 2, naming the queue
and, for an open column, its setting. ``--create-tables`` creates bookwish_jobs' own
tables there, then exits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import TypeVar
from urllib.parse import urlsplit

import redis
from sqlalchemy.exc import SQLAlchemyError

from bookwish_jobs import logs, schema
from bookwish_jobs.config import ConfigError, Settings, add_arguments, load_settings
from bookwish_jobs.context import build_context
from bookwish_jobs.db import Database
from bookwish_jobs.demo import demo_square, run_demo
from bookwish_jobs.logs import log_event
from bookwish_jobs.producers import Producers
from bookwish_jobs.service import Service
from pyqueue import shutdown_signals
from pyqueue.embedded import RedisServer
from pyqueue.loops import loop_factory, run

_T = TypeVar("_T")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bookwish_jobs.worker",
                                     description=__doc__.split("\n\n")[0] if __doc__ else None)
    add_arguments(parser)
    parser.add_argument("--demo", action="store_true",
                        help="seed sample data, run one job of each kind, then exit")
    parser.add_argument("--no-schedule", action="store_true",
                        help="do not declare the repeatable jobs at start-up")
    parser.add_argument("--create-tables", action="store_true",
                        help="create bookwish_jobs' own schema and tables in DATABASE_URL "
                             "where missing (never the Node app's tables), then exit")
    return parser.parse_args(argv)


async def serve(settings: Settings, redis_url: str, *, demo: bool = False,
                schedule: bool = True) -> int:
    """Run until SIGTERM/SIGINT (or, with ``demo``, until the demo jobs are done).

    The database must be ready (:func:`bookwish_jobs.schema.prepare`).
    """
    ctx = build_context(settings)
    producers = Producers(redis_url, ctx.db)
    service = Service(ctx, redis_url)
    code = 0
    # pyqueue worker's signal handling: the first signal closes gracefully, a second exits.
    async with shutdown_signals() as stop:
        try:
            code = await _run(service, producers, ctx.db, stop, demo=demo, schedule=schedule)
        finally:
            await service.close()
            await producers.close()
            ctx.db.dispose()
    return code


async def _run(service: Service, producers: Producers, db: Database, stop: asyncio.Event, *,
               demo: bool, schedule: bool) -> int:
    code = 0
    log_event("worker.columns", columns=await asyncio.to_thread(schema.describe_layout, db))
    if schedule:
        await producers.schedule(service.ctx.settings.queues)
    await service.start()
    if demo:
        demo_task = asyncio.create_task(run_demo(producers, db, service))
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({demo_task, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if demo_task.done():
            code = _print_summary(demo_task.result())
        else:
            demo_task.cancel()
            code = 1
    else:
        await stop.wait()
    return code


def _print_summary(results: dict[str, dict[str, object]]) -> int:
    print("bookwish_jobs demo:")
    for queue, outcome in results.items():
        state = "completed" if outcome.get("completed") else "FAILED"
        detail = outcome.get("result") if outcome.get("completed") else outcome.get("error")
        print(f"  {queue:<20} {state:<10} {json.dumps(detail, default=str)}")
    ok = all(o.get("completed") for o in results.values())
    print("all four jobs completed" if ok else "some jobs did not complete")
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    logs.configure()
    args = parse_args(argv)
    try:
        settings = load_settings(args)
    except ConfigError as exc:
        print(f"bookwish_jobs: {exc}", file=sys.stderr)
        return 2
    try:
        loop_factory()  # $PYQUEUE_LOOP, checked before anything starts
    except (ValueError, RuntimeError) as exc:
        print(f"bookwish_jobs: {exc}", file=sys.stderr)
        return 2
    if settings.digest_tz:
        _use_time_zone(settings.digest_tz)
    try:
        if args.create_tables:
            return _create_tables(settings)
        _with_database(settings, lambda db: schema.prepare(db, settings.queues))
    except schema.SchemaError as exc:
        print(f"bookwish_jobs: {exc}", file=sys.stderr)
        return 2
    except SQLAlchemyError as exc:
        print(f"bookwish_jobs: cannot reach the database at DATABASE_URL "
              f"({_where(settings.database_url)}): {_first_line(exc)}", file=sys.stderr)
        return 2
    fake_square = None
    if args.demo:
        updates: dict[str, object] = {}
        if not (args.square_base_url or os.environ.get("SQUARE_BASE_URL")):
            fake_square = demo_square().start()
            updates["square_base_url"] = fake_square.url
        if settings.ops_digest_email is None:
            updates["ops_digest_email"] = "ops@bookwish.local"
        settings = settings.model_copy(update=updates)
    redis_server = None
    redis_url = settings.redis_url
    if redis_url is not None and (problem := _redis_problem(redis_url)) is not None:
        print(f"bookwish_jobs: cannot reach Redis at REDIS_URL ({_where(redis_url)}): "
              f"{problem}", file=sys.stderr)
        return 2
    if redis_url is None:
        redis_server = RedisServer(data_dir=_mkdir(settings.var_dir / "redis"), appendonly=True)
        redis_server.start()
        redis_url = redis_server.url
        log_event("redis.embedded", url=redis_url, data_dir=str(redis_server.data_dir))
    try:
        # uvloop when it is installed, as `pyqueue worker` runs ($PYQUEUE_LOOP to choose).
        return run(serve(settings, redis_url, demo=args.demo,
                         schedule=not args.no_schedule))
    finally:
        if redis_server is not None:
            redis_server.close()
        if fake_square is not None:
            fake_square.close()


def _with_database(settings: Settings, action: Callable[[Database], _T]) -> _T:
    db = Database(settings.database_url, settings.own_schema, settings.columns)
    try:
        return action(db)
    finally:
        db.dispose()


def _create_tables(settings: Settings) -> int:
    created = _with_database(settings, lambda db: schema.create(db, settings.queues))
    if created:
        print("bookwish_jobs: created " + ", ".join(created))
    else:
        print("bookwish_jobs: nothing to create, every table and column exists")
    return 0


def _where(url: str) -> str:
    """``host:port/db`` of a URL, never its user or password."""
    parts = urlsplit(url)
    if parts.scheme.startswith("sqlite"):
        return url
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _redis_problem(url: str) -> str | None:
    """Why Redis at ``url`` cannot be used (None when it answers PING)."""
    client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        return _first_line(exc)
    finally:
        client.close()
    return None


def _use_time_zone(tz: str) -> None:
    # Cron schedules without tz fire in the process's local zone (as in Node), which
    # pyqueue reads from TZ.
    os.environ["TZ"] = tz
    time.tzset()
    log_event("worker.time_zone", tz=tz)


def _mkdir(path: os.PathLike[str] | str) -> str:
    # Absolute: redis-server changes into --dir before opening its log file.
    os.makedirs(path, exist_ok=True)
    return os.path.abspath(path)


if __name__ == "__main__":
    sys.exit(main())
