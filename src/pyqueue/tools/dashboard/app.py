"""The dashboard's ASGI app: pages, the JSON feeds behind the live parts, actions.

Queue names and job ids travel in query strings and form fields, never in URL
paths, so any Bull name (slashes, colons, spaces) round-trips unchanged.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from pyqueue import monitoring
from pyqueue.tools.dashboard.actions import handle as handle_action
from pyqueue.tools.dashboard.core import Dashboard, page_url
from pyqueue.tools.dashboard.data import (
    CLEAN_LIMIT,
    CLEAN_STATES,
    LOG_LINES,
    PAGE_SIZE,
    QueueSummary,
)
from pyqueue.tools.dashboard.search_view import search_page as search_view_page
from pyqueue.tools.dashboard.security import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    AuthConfig,
    Guard,
    client_address,
    csrf_ok,
    ended_session_cookie,
    origin_ok,
    session_cookie,
)

_HERE = Path(__file__).resolve().parent
STATE_KEY = "pyqueue_dashboard"
# How long a page waits for the first scan for queues before saying it is scanning.
FIRST_SCAN_WAIT = 0.5


def dashboard_of(request: Request) -> Dashboard:
    found: Dashboard = getattr(request.app.state, STATE_KEY)
    return found


def _page_number(raw: str | None) -> int:
    try:
        page = int(raw or "1")
    except ValueError:
        return 1
    return max(1, min(page, 1_000_000))


async def overview(request: Request) -> Response:
    dash = dashboard_of(request)
    summaries = await dash.repo.summaries(wait=FIRST_SCAN_WAIT)
    if summaries is None:
        return dash.render(request, "scanning.html")
    return dash.render(request, "overview.html", queues=summaries)


async def queue_page(request: Request) -> Response:
    dash = dashboard_of(request)
    name = request.query_params.get("name", "")
    state = request.query_params.get("state", "waiting")
    page = _page_number(request.query_params.get("page"))
    summary = await _summary_or_none(dash, name)
    if summary is None:
        return _no_queue(dash, request, name)
    if state not in summary.states:
        return dash.render(request, "message.html", 400, title="Bad request",
                           message=f"state must be one of {', '.join(summary.states)}",
                           login=False)
    (jobs, total), latency = await _gather(
        dash.repo.jobs_page(name, state, page), dash.repo.latency(name)
    )
    pages = max(1, -(-total // PAGE_SIZE))
    return dash.render(
        request, "queue.html", queue=summary, state=state, jobs=jobs, page=page, pages=pages,
        total=total, page_size=PAGE_SIZE, clean_states=list(CLEAN_STATES),
        latency=latency, clean_limit=CLEAN_LIMIT, now_ms=int(time.time() * 1000),
    )


async def job_page(request: Request) -> Response:
    dash = dashboard_of(request)
    name = request.query_params.get("queue", "")
    job_id = request.query_params.get("id", "").strip()
    if await _summary_or_none(dash, name) is None:
        return _no_queue(dash, request, name)
    queue = dash.repo.queue(name)
    # Never queue.get_job: an id such as "wait" or "metrics:completed" names a key of the
    # queue (a WRONGTYPE, or an empty "job" whose Remove button deletes that key).
    job = await monitoring.get_job(queue, job_id) if job_id else None
    if job is None:
        return dash.render(request, "message.html", 404, title="No such job",
                           message=f"Queue {name!r} has no job {job_id!r}.", login=False,
                           back=page_url(request.scope.get("root_path", ""), "/queue", name=name))
    state, (logs, log_total), worker = await _gather(
        queue.get_job_state(job_id), queue.get_job_logs(job_id, 0, LOG_LINES - 1),
        monitoring.get_attempt_worker(queue, job_id),
    )
    return dash.render(request, "job.html", queue_name=name, job=job, state=state, logs=logs,
                       log_total=log_total, worker=worker, now_ms=int(time.time() * 1000))


async def repeatable_page(request: Request) -> Response:
    dash = dashboard_of(request)
    name = request.query_params.get("name", "")
    summary = await _summary_or_none(dash, name)
    if summary is None:
        return _no_queue(dash, request, name)
    page = _page_number(request.query_params.get("page"))
    start = (page - 1) * PAGE_SIZE
    # Ascending by next run: the soonest schedule first.
    entries = await dash.repo.queue(name).get_repeatable_jobs(
        start, start + PAGE_SIZE - 1, asc=True
    )
    pages = max(1, -(-summary.repeatable // PAGE_SIZE))
    return dash.render(request, "repeatable.html", queue=summary, entries=entries, page=page,
                       pages=pages)


async def search_page(request: Request) -> Response:
    return await search_view_page(dashboard_of(request), request)


async def api_job(request: Request) -> Response:
    """A job's state and counters, which its page polls while the job is unfinished."""
    dash = dashboard_of(request)
    name = request.query_params.get("queue", "")
    job_id = request.query_params.get("id", "")
    if not await dash.repo.knows(name):
        return JSONResponse({"error": f"no queue {name!r}"}, status_code=404)
    queue = dash.repo.queue(name)
    job = await monitoring.get_job(queue, job_id) if job_id else None
    if job is None:
        return JSONResponse({"error": f"no job {job_id!r}"}, status_code=404)
    return JSONResponse(
        {"state": await queue.get_job_state(job_id), "attemptsMade": job.attempts_made,
         "finishedOn": job.finished_on, "processedOn": job.processed_on},
        headers={"cache-control": "no-store"},
    )


