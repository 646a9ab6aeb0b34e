"""``pyqueue search`` (find jobs, then retry or remove them all) and ``pyqueue clean``.

Both act on many jobs in batches (:mod:`pyqueue.tools.bulk`): no script call
touches more than ``--batch`` jobs, so Redis is never held for more than a
millisecond or two at a time. Acting asks first, saying how many jobs match
(``--dry-run`` only counts; ``--yes`` skips the question).
"""

from __future__ import annotations

import json
import time
from typing import Any

import click
import redis.asyncio as aioredis
from rich.table import Table

from pyqueue import Job
from pyqueue.tools import bulk
from pyqueue.tools.cli_support import (
    EXIT_CODES_HELP,
    EXIT_FAILED,
    EXIT_USAGE,
    Settings,
    common,
    console,
    existing_queue,
    fail,
    format_duration,
    format_ms,
    parse_duration_ms,
    run,
)
from pyqueue.tools.search import ALL_SEARCH_STATES, search_jobs

CLEAN_STATES = {"completed": "completed", "failed": "failed", "delayed": "delayed",
                "waiting": "wait", "active": "active", "paused": "paused"}


def _json_or_text(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def job_row(job: Job[Any], state: str) -> list[str]:
    """id, name, state, created, waited, ran, attempts, failed reason."""
    reason = (job.failed_reason or "").splitlines()[0][:60] if job.failed_reason else ""
    return [job.id, job.name, state, format_ms(job.timestamp), format_duration(waited_ms(job)),
            format_duration(ran_ms(job, state)), str(job.attempts_made), reason]


JOB_COLUMNS = ("id", "name", "state", "created", "waited", "ran", "attempts", "failed reason")


def waited_ms(job: Job[Any]) -> int | None:
    """From when the job was due (created + delay) to the start of its latest attempt."""
    if job.processed_on is None:
        return None
    return max(0, job.processed_on - job.timestamp - job.delay)


def ran_ms(job: Job[Any], state: str, now_ms: int | None = None) -> int | None:
    """The latest attempt's processing time; for an active job, so far."""
    if job.processed_on is None:
        return None
    if job.finished_on is not None and job.finished_on >= job.processed_on:
        return job.finished_on - job.processed_on
    if state == "active":
        return max(0, (now_ms or int(time.time() * 1000)) - job.processed_on)
    return None


@click.command(epilog=EXIT_CODES_HELP)
@common
@click.argument("queue")
@click.option("--id", "job_id", help="The job id, exactly.")
@click.option("--name", help="The job name, exactly.")
@click.option("--path", "data_path", help="A JSON path in the data: user.id, items[0].sku.")
@click.option("--value", "data_value",
              help="With --path: the value there (JSON, else a string).")
@click.option("--text", help="A substring of the data (case-insensitive).")
@click.option("--reason", "failed_reason", help="A substring of the failed reason.")
@click.option("--state", type=click.Choice(ALL_SEARCH_STATES), help="Only this state.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True,
              help="Stop after this many matches (listing only: --retry/--remove take all).")
@click.option("--cursor", default="0", help="Resume from a cursor an earlier search printed.")
@click.option("--retry", "act_retry", is_flag=True,
              help="Retry every matching failed job (implies --state failed).")
@click.option("--remove", "act_remove", is_flag=True,
              help="Remove every matching job (active ones are skipped).")
@click.option("--dry-run", is_flag=True, help="With --retry/--remove: only count the matches.")
@click.option("--yes", "-y", is_flag=True, help="With --retry/--remove: do not ask.")
@click.option("--batch", type=click.IntRange(1, 10_000), default=bulk.BATCH, show_default=True,
              help="Jobs acted on at a time.")
def search(settings: Settings, queue: str, job_id: str | None, name: str | None,
           data_path: str | None, data_value: str | None, text: str | None,
           failed_reason: str | None, state: str | None, limit: int, cursor: str,
           act_retry: bool, act_remove: bool, dry_run: bool, yes: bool, batch: int) -> None:
    """Find jobs server-side (Redis filters them; the queue is never loaded), and act on them."""
    if not any((job_id, name, data_path, text, failed_reason, state)):
        fail("search: give at least one of --id, --name, --path, --text, --reason, --state",
             EXIT_USAGE)
    if act_retry and act_remove:
        fail("search: --retry or --remove, not both", EXIT_USAGE)
    if (dry_run or yes) and not (act_retry or act_remove):
        fail("search: --dry-run and --yes go with --retry or --remove", EXIT_USAGE)
    if act_retry:
        if state not in (None, "failed"):
            fail("search --retry: only failed jobs can be retried (drop --state or use "
                 "--state failed)", EXIT_USAGE)
        state = "failed"
    value = _json_or_text(data_value) if data_value is not None else None
    criteria = bulk.Criteria(state=state, id=job_id, name=name, data_path=data_path,
                             data_value=value, text=text, failed_reason=failed_reason)
    if act_retry or act_remove:
        _act(settings, queue, criteria, "retry" if act_retry else "remove", dry_run, yes, batch)
        return

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
    table = Table(*JOB_COLUMNS, title=f"{queue}: {len(found)} matching jobs ({examined} examined)")
    for j, s in found:
        table.add_row(*job_row(j, s))
    out = console()
    out.print(table)
    if next_cursor != "0":
        out.print(f"more may match: --cursor {next_cursor}", markup=False)


def _act(settings: Settings, queue: str, criteria: bulk.Criteria, op: bulk.Op, dry_run: bool,
         yes: bool, batch: int) -> None:
    async def matches(client: aioredis.Redis) -> bulk.Matches:
        return await bulk.find_matching(await existing_queue(client, settings, queue), criteria)

    found = run(settings, matches)
    count = len(found.ids)
    verb = "retry" if op == "retry" else "remove"
    if dry_run or count == 0:
        _say(settings, {"matching": count, "examined": found.examined, "dryRun": True},
             f"{count} job(s) of {queue} match ({found.examined} examined); "
             f"{'nothing done (dry run)' if dry_run else 'nothing to ' + verb}")
        return
    if not yes and not click.confirm(f"{verb.capitalize()} {count} matching job(s) of {queue}?",
                                     err=True):
        fail(f"aborted: nothing {'retried' if op == 'retry' else 'removed'}", EXIT_FAILED)

    async def act(client: aioredis.Redis) -> bulk.BulkResult:
        q = await existing_queue(client, settings, queue)
        return await bulk.act_on(q, found.ids, op, batch=batch)

    result = run(settings, act)
    done = "retried" if op == "retry" else "removed"
    skipped = ", ".join(f"{n} {why}" for why, n in sorted(result.skipped.items()))
    _say(settings, {"matching": count, done: result.done, "skipped": dict(result.skipped)},
         f"{done} {result.done} of {count} matching job(s) of {queue}"
         + (f" (skipped: {skipped})" if skipped else ""))


def _say(settings: Settings, value: dict[str, Any], text: str) -> None:
    if settings.json:
        settings.emit_json(value)
    else:
        click.echo(text)


@click.command(epilog=EXIT_CODES_HELP)
@common
@click.argument("queue")
@click.option("--state", type=click.Choice(list(CLEAN_STATES)), default="completed",
              show_default=True)
@click.option("--older-than", required=True, help="Age, with a unit: 30s, 15m, 2h, 7d.")
@click.option("--limit", type=click.IntRange(min=0), default=0, help="At most this many (0: all).")
@click.option("--batch", type=click.IntRange(1, 10_000), default=bulk.BATCH, show_default=True,
              help="Jobs removed per Redis call.")
@click.option("--dry-run", is_flag=True, help="Only count the jobs that would go.")
def clean(settings: Settings, queue: str, state: str, older_than: str, limit: int, batch: int,
          dry_run: bool) -> None:
    """Delete jobs in a state that finished (or were created) longer ago than --older-than.

    In calls of --batch jobs, so Redis is never held long, however many go.
    """
    grace = parse_duration_ms(older_than, "--older-than")

    if dry_run:
        async def count(client: aioredis.Redis) -> int:
            q = await existing_queue(client, settings, queue)
            return await bulk.count_cleanable(q, grace, state)

        n = run(settings, count)
        if limit:
            n = min(n, limit)
        _say(settings, {"count": n, "dryRun": True},
             f"{n} {state} job(s) of {queue} are older than {older_than} (dry run: none removed)")
        return

    async def body(client: aioredis.Redis) -> bulk.BulkResult:
        q = await existing_queue(client, settings, queue)
        return await bulk.clean(q, grace, CLEAN_STATES[state], limit, batch=batch)

    result = run(settings, body)
    _say(settings, {"removed": result.ids, "count": result.done, "calls": result.calls},
         f"removed {result.done} {state} jobs older than {older_than} from {queue}")
