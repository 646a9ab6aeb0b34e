"""What every page shares: the dashboard's settings, its Redis client, templates, and who asks."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlencode

import jinja2
import redis.asyncio as aioredis
from starlette.requests import Request
from starlette.responses import HTMLResponse

from pyqueue.tools.dashboard.audit import Auditor
from pyqueue.tools.dashboard.data import (
    STATES,
    Repository,
    format_duration,
    format_ms,
    pretty_json,
    preview_json,
)
from pyqueue.tools.dashboard.masking import mask, parse_mask
from pyqueue.tools.dashboard.security import (
    CSRF_SCOPE_KEY,
    FLASH_COOKIE,
    SESSION_COOKIE,
    AuthConfig,
    csrf_for,
    route_path,
    user_of,
)
from pyqueue.tools.dashboard.sessions import LoginThrottle, SessionStore, User
from pyqueue.tools.deployments import open_client

_HERE = Path(__file__).resolve().parent


class Dashboard:
    """Settings and shared objects of one dashboard app."""

    def __init__(
        self,
        redis_url: str,
        prefix: str,
        auth: AuthConfig,
        *,
        read_only: bool,
        queues: Sequence[str] | None,
        masks: Sequence[str] = (),
        audit_log: str | None = None,
        session_max_age: float = 8 * 3600,
        session_idle: float = 3600,
    ) -> None:
        # A Sentinel or Cluster URL gets the tools' client for it (SCAN on every master).
        self.client = (
            open_client(redis_url, connect_timeout=5, read_timeout=30)
            if "+" in redis_url.partition("://")[0] else aioredis.Redis.from_url(redis_url)
        )
        self.repo = Repository(self.client, prefix, list(queues) if queues else None)
        self.prefix = prefix
        self.auth = auth
        self.read_only = read_only
        self.masks = tuple(parse_mask(m) for m in masks)
        self.auditor = Auditor(audit_log)
        self.sessions = SessionStore(max_age=session_max_age, idle=session_idle)
        self.throttle = LoginThrottle()
        self.csrf_secret = secrets.token_bytes(32)
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(_HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self.env.filters["ms"] = format_ms
        self.env.filters["pretty"] = pretty_json
        self.env.filters["preview"] = preview_json
        self.env.filters["duration"] = format_duration

    def user(self, request: Request | None) -> User:
        """Who asks (a viewer whenever the dashboard is read-only)."""
        if request is None:
            return User("viewer", "unknown")
        found = user_of(request.scope)
        return User("viewer", found.who) if self.read_only else found

    def masked(self, request: Request | None, value: Any) -> Any:
        """``value`` with the masked paths hidden, for a viewer; as it is for an admin."""
        if not self.masks or self.user(request).may_act:
            return value
        return mask(value, self.masks)

    def render(
        self, request: Request | None, template: str, status: int = 200, **context: Any
    ) -> HTMLResponse:
        response = HTMLResponse(
            self.render_bytes(request, template, **context), status_code=status
        )
        if request is not None and FLASH_COOKIE in request.cookies:
            response.delete_cookie(FLASH_COOKIE, path=request.scope.get("root_path") or "/")
        return response

    def render_bytes(self, request: Request | None, template: str, **context: Any) -> bytes:
        root = request.scope.get("root_path", "") if request is not None else ""
        nonce = request.scope.get(CSRF_SCOPE_KEY) if request is not None else None
        user = self.user(request)
        base = {
            "root": root,
            "prefix": self.prefix,
            "read_only": not user.may_act,
            "user": user,
            "signed_in": request is not None and SESSION_COOKIE in request.cookies,
            "auth_enabled": self.auth.enabled,
            "token_auth": self.auth.tokens_enabled,
            "masked": (lambda value: self.masked(request, value)),
            "csrf": csrf_for(self.csrf_secret, nonce) if nonce else "",
            "states": STATES,
            "flash": unquote(request.cookies.get(FLASH_COOKIE, "")) if request is not None else "",
            "url": lambda path, **q: page_url(root, path, **q),
            "here": _here(request) if request is not None else root + "/",
        }
        return self.env.get_template(template).render(**base, **context).encode()

    def refusal(self, status: int, message: str, login: bool) -> bytes:
        return self.render_bytes(None, "message.html", title=f"{status}", message=message,
                                 login=login)


def page_url(root: str, path: str, **query: Any) -> str:
    clean = {k: v for k, v in query.items() if v is not None and v != ""}
    return root + path + ("?" + urlencode(clean) if clean else "")


def _here(request: Request) -> str:
    """This page's own URL, for forms that come back to it."""
    query = bytes(request.scope.get("query_string", b"")).decode("latin-1")
    here = str(request.scope.get("root_path", "")) + route_path(request.scope)
    return here + ("?" + query if query else "")
