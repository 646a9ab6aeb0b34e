"""Access control for the dashboard: token or basic auth, the localhost rule, CSRF.

:class:`Guard` is plain ASGI middleware in front of every route. With a token,
a browser signs in once (``/login`` or ``?token=``) and gets a session cookie
holding an HMAC of the token, never the token itself; API clients can send
``Authorization: Bearer <token>``. With basic auth the browser's own prompt is
used. With neither, only loopback clients are answered.

CSRF: every response carries a random ``pqd_csrf`` cookie (SameSite=Strict);
forms post ``HMAC(secret, cookie)``, which a page on another origin can neither
read nor compute, and a POST whose Origin names another host is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SESSION_COOKIE = "pqd_session"
CSRF_COOKIE = "pqd_csrf"
# The outcome of an action, shown once on the page it returns to.
FLASH_COOKIE = "pqd_flash"
CSRF_SCOPE_KEY = "pyqueue.dashboard.csrf_nonce"
# Defence in depth only: every value is escaped in the templates whatever this says.
CSP = (
    b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    b"object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
# Paths answered without signing in: the sign-in form and its stylesheet.
_OPEN_PATHS = ("/login", "/static/")


@dataclass(frozen=True, slots=True)
class AuthConfig:
    """How the dashboard is protected. Both None: localhost only."""

    token: str | None = None
    basic_auth: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        if self.token is not None and (not isinstance(self.token, str) or len(self.token) < 8):
            raise ValueError("token: must be a string of at least 8 characters")
        if self.basic_auth is not None:
            pair = self.basic_auth
            if (
                not isinstance(pair, tuple) or len(pair) != 2
                or not all(isinstance(p, str) and p for p in pair) or ":" in pair[0]
            ):
                raise ValueError(
                    "basic_auth: must be a (user, password) pair of non-empty strings, "
                    "the user without ':'"
                )

    @property
    def enabled(self) -> bool:
        return self.token is not None or self.basic_auth is not None

    def session_value(self) -> str:
        assert self.token is not None
        return hmac.new(self.token.encode(), b"pyqueue-dashboard-session", "sha256").hexdigest()

    def token_ok(self, candidate: str) -> bool:
        return self.token is not None and hmac.compare_digest(
            candidate.encode(), self.token.encode()
        )

    def basic_ok(self, header: str) -> bool:
        if self.basic_auth is None or not header.lower().startswith("basic "):
            return False
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, _, password = decoded.partition(":")
        want_user, want_password = self.basic_auth
        # Both compared, always, so timing says nothing about which one was wrong.
        user_ok = hmac.compare_digest(user.encode(), want_user.encode())
        password_ok = hmac.compare_digest(password.encode(), want_password.encode())
        return user_ok and password_ok


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def csrf_for(secret: bytes, nonce: str) -> str:
    return hmac.new(secret, nonce.encode(), hashlib.sha256).hexdigest()


def csrf_ok(secret: bytes, nonce: str | None, submitted: str | None) -> bool:
    if not nonce or not submitted:
        return False
    return hmac.compare_digest(csrf_for(secret, nonce), submitted)


def origin_ok(headers: dict[str, str]) -> bool:
    """A POST's Origin (when the browser sends one) must be this host."""
    origin = headers.get("origin")
    if origin is None:
        return True
    if origin == "null":
        return False
    return urlsplit(origin).netloc == headers.get("host", "")


def route_path(scope: Scope) -> str:
    """The path below the dashboard's mount point (servers differ on including it)."""
    root = scope.get("root_path", "")
    path: str = scope["path"]
    if root and path.startswith(root):
        path = path[len(root):]
    return path or "/"


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