async def api_overview(request: Request) -> Response:
    dash = dashboard_of(request)
    name = request.query_params.get("queue")
    if name:
        summary = await _summary_or_none(dash, name)
        if summary is None:
            return JSONResponse({"error": f"no queue {name!r}"}, status_code=404)
        summaries = [summary]
    else:
        found = await dash.repo.summaries(wait=FIRST_SCAN_WAIT)
        if found is None:
            return JSONResponse({"scanning": True, "queues": [], "throughput": None},
                                headers={"cache-control": "no-store"})
        summaries = found
    throughput = await dash.repo.throughput([s.name for s in summaries])
    return JSONResponse(
        {"queues": [s.to_json() for s in summaries], "throughput": throughput.to_json()},
        headers={"cache-control": "no-store"},
    )


async def login(request: Request) -> Response:
    dash = dashboard_of(request)
    next_url = _safe_next(request, request.query_params.get("next"))
    if request.method == "GET" or not dash.auth.tokens_enabled:
        return dash.render(request, "login.html", next=next_url, error="")
    client = client_address(request.scope)
    wait = dash.throttle.retry_after(client)
    if wait:
        refused = dash.render(request, "login.html", 429, next=next_url,
                              error=f"Too many failed sign-ins: try again in {wait} s.")
        refused.headers["retry-after"] = str(wait)
        return refused
    form = await request.form()
    token = str(form.get("token", ""))
    next_url = _safe_next(request, str(form.get("next", "")))
    user = dash.auth.user_of_token(token)
    if user is None:
        dash.throttle.failed(client)
        return dash.render(request, "login.html", 401, next=next_url, error="Wrong token.")
    dash.throttle.succeeded(client)
    response = RedirectResponse(next_url, status_code=303)
    name, value = session_cookie(dash.sessions, user, request.scope)
    response.headers.append(name, value)
    return response


