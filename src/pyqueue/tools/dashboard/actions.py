"""The dashboard's write actions: every one a CSRF-checked POST to ``/action``, audited.

Only a user with every right (not a viewer, not a read-only dashboard) may act.
Bulk actions (retry all failed, clean, retry or remove what a search matched)
first answer with a confirmation page saying how many jobs they will touch
(counted, not guessed); only the form on that page, which posts
``confirm=yes``, carries them out, in batches (:mod:`pyqueue.tools.bulk`).
The outcome goes back as a flash message on the page the action came from,
and into the audit trail (:mod:`.audit`), and into the log of each job acted on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from pyqueue import InvalidOptionsError, PyQueueError, Queue, monitoring
from pyqueue.tools import bulk
from pyqueue.tools.dashboard.audit import Entry
from pyqueue.tools.dashboard.data import CLEAN_STATES
from pyqueue.tools.dashboard.search_view import criteria_of, refused_for
from pyqueue.tools.dashboard.security import (
    CSRF_COOKIE,
    FLASH_COOKIE,
    client_address,
    csrf_ok,
    origin_ok,
)

if TYPE_CHECKING:
    from pyqueue.tools.dashboard.core import Dashboard
    from pyqueue.tools.dashboard.sessions import User

JOB_OPS = ("retry", "remove", "promote")
QUEUE_OPS = ("pause", "resume", "retry_all", "clean")
SEARCH_OPS = ("search_retry", "search_remove")
BULK_OPS = ("retry_all", "clean", *SEARCH_OPS)
_UNITS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_SEARCH_FIELDS = ("state", "id", "name", "data_path", "data_value", "text", "failed_reason")


class ActionError(ValueError):
    """A form that cannot be carried out; the message says why."""


def _field(form: Any, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def parse_grace(age: str, unit: str) -> int:
    """``age`` in ``unit`` (s, m, h, d) as milliseconds."""
    if unit not in _UNITS:
        raise ActionError(f"unit: must be one of {', '.join(_UNITS)}, got {unit!r}")
    try:
        value = int(age)
    except ValueError:
        raise ActionError(f"age: must be a whole number, got {age!r}") from None
    if value < 0:
        raise ActionError(f"age: must be >= 0, got {value}")
    return value * _UNITS[unit]


def parse_limit(raw: str) -> int:
    """How many jobs a clean may remove: a whole number >= 1 (never "all" by default)."""
    if not raw:
        raise ActionError("limit: give how many jobs at most (the clean removes them in "
                          "batches)")
    try:
        value = int(raw)
    except ValueError:
        raise ActionError(f"limit: must be a whole number, got {raw!r}") from None
    if value < 1:
        raise ActionError(f"limit: must be >= 1, got {value}")
    return value


async def handle(
    dash: Dashboard, request: Request, safe_next: Callable[[Request, str | None], str]
) -> Response:
    headers = {k.lower(): v for k, v in request.headers.items()}
    user = dash.user(request)
    if not user.may_act:
        return dash.render(request, "message.html", 403, title="Read-only",
                           message="You are signed in read-only: actions are disabled.",
                           login=False)
    form = await request.form()
    if not origin_ok(headers) or not csrf_ok(
        dash.csrf_secret, request.cookies.get(CSRF_COOKIE), _field(form, "csrf")
    ):
        return dash.render(request, "message.html", 403, title="Refused",
                           message="The form's CSRF token is missing or wrong: reload the "
                           "page and try again.", login=False)
    next_url = safe_next(request, _field(form, "next"))
    op = _field(form, "op")
    name = _field(form, "queue")
    jobs: list[str] = []
    try:
        if name and not await dash.repo.knows(name):
            raise ActionError(f"there is no queue {name!r}")
        confirm = await _needs_confirmation(dash, request, form, next_url)
        if confirm is not None:
            return confirm
        message, jobs = await _run(dash, request, form, user)
    except ActionError as exc:
        message = f"Not done: {exc}"
    except (PyQueueError, InvalidOptionsError) as exc:
        message = f"Failed: {exc}"
    if name:
        dash.repo.forget(name)
    dash.auditor.record(_entry(request, user, op, name, jobs, message))
    response = RedirectResponse(next_url, status_code=303)
    response.set_cookie(FLASH_COOKIE, quote(message[:500]), path=request.scope.get("root_path")
                        or "/", httponly=True, samesite="strict")
    return response


def _entry(request: Request, user: User, op: str, queue: str, jobs: list[str],
           outcome: str) -> Entry:
    return Entry(at=int(time.time() * 1000), who=user.who, role=user.role,
                 client=client_address(request.scope), action=op or "?", queue=queue,
                 jobs=tuple(jobs[:20]), count=len(jobs), outcome=outcome[:500])


async def _needs_confirmation(
    dash: Dashboard, request: Request, form: Any, next_url: str
) -> Response | None:
    op = _field(form, "op")
    if op not in BULK_OPS or _field(form, "confirm") == "yes":
        return None
    name = _queue_name(form)
    queue = dash.repo.queue(name)
    fields = {k: _field(form, k) for k in ("op", "queue", "state", "age", "unit", "limit")}
    if op == "retry_all":
        failed = (await queue.get_job_counts("failed"))["failed"]
        what = f"retry every failed job of {name!r}: {failed} job(s)"
    elif op == "clean":
        state = _clean_state(form)
        grace = parse_grace(_field(form, "age"), _field(form, "unit") or "m")
        limit = parse_limit(_field(form, "limit"))
        count = await bulk.count_cleanable(queue, grace, CLEAN_STATES[state])
        what = (f"delete {min(count, limit)} {state} job(s) of {name!r} older than "
                f"{_field(form, 'age')}{_field(form, 'unit') or 'm'} ({count} are that old; "
                f"at most {limit}), {bulk.BATCH} a call")
    else:
        criteria = _criteria(dash, request, form)
        found = await bulk.find_matching(queue, criteria)
        verb = "retry" if op == "search_retry" else "remove"
        what = (f"{verb} the {len(found.ids)} job(s) of {name!r} that match this search "
                f"({found.examined} examined)")
        fields = {"op": op, "queue": name, **{k: _field(form, k) for k in _SEARCH_FIELDS}}
    return dash.render(request, "confirm.html", what=what, fields=fields, next=next_url)


def _criteria(dash: Dashboard, request: Request, form: Any) -> bulk.Criteria:
    params = {k: _field(form, k) for k in _SEARCH_FIELDS}
    refused = refused_for(dash, request, params)
    if refused:
        raise ActionError(refused)
    criteria = criteria_of(params)
    if not criteria.given():
        raise ActionError("give at least one search field")
    if _field(form, "op") == "search_retry":
        if criteria.state not in (None, "failed"):
            raise ActionError("only failed jobs can be retried")
        criteria = _with_failed(criteria)
    return criteria


def _with_failed(criteria: bulk.Criteria) -> bulk.Criteria:
    return bulk.Criteria(state="failed", id=criteria.id, name=criteria.name,
                         data_path=criteria.data_path, data_value=criteria.data_value,
                         text=criteria.text, failed_reason=criteria.failed_reason)


def _queue_name(form: Any) -> str:
    name = _field(form, "queue")
    if not name:
        raise ActionError("queue: missing")
    return name


def _clean_state(form: Any) -> str:
    state = _field(form, "state")
    if state not in CLEAN_STATES:
        raise ActionError(f"state: must be one of {', '.join(CLEAN_STATES)}, got {state!r}")
    return state


async def _note(dash: Dashboard, request: Request, user: User, queue: Queue[Any],
                op: str, ids: list[str]) -> None:
    """One line in the log of each job acted on (a removed job's log went with it)."""
    entry = _entry(request, user, op, queue.name, ids, "")
    for job_id in ids:
        job = await monitoring.get_job(queue, job_id)
        if job is not None:
            await dash.auditor.note_on_job(job, entry)


async def _run(dash: Dashboard, request: Request, form: Any,
               user: User) -> tuple[str, list[str]]:
    op = _field(form, "op")
    name = _queue_name(form)
    queue = dash.repo.queue(name)
    if op in JOB_OPS:
        job_id = _field(form, "id")
        # Never queue.get_job: "wait" or "metrics:completed" must not become a removable job.
        job = await monitoring.get_job(queue, job_id) if job_id else None
        if job is None:
            raise ActionError(f"queue {name!r} has no job {job_id!r}")
        if op == "remove":
            await job.remove()
            return f"Job {job_id} removed.", [job_id]
        if op == "retry":
            await job.retry()
            message = f"Job {job_id} moved back to waiting."
        else:
            if await queue.get_job_state(job_id) != "delayed":
                raise ActionError(f"job {job_id} is not delayed")
            await job.promote()
            message = f"Job {job_id} promoted to waiting."
        await _note(dash, request, user, queue, op, [job_id])
        return message, [job_id]
    if op == "pause":
        await queue.pause()
        return f"Queue {name} paused: workers fetch no new jobs.", []
    if op == "resume":
        await queue.resume()
        return f"Queue {name} resumed.", []
    if op == "retry_all":
        result = await bulk.retry_failed(queue)
        await _note(dash, request, user, queue, op, result.ids)
        return f"Retried {result.done} failed job(s) of {name}.", result.ids
    if op == "clean":
        state = _clean_state(form)
        grace = parse_grace(_field(form, "age"), _field(form, "unit") or "m")
        limit = parse_limit(_field(form, "limit"))
        result = await bulk.clean(queue, grace, CLEAN_STATES[state], limit)
        return (f"Cleaned {result.done} {state} job(s) of {name} in {result.calls} "
                f"call(s)."), result.ids
    if op in SEARCH_OPS:
        found = await bulk.find_matching(queue, _criteria(dash, request, form))
        kind: bulk.Op = "retry" if op == "search_retry" else "remove"
        result = await bulk.act_on(queue, found.ids, kind)
        if kind == "retry":
            await _note(dash, request, user, queue, op, result.ids)
        skipped = ", ".join(f"{n} {why}" for why, n in sorted(result.skipped.items()))
        done = "Retried" if kind == "retry" else "Removed"
        return (f"{done} {result.done} of {len(found.ids)} matching job(s) of {name}"
                + (f" (skipped: {skipped})." if skipped else ".")), result.ids
    raise ActionError(f"op: unknown action {op!r}")
