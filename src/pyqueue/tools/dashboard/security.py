"""Access control for the dashboard: Host allowlist, sign-in, roles, throttling, CSRF.

:class:`Guard` is plain ASGI middleware in front of every route. In order:

1. **Host allowlist** (DNS rebinding): a request whose ``Host`` is not allowed
   gets a 400 before anything else. Without auth the list is the loopback
   names (``localhost``, ``127.0.0.1``, ``::1``), so a page on an attacker's
   name that resolves to 127.0.0.1 reads nothing; ``allowed_hosts`` replaces
   it (``"*"`` allows any, ``".example.com"`` a domain and its subdomains).
   With auth, any Host is allowed unless ``allowed_hosts`` says otherwise: a
   rebound page has no credentials for this origin.
2. **Who is asking** (:class:`~pyqueue.tools.dashboard.sessions.User`). With a
   token, a browser signs in once (``/login`` or ``?token=``) and gets a
   session cookie (a random id, never the token; it expires, and ``/logout``
   ends it); API clients send ``Authorization: Bearer <token>``. A
   ``viewer_token`` signs in read-only. With basic auth the browser's own
   prompt is used. With neither, only loopback clients are answered.
   Failed sign-ins are throttled per client address (429 and ``Retry-After``).
3. **CSRF**: every response carries a random ``pqd_csrf`` cookie (SameSite=Strict);
   forms post ``HMAC(secret, cookie)``, which a page on another origin can
   neither read nor compute, and a POST whose Origin names another host is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import re
import secrets
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from pyqueue.tools.dashboard.sessions import LoginThrottle, SessionStore, User

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
USER_SCOPE_KEY = "pyqueue.dashboard.user"
# Defence in depth only: every value is escaped in the templates whatever this says.
CSP = (
    b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    b"object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
# Paths answered without signing in: the sign-in form and its stylesheet.
_OPEN_PATHS = ("/login", "/static/")
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
_HOST_ENTRY = re.compile(r"^(\*|\.?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*"
                         r"|[0-9a-f:.]+)$")


def _check_hosts(hosts: Sequence[str] | None) -> tuple[str, ...] | None:
    if hosts is None:
        return None
    if isinstance(hosts, str) or not all(isinstance(h, str) for h in hosts):
        raise ValueError(f"allowed_hosts: must be a list of host names, got {hosts!r}")
    out = tuple(h.strip().lower().strip("[]") for h in hosts)
    for host in out:
        if not _HOST_ENTRY.match(host):
            raise ValueError(
                f"allowed_hosts: {host!r} is not a host name, an IP address, '*' or "
                "'.domain' (a domain and its subdomains)"
            )
    return out


@dataclass(frozen=True, slots=True)
class AuthConfig:
    """How the dashboard is protected. No token and no basic auth: localhost only.

    Args:
        token: Signs in with every right.
        viewer_token: Signs in read-only (no actions; masked fields hidden).
        basic_auth: ``(user, password)``; signs in with every right.
        allowed_hosts: Host names the dashboard answers to (see the module doc);
            None: loopback names without auth, any with auth.
    """

    token: str | None = None
    basic_auth: tuple[str, str] | None = None
    viewer_token: str | None = None
    allowed_hosts: tuple[str, ...] | None = field(default=None)

    def __post_init__(self) -> None:
        for label, value in (("token", self.token), ("viewer_token", self.viewer_token)):
            if value is not None and (not isinstance(value, str) or len(value) < 8):
                raise ValueError(f"{label}: must be a string of at least 8 characters")
        if self.token is not None and self.token == self.viewer_token:
            raise ValueError("viewer_token: must differ from token")
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
        object.__setattr__(self, "allowed_hosts", _check_hosts(self.allowed_hosts))

    @property
    def enabled(self) -> bool:
        return self.tokens_enabled or self.basic_auth is not None

    @property
    def tokens_enabled(self) -> bool:
        return self.token is not None or self.viewer_token is not None

    def user_of_token(self, candidate: str) -> User | None:
        """The user a token signs in as, or None for a wrong one (compared in constant time)."""
        found = None
        for secret, user in ((self.token, User("admin", "token")),
                             (self.viewer_token, User("viewer", "viewer token"))):
            if secret is not None and hmac.compare_digest(candidate.encode(), secret.encode()):
                found = user
        return found

    def basic_user(self, header: str) -> User | None:
        if self.basic_auth is None or not header.lower().startswith("basic "):
            return None
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, _, password = decoded.partition(":")
        want_user, want_password = self.basic_auth
        # Both compared, always, so timing says nothing about which one was wrong.
        user_ok = hmac.compare_digest(user.encode(), want_user.encode())
        password_ok = hmac.compare_digest(password.encode(), want_password.encode())
        return User("admin", f"basic:{user}") if user_ok and password_ok else None

    def host_ok(self, host_header: str | None) -> bool:
        """Whether a request's ``Host`` is one this dashboard answers to."""
        allowed = self.allowed_hosts
        if allowed is None and self.enabled:
            return True
        if not host_header:
            return False
        name = _host_name(host_header)
        if allowed is None:
            return name in LOOPBACK_NAMES or _loopback_ip(name)
        return any(
            entry in ("*", name)
            or (entry.startswith(".") and (name == entry[1:] or name.endswith(entry)))
            for entry in allowed
        )


