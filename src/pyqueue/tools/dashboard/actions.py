"""The dashboard's write actions: every one a CSRF-checked POST to ``/action``.

Bulk actions (retry all failed, clean) first answer with a confirmation page
saying how many jobs they can touch; only the form on that page, which posts
``confirm=yes``, carries them out. The outcome goes back as a flash message on
the page the action came from.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from pyqueue.errors import PyQueueError
from pyqueue.tools.dashboard.data import CLEAN_STATES
from pyqueue.tools.dashboard.security import CSRF_COOKIE, FLASH_COOKIE, csrf_ok, origin_ok

if TYPE_CHECKING:
    from pyqueue.tools.dashboard.core import Dashboard

JOB_OPS = ("retry", "remove", "promote")
QUEUE_OPS = ("pause", "resume", "retry_all", "clean")
BULK_OPS = ("retry_all", "clean")
_UNITS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


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
    if not raw:
        return 0
    try:
        value = int(raw)
    except ValueError:
        raise ActionError(f"limit: must be a whole number, got {raw!r}") from None
    if value < 0:
        raise ActionError(f"limit: must be >= 0, got {value}")
    return value


async def handle(
    dash: Dashboard, request: Request, safe_next: Callable[[Request, str | None], str]
) -> Response:
    headers = {k.lower(): v for k, v in request.headers.items()}
    if dash.read_only:
        return dash.render(request, "message.html", 403, title="Read-only",
                           message="This dashboard is read-only: actions are disabled.",
                           login=False)
    form = await request.form()
    if not origin_ok(headers) or not csrf_ok(
        dash.csrf_secret, request.cookies.get(CSRF_COOKIE), _field(form, "csrf")
    ):
        return dash.render(request, "message.html", 403, title="Refused",
                           message="The form's CSRF token is missing or wrong: reload the "
                           "page and try again.", login=False)
    next_url = safe_next(request, _field(form, "next"))
    try:
        confirm = await _needs_confirmation(dash, request, form, next_url)
        if confirm is not None:
            return confirm
        message = await _run(dash, form)
    except ActionError as exc:
        message = f"Not done: {exc}"
    except PyQueueError as exc:
        message = f"Failed: {exc}"
    response = RedirectResponse(next_url, status_code=303)
    response.set_cookie(FLASH_COOKIE, quote(message[:500]), path=request.scope.get("root_path")
                        or "/", httponly=True, samesite="strict")
    return response


async def _needs_confirmation(
    dash: Dashboard, request: Request, form: Any, next_url: str
) -> Response | None:
    op = _field(form, "op")
    if op not in BULK_OPS or _field(form, "confirm") == "yes":
        return None
    name = _queue_name(dash, form)
    queue = dash.repo.queue(name)
    if op == "retry_all":
        failed = (await queue.get_job_counts("failed"))["failed"]
        what = f"retry every failed job of {name!r}: {failed} job(s)"
    else:
        state = _clean_state(form)
        grace = parse_grace(_field(form, "age"), _field(form, "unit") or "m")
        limit = parse_limit(_field(form, "limit"))
        count = (await queue.get_job_counts(state))[state]  # type: ignore[arg-type]
        bound = f"up to {min(count, limit) if limit else count}"
        what = (f"delete {bound} {state} job(s) of {name!r} older than "
                f"{_field(form, 'age')}{_field(form, 'unit') or 'm'} ({grace} ms)")
    fields = {k: _field(form, k) for k in ("op", "queue", "state", "age", "unit", "limit")}
    return dash.render(request, "confirm.html", what=what, fields=fields, next=next_url)


def _queue_name(dash: Dashboard, form: Any) -> str:
    name = _field(form, "queue")
    if not name:
        raise ActionError("queue: missing")
    return name


def _clean_state(form: Any) -> str:
    state = _field(form, "state")
    if state not in CLEAN_STATES:
        raise ActionError(f"state: must be one of {', '.join(CLEAN_STATES)}, got {state!r}")
    return state


async def _run(dash: Dashboard, form: Any) -> str:
    op = _field(form, "op")
    name = _queue_name(dash, form)
    queue = dash.repo.queue(name)
    if op in JOB_OPS:
        job_id = _field(form, "id")
        job = await queue.get_job(job_id) if job_id else None
        if job is None:
            raise ActionError(f"queue {name!r} has no job {job_id!r}")
        if op == "retry":
            await job.retry()
            return f"Job {job_id} moved back to waiting."
        if op == "promote":
            if await queue.get_job_state(job_id) != "delayed":
                raise ActionError(f"job {job_id} is not delayed")
            await job.promote()
            return f"Job {job_id} promoted to waiting."
        await job.remove()
        return f"Job {job_id} removed."
    if op == "pause":
        await queue.pause()
        return f"Queue {name} paused: workers fetch no new jobs."
    if op == "resume":
        await queue.resume()
        return f"Queue {name} resumed."
    if op == "retry_all":
        before = (await queue.get_job_counts("failed"))["failed"]
        await queue.retry_jobs()
        after = (await queue.get_job_counts("failed"))["failed"]
        return f"Retried {before - after} failed job(s) of {name}."
    if op == "clean":
        state = _clean_state(form)
        grace = parse_grace(_field(form, "age"), _field(form, "unit") or "m")
        limit = parse_limit(_field(form, "limit"))
        removed = await queue.clean(grace, CLEAN_STATES[state], limit)  # type: ignore[arg-type]
        return f"Cleaned {len(removed)} {state} job(s) of {name}."
    raise ActionError(f"op: unknown action {op!r}")