def _cookies(headers: dict[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in headers.get("cookie", "").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep:
            out[name] = value
    return out


def _cookie_header(name: str, value: str, scope: Scope, *, http_only: bool = True) -> bytes:
    path = scope.get("root_path") or "/"
    attrs = [f"{name}={value}", f"Path={path}", "SameSite=Strict"]
    if http_only:
        attrs.append("HttpOnly")
    if scope.get("scheme") == "https":
        attrs.append("Secure")
    return "; ".join(attrs).encode("latin-1")


class Guard:
    """ASGI middleware: refuse unauthenticated requests, hand out the CSRF cookie.

    Args:
        app: The dashboard's router.
        auth: Token and/or basic-auth settings.
        render_refusal: Builds the HTML body of a refusal page from a status and message.
    """

    def __init__(
        self, app: ASGIApp, auth: AuthConfig, render_refusal: Callable[[int, str, bool], bytes]
    ) -> None:
        self.app = app
        self.auth = auth
        self.render_refusal = render_refusal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        cookies = _cookies(headers)
        path = route_path(scope)
        refusal = self._check(scope, headers, cookies, path)
        if refusal is not None:
            await refusal(send)
            return
        if self.auth.token is not None:
            query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
            if "token" in query:
                await self._token_redirect(scope, query, send)
                return
        nonce = cookies.get(CSRF_COOKIE)
        new_nonce = None
        if not nonce or len(nonce) != 32:
            nonce = new_nonce = secrets.token_hex(16)
        scope[CSRF_SCOPE_KEY] = nonce

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),
                    (b"x-frame-options", b"DENY"),
                    (b"content-security-policy", CSP),
                ]
                if new_nonce is not None:
                    extra.append((b"set-cookie", _cookie_header(CSRF_COOKIE, new_nonce, scope)))
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    def _check(
        self, scope: Scope, headers: dict[str, str], cookies: dict[str, str], path: str
    ) -> Callable[[Send], Awaitable[None]] | None:
        auth = self.auth
        if not auth.enabled:
            client = scope.get("client")
            if client is None or not is_loopback(client[0]):
                return self._refuse(
                    403, "No authentication is configured, so this dashboard answers "
                    "localhost only. Start it with a token or basic auth.", login=False
                )
            return None
        if path.startswith(_OPEN_PATHS) and auth.token is not None:
            return None
        authorization = headers.get("authorization", "")
        if auth.basic_auth is not None and auth.basic_ok(authorization):
            return None
        if auth.token is not None:
            if authorization.lower().startswith("bearer ") and auth.token_ok(
                authorization[7:].strip()
            ):
                return None
            session = cookies.get(SESSION_COOKIE)
            if session and hmac.compare_digest(session, auth.session_value()):
                return None
            query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
            if "token" in query:
                if auth.token_ok(query["token"]):
                    return None
                return self._refuse(401, "Wrong token.", login=True)
            return self._refuse(401, "Sign in with the dashboard's token.", login=True)
        return self._refuse(401, "Basic authentication required.", login=False, basic=True)

    def _refuse(
        self, status: int, message: str, *, login: bool, basic: bool = False
    ) -> Callable[[Send], Awaitable[None]]:
        body = self.render_refusal(status, message, login)
        headers = [
            (b"content-type", b"text/html; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-store"),
        ]
        if basic:
            headers.append((b"www-authenticate", b'Basic realm="pyqueue dashboard"'))

        async def respond(send: Send) -> None:
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        return respond

    async def _token_redirect(self, scope: Scope, query: dict[str, str], send: Send) -> None:
        """A correct ``?token=`` becomes a session cookie; the token leaves the URL."""
        rest = {k: v for k, v in query.items() if k != "token"}
        location = scope.get("root_path", "") + route_path(scope)
        if rest:
            location += "?" + urlencode(rest)
        await send({
            "type": "http.response.start",
            "status": 303,
            "headers": [
                (b"location", location.encode("latin-1", "replace")),
                (b"set-cookie", _cookie_header(SESSION_COOKIE, self.auth.session_value(), scope)),
                (b"content-length", b"0"),
            ],
        })
        await send({"type": "http.response.body", "body": b""})


def session_cookie(auth: AuthConfig, scope: Scope) -> tuple[str, str]:
    """The Set-Cookie header a successful sign-in sends."""
    return "set-cookie", _cookie_header(SESSION_COOKIE, auth.session_value(), scope).decode()
