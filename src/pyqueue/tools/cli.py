"""The ``pyqueue`` command: inspect and manage Bull queues (pyqueue's and Node's alike).

``pip install 'pyqueue-bull[cli]'``. Every command takes ``--redis-url`` (or ``REDIS_URL``),
``--prefix`` and ``--json``; exit codes are listed in :mod:`pyqueue.tools.cli_support`.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click
import redis.asyncio as aioredis
from rich.console import Console
from rich.table import Table

from pyqueue import Job, JobStateError, loops
from pyqueue.tools import cli_migrate, overview
from pyqueue.tools.cli_support import (
    EXIT_CODES_HELP,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_NOT_FOUND,
    EXIT_USAGE,
    CliError,
    Settings,
    common,
    existing_queue,
    fail,
    format_age,
    format_ms,
    parse_duration_ms,
    report,
    run,
)
from pyqueue.tools.extras import EXIT_MISSING_EXTRA, MissingExtra, require
from pyqueue.tools.search import SEARCH_STATES, search_jobs

JOB_STATES = ("waiting", "active", "delayed", "failed", "completed", "paused")
CLEAN_STATES = {"completed": "completed", "failed": "failed", "delayed": "delayed",
                "waiting": "wait", "active": "active", "paused": "paused"}


def _console() -> Console:
    # Piped output is not cut to 80 columns: a table narrower than its content
    # would truncate ids and names, which scripts and logs need whole.
    return Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)


@click.group(epilog=EXIT_CODES_HELP, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Inspect and manage Bull queues in Redis (written by pyqueue or Node Bull)."""


# --- reading ------------------------------------------------------------------


@cli.command(epilog=EXIT_CODES_HELP)
@common
def queues(settings: Settings) -> None:
    """Every queue under the prefix: counts per state, paused flag, workers."""

    async def body(client: aioredis.Redis) -> list[overview.QueueStats]:
        names = await overview.discover_queues(client, settings.prefix)
        return await overview.queue_stats(client, settings.prefix, names)

    stats = run(settings, body)
    if settings.json:
        settings.emit_json([s.to_json() for s in stats])
        return
    if not stats:
        click.echo(f"no queues under prefix {settings.prefix!r}")
        return
    table = Table("queue", *overview.STATES, "paused?", "workers", "oldest waiting")
    for s in stats:
        name = s.name if s.error is None else f"{s.name} (unreadable: {s.error})"
        table.add_row(name, *(str(s.counts[k]) for k in overview.STATES),
                      "yes" if s.paused else "no", str(s.workers),
                      format_age(s.oldest_waiting_age))
    _console().print(table)


def _job_row(job: Job[Any], state: str) -> list[str]:
    reason = (job.failed_reason or "").splitlines()[0][:60] if job.failed_reason else ""
    return [job.id, job.name, state, format_ms(job.timestamp), str(job.attempts_made), reason]


