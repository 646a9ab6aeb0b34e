"""Running the dashboard: :func:`serve` under uvicorn, :func:`mount` into a host app."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import uvicorn

from pyqueue.tools.dashboard.app import DashboardApp, create_app
from pyqueue.tools.dashboard.security import is_loopback

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def check_bind(host: str, *, auth: bool) -> None:
    """Without auth, only a loopback address may be bound.

    Raises:
        ValueError: ``host`` is not loopback and no token or basic auth is set.
    """
    if not auth and not is_loopback(host):
        raise ValueError(
            f"host: refusing to listen on {host!r} without authentication; "
            "set a token or basic auth, or bind 127.0.0.1"
        )


def serve(
    *,
    redis_url: str = "redis://127.0.0.1:6379/0",
    prefix: str = "bull",
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    token: str | None = None,
    basic_auth: tuple[str, str] | None = None,
    read_only: bool = False,
    queues: Sequence[str] | None = None,
    log_level: str = "info",
    **options: Any,
) -> None:
    """Serve the dashboard with uvicorn until interrupted.

    ``options`` are :func:`create_app`'s others (``viewer_token``,
    ``allowed_hosts``, ``mask``, ``audit_log``, ``session_max_age``, ``session_idle``).

    Raises:
        ValueError: a bad setting (a short token, no auth on a public address, ...).
    """
    auth = token is not None or basic_auth is not None or options.get("viewer_token") is not None
    check_bind(host, auth=auth)
    app = create_app(redis_url, prefix, token=token, basic_auth=basic_auth,
                     read_only=read_only, queues=queues, **options)
    if not auth:
        print(
            f"pyqueue dashboard: no authentication configured, listening on {host} only "
            "(localhost); set a token or basic auth to serve other hosts",
            file=sys.stderr,
        )
    print(f"pyqueue dashboard: http://{_url_host(host)}:{port}/ (prefix {prefix!r}"
          f"{', read-only' if read_only else ''})", file=sys.stderr)
    # No access log: a first visit's URL can hold ?token=, which must not land in logs.
    uvicorn.run(app, host=host, port=port, log_level=log_level, lifespan="off",
                access_log=False)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def mount(
    app: Any, path: str, redis_url: str, prefix: str = "bull", **options: Any
) -> DashboardApp:
    """Mount a dashboard at ``path`` of a Starlette or FastAPI ``app``; returns it.

    ``options`` are :func:`create_app`'s (``token``, ``basic_auth``, ``read_only``,
    ``queues``). Call the returned app's ``aclose()`` on shutdown.

    Raises:
        ValueError: ``path`` does not start with ``/`` or ends with one.
    """
    if not path.startswith("/") or (path.endswith("/") and path != "/") or path == "/":
        raise ValueError(f"path: must look like '/dashboard', got {path!r}")
    dashboard = create_app(redis_url, prefix, **options)
    app.mount(path, dashboard)
    return dashboard
