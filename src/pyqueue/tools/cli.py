"""The ``pyqueue`` command: inspect and manage Bull queues (pyqueue's and Node's alike).

``pip install 'pyqueue-bull[cli]'``. Every command takes ``--redis-url`` (or ``REDIS_URL``),
``--prefix`` and ``--json``; exit codes are listed in :mod:`pyqueue.tools.cli_support`.
Besides this module's commands: ``doctor`` and ``workers``
(:mod:`pyqueue.tools.cli_doctor`), ``search`` and ``clean``
(:mod:`pyqueue.tools.cli_search`), ``watch`` (:mod:`pyqueue.tools.cli_watch`).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click
import redis.asyncio as aioredis
from rich.table import Table

from pyqueue import JobStateError, loops, monitoring
from pyqueue.tools import cli_migrate, diagnosis, overview
from pyqueue.tools.cli_doctor import doctor, workers
from pyqueue.tools.cli_search import JOB_COLUMNS, clean, job_row, ran_ms, search, waited_ms
from pyqueue.tools.cli_support import (
    EXIT_CODES_HELP,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_NOT_FOUND,
    EXIT_USAGE,
    CliError,
    Settings,
    common,
    console,
    existing_job,
    existing_queue,
    fail,
    format_age,
    format_duration,
    format_ms,
    not_a_job,
    report,
    run,
)
from pyqueue.tools.cli_tables import LEGEND, queue_table
from pyqueue.tools.extras import EXIT_MISSING_EXTRA, MissingExtra, require

# The last two are BullMQ's own: asked of a Bull queue, they are a one-line error.
JOB_STATES = ("waiting", "active", "delayed", "failed", "completed", "paused", "prioritized",
              "waiting-children")
_BULLMQ_ONLY_STATES = frozenset({"prioritized", "waiting-children"})


@click.group(epilog=EXIT_CODES_HELP, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Inspect and manage Bull queues in Redis (written by pyqueue or Node Bull)."""


cli.add_command(doctor)
cli.add_command(workers)
cli.add_command(search)
cli.add_command(clean)


# --- reading ------------------------------------------------------------------


@cli.command(epilog=EXIT_CODES_HELP)
@common
def queues(settings: Settings) -> None:
    """Every queue under the prefix: counts per state, workers, oldest waiting job, flags.

    The flags say why a queue may be stuck (``pyqueue doctor`` explains each):
    no workers, stuck (active jobs no live worker will finish), long active,
    slow (jobs wait long), paused+waiting, limited (rate-limiter bounces among
    the delayed jobs), overdue (repeatable jobs), unreadable.
    """

    async def body(client: aioredis.Redis) -> list[diagnosis.Diagnosis]:
        names = await overview.discover_queues(client, settings.prefix)
        return await diagnosis.diagnose(client, settings.prefix, names)

    found = run(settings, body)
    if settings.json:
        settings.emit_json([{**d.stats.to_json(), "flags": d.flags} for d in found])
        return
    if not found:
        click.echo(f"no queues under prefix {settings.prefix!r}")
        return
    out = console()
    out.print(queue_table(found))
    out.print(LEGEND, markup=False, style="dim", soft_wrap=False)