@cli.command(epilog=EXIT_CODES_HELP)
@common
@click.argument("queue")
@click.option("--state", type=click.Choice(JOB_STATES), default="waiting", show_default=True)
@click.option("--page", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--page-size", type=click.IntRange(1, 1000), default=20, show_default=True)
def jobs(settings: Settings, queue: str, state: str, page: int, page_size: int) -> None:
    """A page of QUEUE's jobs in one state (newest first)."""

    async def body(client: aioredis.Redis) -> tuple[list[Job[Any]], int]:
        q = await existing_queue(client, settings, queue)
        start = (page - 1) * page_size
        found = await q.get_jobs(state, start, start + page_size - 1)  # type: ignore[arg-type]
        total = (await q.get_job_counts(state))[state]  # type: ignore[arg-type]
        return found, total

    found, total = run(settings, body)
    pages = max(1, -(-total // page_size))
    if settings.json:
        settings.emit_json({"state": state, "page": page, "pages": pages, "total": total,
                            "jobs": [j.to_json() for j in found]})
        return
    table = Table("id", "name", "state", "created", "attempts", "failed reason",
                  title=f"{queue}: {state} jobs, page {page} of {pages} ({total} in all)")
    for job in found:
        table.add_row(*_job_row(job, state))
    _console().print(table)


@cli.command(epilog=EXIT_CODES_HELP)
@common
@click.argument("queue")
@click.argument("job_id")
def job(settings: Settings, queue: str, job_id: str) -> None:
    """Everything about one job: data, opts, progress, logs, attempts, errors, result."""

    async def body(client: aioredis.Redis) -> dict[str, Any]:
        q = await existing_queue(client, settings, queue)
        found = await q.get_job(job_id)
        if found is None:
            fail(f"job {job_id!r} not found in queue {queue!r}", EXIT_NOT_FOUND)
        logs, _ = await q.get_job_logs(job_id)
        return {**found.to_json(), "state": await q.get_job_state(job_id), "logs": logs}

    info = run(settings, body)
    if settings.json:
        settings.emit_json(info)
        return
    console = _console()
    console.print(f"[bold]job {info['id']}[/bold] of {queue}: {info['state']}")
    rows = [("name", info["name"]), ("created", format_ms(info["timestamp"])),
            ("processed", format_ms(info["processedOn"])),
            ("finished", format_ms(info["finishedOn"])), ("delay", f"{info['delay']} ms"),
            ("attempts made", str(info["attemptsMade"])),
            ("progress", json.dumps(info["progress"])),
            ("failed reason", info["failedReason"] or "-"),
            ("return value", json.dumps(info["returnvalue"], ensure_ascii=False))]
    for label, value in rows:
        console.print(f"  {label:14} {value}", markup=False)
    console.print("  data", markup=False)
    console.print(_indent(json.dumps(info["data"], indent=2, ensure_ascii=False)), markup=False)
    console.print("  opts", markup=False)
    console.print(_indent(json.dumps(info["opts"], indent=2, ensure_ascii=False)), markup=False)
    if info["stacktrace"]:
        console.print("  stack traces", markup=False)
        for trace in info["stacktrace"]:
            console.print(_indent(str(trace)), markup=False)
    console.print(f"  logs ({len(info['logs'])})", markup=False)
    for line in info["logs"]:
        console.print(_indent(line), markup=False)


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


# --- managing -------------------------------------------------------------------


@cli.command(epilog=EXIT_CODES_HELP)
@common
@click.argument("queue")
@click.argument("job_ids", nargs=-1)
@click.option("--all-failed", is_flag=True, help="Retry every failed job of the queue.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def retry(settings: Settings, queue: str, job_ids: tuple[str, ...], all_failed: bool,
          yes: bool) -> None:
    """Move failed jobs back to waiting: the JOB_IDS given, or --all-failed."""
    if bool(job_ids) == all_failed:
        fail("retry: give job ids or --all-failed (one of them)", EXIT_USAGE)
    if all_failed:
        count = run(settings, lambda c: _failed_count(c, settings, queue))
        if count == 0:
            _done(settings, {"retried": 0}, f"no failed jobs in {queue}")
            return
        if not yes and not click.confirm(f"Retry {count} failed jobs of {queue}?", err=True):
            fail("aborted: nothing retried", EXIT_FAILED)

        async def retry_all(client: aioredis.Redis) -> None:
            await (await existing_queue(client, settings, queue)).retry_jobs()

        run(settings, retry_all)
        _done(settings, {"retried": count}, f"retried {count} failed jobs of {queue}")
        return
    _each_job(settings, queue, job_ids, "retry", "retried")


async def _failed_count(client: aioredis.Redis, settings: Settings, queue: str) -> int:
    q = await existing_queue(client, settings, queue)
    return await q.get_failed_count()


@cli.command(epilog=EXIT_CODES_HELP)
@common
@click.argument("queue")
@click.argument("job_ids", nargs=-1, required=True)
def remove(settings: Settings, queue: str, job_ids: tuple[str, ...]) -> None:
    """Delete jobs (not ones being processed)."""
    _each_job(settings, queue, job_ids, "remove", "removed")


@cli.command(epilog=EXIT_CODES_HELP)
@common
@click.argument("queue")
@click.argument("job_ids", nargs=-1, required=True)
def promote(settings: Settings, queue: str, job_ids: tuple[str, ...]) -> None:
    """Run delayed jobs now."""
    _each_job(settings, queue, job_ids, "promote", "promoted")


def _each_job(settings: Settings, queue: str, job_ids: tuple[str, ...], op: str,
              done: str) -> None:
    async def body(client: aioredis.Redis) -> dict[str, str]:
        q = await existing_queue(client, settings, queue)
        outcome: dict[str, str] = {}
        for job_id in job_ids:
            found = await q.get_job(job_id)
            if found is None:
                outcome[job_id] = "not found"
                continue
            if op == "promote" and await q.get_job_state(job_id) != "delayed":
                outcome[job_id] = "not delayed"
                continue
            try:
                await getattr(found, op)()
                outcome[job_id] = done
            except JobStateError as exc:
                outcome[job_id] = str(exc)
        return outcome

    outcome = run(settings, body)
    if settings.json:
        settings.emit_json(outcome)
    else:
        for job_id, what in outcome.items():
            click.echo(f"{job_id}: {what}")
    if any(v == "not found" for v in outcome.values()):
        sys.exit(EXIT_NOT_FOUND)
    if any(v != done for v in outcome.values()):
        sys.exit(EXIT_FAILED)


def _done(settings: Settings, value: dict[str, Any], text: str) -> None:
    if settings.json:
        settings.emit_json(value)
    else:
        click.echo(text)


@cli.command(epilog=EXIT_CODES_HELP)
@common
@click.argument("queue")
@click.option("--state", type=click.Choice(list(CLEAN_STATES)), default="completed",
              show_default=True)
@click.option("--older-than", required=True, help="Age, with a unit: 30s, 15m, 2h, 7d.")
@click.option("--limit", type=click.IntRange(min=0), default=0, help="At most this many (0: all).")
def clean(settings: Settings, queue: str, state: str, older_than: str, limit: int) -> None:
    """Delete jobs in a state that finished (or were created) longer ago than --older-than."""
    grace = parse_duration_ms(older_than, "--older-than")

    async def body(client: aioredis.Redis) -> list[str]:
        q = await existing_queue(client, settings, queue)
        return await q.clean(grace, CLEAN_STATES[state], limit)  # type: ignore[arg-type]

    removed = run(settings, body)
    _done(settings, {"removed": removed, "count": len(removed)},
          f"removed {len(removed)} {state} jobs older than {older_than} from {queue}")


@cli.command(epilog=EXIT_CODES_HELP)
@common
@click.argument("queue")
def pause(settings: Settings, queue: str) -> None:
    """Pause QUEUE for every worker (Node's too)."""

    async def body(client: aioredis.Redis) -> None:
        await (await existing_queue(client, settings, queue)).pause()

    run(settings, body)
    _done(settings, {"queue": queue, "paused": True}, f"{queue}: paused")


@cli.command(epilog=EXIT_CODES_HELP)
@common
@click.argument("queue")
def resume(settings: Settings, queue: str) -> None:
    """Resume a paused QUEUE."""

    async def body(client: aioredis.Redis) -> None:
        await (await existing_queue(client, settings, queue)).resume()

    run(settings, body)
    _done(settings, {"queue": queue, "paused": False}, f"{queue}: resumed")


@cli.group(epilog=EXIT_CODES_HELP)
def repeat() -> None:
    """Repeatable (cron / every) schedules."""


@repeat.command("list", epilog=EXIT_CODES_HELP)
@common
@click.argument("queue")
def repeat_list(settings: Settings, queue: str) -> None:
    """The schedules of QUEUE and their next run."""

    async def body(client: aioredis.Redis) -> list[dict[str, Any]]:
        return await (await existing_queue(client, settings, queue)).get_repeatable_jobs()

    found = run(settings, body)
    if settings.json:
        settings.emit_json(found)
        return
    table = Table("key", "name", "cron", "every (ms)", "tz", "next run")
    for entry in found:
        table.add_row(str(entry.get("key")), str(entry.get("name") or ""),
                      str(entry.get("cron") or ""), str(entry.get("every") or ""),
                      str(entry.get("tz") or ""), format_ms(entry.get("next")))
    _console().print(table)


@repeat.command("remove", epilog=EXIT_CODES_HELP)
@common
@click.argument("queue")
@click.argument("key")
def repeat_remove(settings: Settings, queue: str, key: str) -> None:
    """Remove the schedule KEY (as `repeat list` shows it) and its next job."""

    async def body(client: aioredis.Redis) -> None:
        q = await existing_queue(client, settings, queue)
        keys = [e["key"] for e in await q.get_repeatable_jobs()]
        if key not in keys:
            fail(f"no schedule {key!r} in queue {queue!r} (see `pyqueue repeat list {queue}`)",
                 EXIT_NOT_FOUND)
        await q.remove_repeatable_by_key(key)

    run(settings, body)
    _done(settings, {"removed": key}, f"removed schedule {key}")


# --- search, watch, servers -----------------------------------------------------------


def _json_or_text(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


@cli.command(epilog=EXIT_CODES_HELP)
@common
@click.argument("queue")
@click.option("--id", "job_id", help="The job id, exactly.")
@click.option("--name", help="The job name, exactly.")
@click.option("--path", "data_path", help="A JSON path in the data: user.id, items[0].sku.")
@click.option("--value", "data_value",
              help="With --path: the value there (JSON, else a string).")
@click.option("--text", help="A substring of the data (case-insensitive).")
@click.option("--reason", "failed_reason", help="A substring of the failed reason.")
@click.option("--state", type=click.Choice(SEARCH_STATES), help="Only this state.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True,
              help="Stop after this many matches.")
@click.option("--cursor", default="0", help="Resume from a cursor an earlier search printed.")
def search(settings: Settings, queue: str, job_id: str | None, name: str | None,
           data_path: str | None, data_value: str | None, text: str | None,
           failed_reason: str | None, state: str | None, limit: int, cursor: str) -> None:
    """Find jobs server-side (Redis filters them; the queue is never loaded)."""
    if not any((job_id, name, data_path, text, failed_reason, state)):
        fail("search: give at least one of --id, --name, --path, --text, --reason, --state",
             EXIT_USAGE)
    value = _json_or_text(data_value) if data_value is not None else None

    async def body(client: aioredis.Redis) -> tuple[list[tuple[Job[Any], str]], str, int]:
        q = await existing_queue(client, settings, queue)
        found: list[Job[Any]] = []
        next_cursor, examined = cursor, 0
        while len(found) < limit:
            page = await search_jobs(
                q, state=state, id=job_id, name=name, data_path=data_path, data_value=value,
                text=text, failed_reason=failed_reason, cursor=next_cursor,
                count=min(limit - len(found), 500),
            )
            found.extend(page.jobs)
            examined += page.examined
            next_cursor = page.cursor
            if next_cursor == "0":
                break
        states = [state or await q.get_job_state(j.id) for j in found]
        return list(zip(found, states, strict=True)), next_cursor, examined

    found, next_cursor, examined = run(settings, body)
    if settings.json:
        settings.emit_json({"jobs": [{**j.to_json(), "state": s} for j, s in found],
                            "cursor": next_cursor, "examined": examined})
        return
    table = Table("id", "name", "state", "created", "attempts", "failed reason",
                  title=f"{queue}: {len(found)} matching jobs ({examined} examined)")
    for j, s in found:
        table.add_row(*_job_row(j, s))
    console = _console()
    console.print(table)
    if next_cursor != "0":
        console.print(f"more may match: --cursor {next_cursor}", markup=False)


@cli.command(epilog=EXIT_CODES_HELP)
@common
@click.argument("queues", nargs=-1)
@click.option("--interval", type=click.FloatRange(0.1, 60), default=1.0, show_default=True,
              help="Seconds between refreshes.")
@click.option("--once", is_flag=True, help="Print one frame and exit (no live view).")
def watch(settings: Settings, queues: tuple[str, ...], interval: float, once: bool) -> None:
    """A live view of the queues (all, or those named): counts, throughput, oldest waiting.

    Ctrl-C exits with status 0 and leaves the terminal as it was.
    """
    # Lazy: rich.live is only needed here.
    from pyqueue.tools.cli_watch import watch as run_watch  # noqa: PLC0415

    run_watch(settings, list(queues), interval, once=once)


@cli.command(epilog=EXIT_CODES_HELP)
@common
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=8765, show_default=True)
@click.option("--token", envvar="PYQUEUE_DASHBOARD_TOKEN", help="Bearer token required.")
@click.option("--basic-auth", envvar="PYQUEUE_DASHBOARD_BASIC_AUTH",
              help="user:password required.")
@click.option("--read-only", is_flag=True, help="Hide and refuse every write action.")
def dashboard(settings: Settings, host: str, port: int, token: str | None,
              basic_auth: str | None, read_only: bool) -> None:
    """Serve the web dashboard (needs `pip install 'pyqueue-bull[dashboard]'`)."""
    require("pyqueue dashboard", "dashboard")
    from pyqueue.tools import dashboard as web  # noqa: PLC0415 - optional extra
    auth: tuple[str, str] | None = None
    if basic_auth is not None:
        user, sep, password = basic_auth.partition(":")
        if not sep or not user or not password:
            fail("--basic-auth: expected user:password", EXIT_USAGE)
        auth = (user, password)
    try:
        web.serve(redis_url=settings.redis_url, prefix=settings.prefix, host=host, port=port,
                  token=token, basic_auth=auth, read_only=read_only)
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)


@cli.command(epilog=EXIT_CODES_HELP)
@common
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=9464, show_default=True)
@click.option("--interval", type=click.FloatRange(0.5, 3600), default=5.0, show_default=True,
              help="Seconds between Redis reads (scrapes in between get the last figures).")
def exporter(settings: Settings, host: str, port: int, interval: float) -> None:
    """Serve Prometheus /metrics (plus /healthz, /readyz) for every queue under the prefix."""
    require("pyqueue exporter", "metrics")
    from pyqueue.tools.metrics import run_exporter  # noqa: PLC0415 - optional extra
    run(settings, lambda client: run_exporter(client, settings.prefix, host, port, interval))


# `pyqueue migrate` (Bull 4 -> BullMQ 6) lives in its own module.
cli.add_command(cli_migrate.migrate)


def main() -> None:
    """Console-script entry point: one stderr line and an exit code for every failure."""
    try:
        code = cli.main(prog_name="pyqueue", standalone_mode=False)
    except CliError as exc:
        report(exc)
    except MissingExtra as exc:
        click.echo(f"pyqueue: {exc}", err=True)
        sys.exit(EXIT_MISSING_EXTRA)
    except click.exceptions.Abort:
        click.echo("pyqueue: aborted", err=True)
        sys.exit(EXIT_FAILED)
    except click.ClickException as exc:
        click.echo(f"pyqueue: error: {exc.format_message()}", err=True)
        sys.exit(EXIT_USAGE if isinstance(exc, click.UsageError) else EXIT_FAILED)
    except KeyboardInterrupt:
        click.echo("pyqueue: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(code if isinstance(code, int) else 0)



@cli.command("worker", epilog=EXIT_CODES_HELP)
@click.argument("settings_ref", metavar="MODULE:SETTINGS")
@click.option("--redis-url", envvar="REDIS_URL", default=None,
              help="Redis URL (env REDIS_URL); default: the settings' redis_url.")
@click.option("--prefix", default=None, help="Bull key prefix; default: the settings' or bull.")
@click.option("--concurrency", type=click.IntRange(min=1), help="Jobs at once, per queue.")
@click.option("--burst", is_flag=True,
              help="Exit once nothing is waiting or active (delayed jobs due later do not "
                   "hold it).")
@click.option("--log-format", type=click.Choice(["human", "json"]), default="human",
              show_default=True)
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
              default="info", show_default=True)
@click.option("--metrics-port", type=click.IntRange(0, 65535),
              help="Serve /metrics, /healthz and /readyz here (needs pyqueue-bull[metrics]).")
@click.option("--metrics-host", default="127.0.0.1", show_default=True)
@click.option("--loop", "loop", type=click.Choice(["auto", "asyncio", "uvloop"]),
              help="Event loop: auto (the default, also from $PYQUEUE_LOOP) is uvloop when "
                   "it is installed (pyqueue-bull[uvloop]), else asyncio's.")
def worker_command(settings_ref: str, redis_url: str | None, prefix: str | None,
                   concurrency: int | None, burst: bool, log_format: str, log_level: str,
                   metrics_port: int | None, metrics_host: str,
                   loop: loops.LoopChoice | None) -> None:
    """Run workers for the queues of a settings object (see pyqueue.tools.cli_worker)."""
    from pyqueue.tools import cli_worker  # noqa: PLC0415

    if metrics_port is not None:
        require("pyqueue worker --metrics-port", "metrics")
    try:
        loop_name = loops.loop_name(loop)
    except (ValueError, RuntimeError) as exc:  # a bad $PYQUEUE_LOOP, or uvloop missing
        fail(str(exc), EXIT_USAGE)

    try:
        settings = cli_worker.load_settings(settings_ref)
        url = redis_url or settings.redis_url or cli_worker.DEFAULT_URL
        workers = cli_worker.build_workers(settings, url, prefix or settings.prefix or "bull",
                                           concurrency)
    except cli_worker.SettingsError as exc:
        fail(str(exc), EXIT_USAGE)
    cli_worker.configure_logging(log_format, log_level)
    metrics = (metrics_host, metrics_port) if metrics_port is not None else None
    probe = Settings(url, prefix or "bull", json=False)
    # Check Redis first, so a wrong URL is one clear line rather than worker errors.
    run(probe, lambda client: client.ping())
    loops.run(cli_worker.run_workers(workers, burst=burst, metrics=metrics,
                                     on_startup=settings.on_startup,
                                     on_shutdown=settings.on_shutdown, loop_name=loop_name),
              loop=loop)