def _host_name(header: str) -> str:
    """The name of a Host header, lower-case, without port or IPv6 brackets."""
    text = header.strip().lower()
    if text.startswith("["):
        return text[1:].partition("]")[0]
    if text.count(":") == 1:
        return text.partition(":")[0]
    return text.rstrip(".")


def _loopback_ip(name: str) -> bool:
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    return _loopback_ip(host.split("%")[0])


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


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def user_of(scope: Scope) -> User:
    """The user the guard let in (a viewer when none was set: never more rights by mistake)."""
    found = scope.get(USER_SCOPE_KEY)
    return found if isinstance(found, User) else User("viewer", "unknown")


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


def _cookies(headers: dict[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in headers.get("cookie", "").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep:
            out[name] = value
    return out


def cookie_header(name: str, value: str, scope: Scope, *, http_only: bool = True,
                  max_age: int | None = None) -> bytes:
    path = scope.get("root_path") or "/"
    attrs = [f"{name}={value}", f"Path={path}", "SameSite=Strict"]
    if max_age is not None:
        attrs.append(f"Max-Age={max_age}")
    if http_only:
        attrs.append("HttpOnly")
    if scope.get("scheme") == "https":
        attrs.append("Secure")
    return "; ".join(attrs).encode("latin-1")


Refusal = Callable[[Send], Awaitable[None]]


class Guard:
    """ASGI middleware: check the Host, let in who may come, hand out the CSRF cookie.

    Args:
        app: The dashboard's router.
        auth: Token, viewer token, basic-auth and host settings.
        render_refusal: Builds the HTML body of a refusal page from a status and message.
        sessions: The signed-in browsers.
        throttle: Failed sign-ins per client.
        read_only: Everyone is a viewer.
    """

    def __init__(
        self, app: ASGIApp, auth: AuthConfig, render_refusal: Callable[[int, str, bool], bytes],
        sessions: SessionStore, throttle: LoginThrottle, *, read_only: bool = False,
    ) -> None:
        self.app = app
        self.auth = auth
        self.render_refusal = render_refusal
        self.sessions = sessions
        self.throttle = throttle
        self.read_only = read_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        if not self.auth.host_ok(headers.get("host")):
            shown = headers.get("host", "")[:100]
            await self.refuse(400, f"Host {shown!r} is not one this dashboard answers to. "
                              "Start it with --allowed-host NAME to add one.", login=False)(send)
            return
        cookies = _cookies(headers)
        path = route_path(scope)
        user, refusal = self._check(scope, headers, cookies, path)
        if refusal is not None:
            await refusal(send)
            return
        if self.read_only and user is not None:
            user = User("viewer", user.who)
        scope[USER_SCOPE_KEY] = user
        if self.auth.tokens_enabled:
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
                    extra.append((b"set-cookie", cookie_header(CSRF_COOKIE, new_nonce, scope)))
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    def _check(
        self, scope: Scope, headers: dict[str, str], cookies: dict[str, str], path: str
    ) -> tuple[User | None, Refusal | None]:
        auth = self.auth
        if not auth.enabled:
            if not is_loopback(client_address(scope)):
                return None, self.refuse(
                    403, "No authentication is configured, so this dashboard answers "
                    "localhost only. Start it with a token or basic auth.", login=False
                )
            return User("admin", "localhost (no auth)"), None
        session_user = self.sessions.get(cookies.get(SESSION_COOKIE))
        if session_user is not None:
            return session_user, None
        if path.startswith(_OPEN_PATHS) and auth.tokens_enabled:
            return None, None
        client = client_address(scope)
        authorization = headers.get("authorization", "")
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        presented = (authorization.lower().startswith(("basic ", "bearer "))
                     or (auth.tokens_enabled and "token" in query))
        if presented and (wait := self.throttle.retry_after(client)):
            return None, self.refuse(429, f"Too many failed sign-ins from {client}: try again "
                                     f"in {wait} s.", login=False, retry_after=wait)
        if auth.basic_auth is not None and (user := auth.basic_user(authorization)):
            self.throttle.succeeded(client)
            return user, None
        if auth.tokens_enabled:
            if authorization.lower().startswith("bearer "):
                user = auth.user_of_token(authorization[7:].strip())
                if user is not None:
                    return user, None
                self.throttle.failed(client)
                return None, self.refuse(401, "Wrong token.", login=True)
            if "token" in query:
                user = auth.user_of_token(query["token"])
                if user is not None:
                    return user, None
                self.throttle.failed(client)
                return None, self.refuse(401, "Wrong token.", login=True)
            if authorization.lower().startswith("basic "):
                self.throttle.failed(client)
            return None, self.refuse(401, "Sign in with the dashboard's token.", login=True,
                                     basic=auth.basic_auth is not None)
        if authorization:
            self.throttle.failed(client)
        return None, self.refuse(401, "Basic authentication required.", login=False, basic=True)

    def refuse(
        self, status: int, message: str, *, login: bool, basic: bool = False,
        retry_after: int | None = None,
    ) -> Refusal:
        body = self.render_refusal(status, message, login)
        headers = [
            (b"content-type", b"text/html; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-store"),
        ]
        if basic:
            headers.append((b"www-authenticate", b'Basic realm="pyqueue dashboard"'))
        if retry_after is not None:
            headers.append((b"retry-after", str(retry_after).encode()))

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
        headers = [(b"location", location.encode("latin-1", "replace")), (b"content-length", b"0")]
        user = self.auth.user_of_token(query["token"])
        if user is not None:
            self.throttle.succeeded(client_address(scope))
            headers.append((b"set-cookie", session_cookie(self.sessions, user, scope)[1].encode()))
        await send({"type": "http.response.start", "status": 303, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


def session_cookie(sessions: SessionStore, user: User, scope: Scope) -> tuple[str, str]:
    """A new session for ``user``, as the Set-Cookie header a successful sign-in sends."""
    sid = sessions.create(user)
    return "set-cookie", cookie_header(SESSION_COOKIE, sid, scope).decode()


def ended_session_cookie(scope: Scope) -> tuple[str, str]:
    """The Set-Cookie header that clears the session cookie (``/logout``)."""
    return "set-cookie", cookie_header(SESSION_COOKIE, "", scope, max_age=0).decode()
