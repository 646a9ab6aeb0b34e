"""The search page: a form over :func:`pyqueue.tools.search.search_jobs`, the CLI's search.

A data value is read as JSON when it parses (``42``, ``true``, ``"42"``) and as a
plain string otherwise, so ``alice@example.com`` needs no quotes.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from pyqueue.errors import InvalidOptionsError
from pyqueue.tools.search import SEARCH_STATES, search_jobs

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


async def search_page(dash: Dashboard, request: Request) -> Response:
    params = {k: request.query_params.get(k, "").strip() for k in FIELDS}
    cursor = request.query_params.get("cursor", "0") or "0"
    names = await dash.repo.queue_names(wait=0.5) or []
    if params["queue"] and params["queue"] not in names and await dash.repo.knows(params["queue"]):
        names = [*names, params["queue"]]
    context: dict[str, Any] = {
        "params": params, "queue_names": names, "search_states": SEARCH_STATES,
        "jobs": [], "cursor": "0", "examined": 0, "error": "", "searched": False,
    }
    if params["queue"]:
        if params["queue"] not in names:
            context["error"] = f"There is no queue {params['queue']!r}."
            return dash.render(request, "search.html", 404, **context)
        wanted = {k: v for k, v in params.items() if k != "queue" and v}
        if not wanted:
            context["error"] = "Give at least one of id, name, data, text or failed reason."
            return dash.render(request, "search.html", 400, **context)
        try:
            page = await search_jobs(
                dash.repo.queue(params["queue"]),
                state=params["state"] or None,
                id=params["id"] or None,
                name=params["name"] or None,
                data_path=params["data_path"] or None,
                data_value=parse_value(params["data_value"]),
                text=params["text"] or None,
                failed_reason=params["failed_reason"] or None,
                cursor=cursor,
                count=PAGE,
                max_examined=MAX_EXAMINED,
            )
        except InvalidOptionsError as exc:
            context["error"] = str(exc)
            return dash.render(request, "search.html", 400, **context)
        context.update(jobs=page.jobs, cursor=page.cursor, examined=page.examined, searched=True)
    return dash.render(request, "search.html", **context)