@cli.command(epilog=EXIT_CODES_HELP)
@common
@click.argument("queue")
@click.option("--state", type=click.Choice(JOB_STATES), default="waiting", show_default=True)
@click.option("--page", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--page-size", type=click.IntRange(1, 1000), default=20, show_default=True)
def jobs(settings: Settings, queue: str, state: str, page: int, page_size: int) -> None:
    """A page of QUEUE's jobs in one state (newest first), with how long each waited and ran."""

    async def body(client: aioredis.Redis) -> tuple[list[Any], int]:
        q = await existing_queue(client, settings, queue)
        if state in _BULLMQ_ONLY_STATES and q.format != "bullmq":
            fail(f"--state {state}: BullMQ queues only ({queue!r} is a Bull queue)", EXIT_USAGE)
        start = (page - 1) * page_size
        found = await q.get_jobs(state, start, start + page_size - 1)  # type: ignore[arg-type]
        total = (await q.get_job_counts(state))[state]  # type: ignore[arg-type]
        return found, total

    found, total = run(settings, body)
    pages = max(1, -(-total // page_size))
    if settings.json:
        settings.emit_json({"state": state, "page": page, "pages": pages, "total": total,
                            "jobs": [{**j.to_json(), "waitedMs": waited_ms(j),
                                      "ranMs": ran_ms(j, state)} for j in found]})
        return
    table = Table(*JOB_COLUMNS,
                  title=f"{queue}: {state} jobs, page {page} of {pages} ({total} in all)")
    for found_job in found:
        table.add_row(*job_row(found_job, state))
    console().print(table)


@cli.command(epilog=EXIT_CODES_HELP)
@common
@click.argument("queue")
@click.argument("job_id")
def job(settings: Settings, queue: str, job_id: str) -> None:
    """Everything about one job: data, opts, progress, logs, attempts, errors, result, worker."""

    async def body(client: aioredis.Redis) -> dict[str, Any]:
        q = await existing_queue(client, settings, queue)
        found = await existing_job(q, job_id)
        logs, _ = await q.get_job_logs(job_id)
        state = await q.get_job_state(job_id)
        worker = await monitoring.get_attempt_worker(q, job_id)
        return {**found.to_json(), "state": state, "logs": logs,
                "waitedMs": waited_ms(found), "ranMs": ran_ms(found, state),
                "worker": None if worker is None else {
                    "id": worker.id, "host": worker.host, "pid": worker.pid,
                    "startedOn": worker.started_ms, "latestAttempt": worker.latest}}

    info = run(settings, body)
    if settings.json:
        settings.emit_json(info)
        return
    out = console()
    out.print(f"[bold]job {_escape(info['id'])}[/bold] of {_escape(queue)}: {info['state']}")
    worker = info["worker"]
    ran_by = "-"
    if worker is not None:
        ran_by = f"{worker['host']}:{worker['pid']} (worker {worker['id'][:8]})"
        if not worker["latestAttempt"]:
            ran_by = f"a Node worker; before it {ran_by}"
    elif info["processedOn"]:
        ran_by = "a worker that does not record itself (Node Bull)"
    rows = [("name", info["name"]), ("created", format_ms(info["timestamp"])),
            ("processed", format_ms(info["processedOn"])),
            ("finished", format_ms(info["finishedOn"])), ("delay", f"{info['delay']} ms"),
            ("waited", format_duration(info["waitedMs"])),
            ("ran", format_duration(info["ranMs"])), ("worker", ran_by),
            ("attempts made", str(info["attemptsMade"])),
            ("progress", json.dumps(info["progress"])),
            ("failed reason", info["failedReason"] or "-"),
            ("return value", json.dumps(info["returnvalue"], ensure_ascii=False))]
    for label, value in rows:
        out.print(f"  {label:14} {value}", markup=False)
    out.print("  data", markup=False)
    out.print(_indent(json.dumps(info["data"], indent=2, ensure_ascii=False)), markup=False)
    out.print("  opts", markup=False)
    out.print(_indent(json.dumps(info["opts"], indent=2, ensure_ascii=False)), markup=False)
    if info["stacktrace"]:
        out.print("  stack traces", markup=False)
        for trace in info["stacktrace"]:
            out.print(_indent(str(trace)), markup=False)
    out.print(f"  logs ({len(info['logs'])})", markup=False)
    for line in info["logs"]:
        out.print(_indent(line), markup=False)


def _escape(text: str) -> str:
    return text.replace("[", r"\[")


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
            # Never q.get_job: an id such as "wait" or "metrics:completed" names a key of the
            # queue, which a removal would delete.
            found = await monitoring.get_job(q, job_id)
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
            click.echo(f"{job_id}: {not_a_job(queue, job_id) if what == 'not found' else what}")
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
    """The schedules of QUEUE and their next run; a past next run is flagged OVERDUE.

    A schedule is overdue when its next run is more than a minute in the past:
    no worker promoted its job, or the job is gone (``pyqueue doctor`` says which).
    """

    async def body(client: aioredis.Redis) -> list[dict[str, Any]]:
        return await (await existing_queue(client, settings, queue)).get_repeatable_jobs()

    found = run(settings, body)
    now_ms = int(time.time() * 1000)
    for entry in found:
        entry["overdue"] = entry["next"] < now_ms - diagnosis.Limits().repeat_grace_ms
    if settings.json:
        settings.emit_json(found)
        return
    table = Table("key", "name", "cron", "every (ms)", "tz", "next run", "")
    for entry in found:
        late = ""
        if entry["overdue"]:
            late = f"OVERDUE by {format_age((now_ms - entry['next']) / 1000)}"
        table.add_row(str(entry.get("key")), str(entry.get("name") or ""),
                      str(entry.get("cron") or ""), str(entry.get("every") or ""),
                      str(entry.get("tz") or ""), format_ms(entry.get("next")), late,
                      style="bold red" if late else None)
    console().print(table)


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
@click.option("--viewer-token", envvar="PYQUEUE_DASHBOARD_VIEWER_TOKEN",
              help="A second token, which signs in read-only (masked fields hidden).")
@click.option("--allowed-host", "allowed_hosts", multiple=True,
              help="A Host name to answer to (repeatable; '*' any, '.example.com' a domain). "
                   "Default: the loopback names without auth, any with auth.")
@click.option("--mask", "masks", multiple=True,
              help="A JSON path hidden from read-only viewers: customer.email, items[*].card "
                   "(repeatable).")
@click.option("--audit-log", type=click.Path(dir_okay=False),
              help="Append the audit trail (every action: who, what, when) to this file.")
@click.option("--session-hours", type=click.FloatRange(min=0.01), default=8.0,
              show_default=True, help="A browser session lasts this long after sign-in.")
@click.option("--session-idle-minutes", type=click.FloatRange(min=0.1), default=60.0,
              show_default=True, help="... and ends after this long without a request.")
def dashboard(settings: Settings, host: str, port: int, token: str | None,
              basic_auth: str | None, read_only: bool, viewer_token: str | None,
              allowed_hosts: tuple[str, ...], masks: tuple[str, ...], audit_log: str | None,
              session_hours: float, session_idle_minutes: float) -> None:
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
                  token=token, basic_auth=auth, read_only=read_only, viewer_token=viewer_token,
                  allowed_hosts=list(allowed_hosts) or None, mask=list(masks),
                  audit_log=audit_log, session_max_age=session_hours * 3600,
                  session_idle=session_idle_minutes * 60)
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
