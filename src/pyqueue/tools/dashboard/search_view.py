"""The search page: a form over :func:`pyqueue.tools.search.search_jobs`, the CLI's search.

A data value is read as JSON when it parses (``42``, ``true``, ``"42"``) and as a
plain string otherwise, so ``alice@example.com`` needs no quotes. Results show
each job's state; a user with every right can then retry or remove every match
(after a confirmation page that counts them). A read-only viewer of a dashboard
with masked fields cannot search the data's text, nor a masked path: a search
that matches or not would tell the hidden value.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from pyqueue import InvalidOptionsError
from pyqueue.tools import bulk
from pyqueue.tools.dashboard.masking import covers
from pyqueue.tools.search import SEARCH_STATES, parse_path, search_jobs

if TYPE_CHECKING:
    from pyqueue.tools.dashboard.core import Dashboard

PAGE = 50
# Entries one page may examine: keeps a page on a huge queue with rare matches
# to a bounded amount of Redis work; the "more" link carries on from the cursor.
MAX_EXAMINED = 20_000
FIELDS = ("queue", "state", "id", "name", "data_path", "data_value", "text", "failed_reason")


def parse_value(raw: str) -> Any:
    """JSON when it parses, else the text itself; empty means no value."""
    if raw == "":
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def criteria_of(params: dict[str, str]) -> bulk.Criteria:
    """The search's filters from the form's fields (empty fields: no filter)."""
    return bulk.Criteria(
        state=params.get("state") or None, id=params.get("id") or None,
        name=params.get("name") or None, data_path=params.get("data_path") or None,
        data_value=parse_value(params.get("data_value", "")), text=params.get("text") or None,
        failed_reason=params.get("failed_reason") or None,
    )


def refused_for(dash: Dashboard, request: Request, params: dict[str, str]) -> str:
    """Why this user may not run this search ("" when they may)."""
    if not dash.masks or dash.user(request).may_act:
        return ""
    if params.get("text"):
        return "Read-only viewers cannot search the data's text: some fields are masked."
    path = params.get("data_path")
    if path:
        try:
            segments = parse_path(path)
        except InvalidOptionsError:
            return ""  # the search itself names the problem
        if covers(dash.masks, segments):
            return f"Read-only viewers cannot search {path!r}: it is (or holds) a masked field."
    return ""


async def search_page(dash: Dashboard, request: Request) -> Response:
    params = {k: request.query_params.get(k, "").strip() for k in FIELDS}
    cursor = request.query_params.get("cursor", "0") or "0"
    names = await dash.repo.queue_names(wait=0.5) or []
    if params["queue"] and params["queue"] not in names and await dash.repo.knows(params["queue"]):
        names = [*names, params["queue"]]
    context: dict[str, Any] = {
        "params": params, "queue_names": names, "search_states": SEARCH_STATES,
        "results": [], "cursor": "0", "examined": 0, "error": "", "searched": False,
        "now_ms": int(time.time() * 1000),
    }
    if params["queue"]:
        if params["queue"] not in names:
            context["error"] = f"There is no queue {params['queue']!r}."
            return dash.render(request, "search.html", 404, **context)
        wanted = {k: v for k, v in params.items() if k != "queue" and v}
        if not wanted:
            context["error"] = "Give at least one of id, name, data, text or failed reason."
            return dash.render(request, "search.html", 400, **context)
        refused = refused_for(dash, request, params)
        if refused:
            context["error"] = refused
            return dash.render(request, "search.html", 403, **context)
        criteria = criteria_of(params)
        try:
            page = await search_jobs(
                dash.repo.queue(params["queue"]), state=criteria.state, id=criteria.id,
                name=criteria.name, data_path=criteria.data_path,
                data_value=criteria.data_value, text=criteria.text,
                failed_reason=criteria.failed_reason, cursor=cursor, count=PAGE,
                max_examined=MAX_EXAMINED,
            )
        except InvalidOptionsError as exc:
            context["error"] = str(exc)
            return dash.render(request, "search.html", 400, **context)
        context.update(results=list(zip(page.jobs, page.states, strict=True)),
                       cursor=page.cursor, examined=page.examined, searched=True)
    return dash.render(request, "search.html", **context)