async def logout(request: Request) -> Response:
    """End this browser's session: GET asks, a CSRF-checked POST does it."""
    dash = dashboard_of(request)
    root = str(request.scope.get("root_path", ""))
    if request.method == "GET":
        return dash.render(request, "logout.html")
    form = await request.form()
    headers = {k.lower(): v for k, v in request.headers.items()}
    if not origin_ok(headers) or not csrf_ok(
        dash.csrf_secret, request.cookies.get(CSRF_COOKIE), str(form.get("csrf", ""))
    ):
        return dash.render(request, "message.html", 403, title="Refused",
                           message="The form's CSRF token is missing or wrong: reload the "
                           "page and try again.", login=False)
    dash.sessions.end(request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse(root + ("/login" if dash.auth.tokens_enabled else "/"),
                                status_code=303)
    response.headers.append(*ended_session_cookie(request.scope))
    return response


async def audit_page(request: Request) -> Response:
    dash = dashboard_of(request)
    return dash.render(request, "audit.html", entries=list(dash.auditor.recent),
                       audit_file=str(dash.auditor.path) if dash.auditor.path else "")


def _safe_next(request: Request, raw: str | None) -> str:
    """A same-app path to go back to; anything else becomes the overview."""
    root = str(request.scope.get("root_path", ""))
    if raw and raw.startswith(root + "/") and not raw.startswith("//") and "\\" not in raw:
        return raw
    return root + "/"


async def action(request: Request) -> Response:
    return await handle_action(dashboard_of(request), request, _safe_next)


async def _summary_or_none(dash: Dashboard, name: str) -> QueueSummary | None:
    if not name or not await dash.repo.knows(name):
        return None
    return await dash.repo.summary(name)


def _no_queue(dash: Dashboard, request: Request, name: str) -> Response:
    return dash.render(request, "message.html", 404, title="No such queue",
                       message=f"There is no queue {name!r} under prefix {dash.prefix!r}.",
                       login=False)


async def _gather(*aws: Any) -> list[Any]:
    return list(await asyncio.gather(*aws))


async def _redis_down(request: Request, exc: Exception) -> Response:
    dash = dashboard_of(request)
    return dash.render(request, "message.html", 503, title="Redis unavailable",
                       message=f"Redis error: {exc}", login=False)


def create_app(
    redis_url: str,
    prefix: str = "bull",
    *,
    token: str | None = None,
    basic_auth: tuple[str, str] | None = None,
    read_only: bool = False,
    queues: Sequence[str] | None = None,
    viewer_token: str | None = None,
    allowed_hosts: Sequence[str] | None = None,
    mask: Sequence[str] = (),
    audit_log: str | None = None,
    session_max_age: float = 8 * 3600,
    session_idle: float = 3600,
) -> DashboardApp:
    """The dashboard as an ASGI app.

    Args:
        redis_url: The Redis holding the queues.
        prefix: Bull's key prefix (``bull`` by default).
        token: Sign-in token (at least 8 characters).
        basic_auth: ``(user, password)`` for HTTP basic auth.
        read_only: Hide and refuse every action, for everyone.
        queues: Show these queues instead of scanning for the prefix's queues.
        viewer_token: A second token that signs in read-only.
        allowed_hosts: Host names answered (see :mod:`.security`); default: the
            loopback names without auth, any with auth.
        mask: JSON paths of data and return values hidden from read-only viewers
            (``customer.email``, ``items[*].card``).
        audit_log: A file to append the audit trail to (JSON lines).
        session_max_age: Seconds a browser session lives after sign-in.
        session_idle: Seconds a browser session lives without a request.

    Without a token or basic auth the app answers loopback clients only.

    Raises:
        ValueError: a bad setting, named.
    """
    if not isinstance(prefix, str) or not prefix:
        raise ValueError(f"prefix: must be a non-empty string, got {prefix!r}")
    for label, value in (("session_max_age", session_max_age), ("session_idle", session_idle)):
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ValueError(f"{label}: must be a number of seconds > 0, got {value!r}")
    if isinstance(mask, str):
        raise ValueError(f"mask: must be a list of paths, got the string {mask!r}")
    auth = AuthConfig(token=token, basic_auth=basic_auth, viewer_token=viewer_token,
                      allowed_hosts=tuple(allowed_hosts) if allowed_hosts is not None else None)
    dash = Dashboard(redis_url, prefix, auth, read_only=read_only, queues=queues, masks=mask,
                     audit_log=audit_log, session_max_age=session_max_age,
                     session_idle=session_idle)
    routes = [
        Route("/", overview),
        Route("/queue", queue_page),
        Route("/job", job_page),
        Route("/repeatable", repeatable_page),
        Route("/search", search_page),
        Route("/api/overview", api_overview),
        Route("/api/job", api_job),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["GET", "POST"]),
        Route("/audit", audit_page),
        Route("/action", action, methods=["POST"]),
        Mount("/static", StaticFiles(directory=_HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers={RedisError: _redis_down})
    setattr(app.state, STATE_KEY, dash)
    return DashboardApp(app, dash)


class DashboardApp(Guard):
    """The ASGI app :func:`create_app` returns; ``dashboard`` holds its settings."""

    def __init__(self, app: Starlette, dashboard: Dashboard) -> None:
        super().__init__(app, dashboard.auth, dashboard.refusal, dashboard.sessions,
                         dashboard.throttle, read_only=dashboard.read_only)
        self.dashboard = dashboard

    async def aclose(self) -> None:
        """Close the Redis connections (the host app's shutdown should call this)."""
        await self.dashboard.repo.close()
        await self.dashboard.client.aclose()
