"""Who is signed in: sessions that expire and can be ended, and throttled sign-ins.

A session is a random id in the ``pqd_session`` cookie, known to this process
only (:class:`SessionStore`): it expires after ``idle`` seconds without a
request and ``max_age`` seconds after sign-in, whichever comes first, and
``/logout`` ends it at once. A leaked cookie is therefore good for hours at
most, never "until the token changes"; restarting the dashboard ends every
session. (Sessions are not shared between processes: run one dashboard process,
as ``pyqueue dashboard`` does.)

:class:`LoginThrottle` counts failed sign-ins (a wrong token in the form, in
``?token=``, or as a bearer token; wrong basic-auth credentials) per client
address, and refuses further tries from an address with too many recent
failures, and from everyone when failures pile up across addresses (a spread
guessing run), with a ``Retry-After``.
"""

from __future__ import annotations

import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

Role = Literal["admin", "viewer"]


@dataclass(frozen=True, slots=True)
class User:
    """Who made a request: ``role`` decides what they may do, ``who`` names them in the audit."""

    role: Role
    who: str

    @property
    def may_act(self) -> bool:
        return self.role == "admin"


@dataclass(slots=True)
class Session:
    user: User
    created: float
    seen: float


@dataclass(slots=True)
class SessionStore:
    """Signed-in browsers of this process, by session id.

    Args:
        max_age: Seconds a session lives after sign-in, however busy.
        idle: Seconds a session lives without a request.
    """

    max_age: float = 8 * 3600
    idle: float = 3600
    _sessions: dict[str, Session] = field(default_factory=dict)

    def create(self, user: User) -> str:
        now = time.monotonic()
        self._prune(now)
        sid = secrets.token_urlsafe(32)
        self._sessions[sid] = Session(user, now, now)
        return sid

    def get(self, sid: str | None) -> User | None:
        """The session's user, refreshing its idle timer; None when unknown or expired."""
        if not sid:
            return None
        found = self._sessions.get(sid)
        if found is None:
            return None
        now = time.monotonic()
        if now - found.created > self.max_age or now - found.seen > self.idle:
            del self._sessions[sid]
            return None
        found.seen = now
        return found.user

    def end(self, sid: str | None) -> bool:
        """End one session (``/logout``); True when there was one."""
        return sid is not None and self._sessions.pop(sid, None) is not None

    def _prune(self, now: float) -> None:
        stale = [sid for sid, s in self._sessions.items()
                 if now - s.created > self.max_age or now - s.seen > self.idle]
        for sid in stale:
            del self._sessions[sid]


@dataclass(slots=True)
class LoginThrottle:
    """Failed sign-ins per client address in a sliding window, and in all.

    Args:
        per_client: Failures an address may have in ``window`` seconds.
        overall: Failures all addresses together may have in ``window``.
        window: The window, in seconds.
    """

    per_client: int = 5
    overall: int = 50
    window: float = 60.0
    _by_client: dict[str, deque[float]] = field(default_factory=dict)
    _all: deque[float] = field(default_factory=deque)

    def _trim(self, stamps: deque[float], now: float) -> None:
        while stamps and now - stamps[0] > self.window:
            stamps.popleft()

    def retry_after(self, client: str) -> int:
        """Seconds until ``client`` may try again; 0 when it may try now."""
        now = time.monotonic()
        self._trim(self._all, now)
        waits = []
        if len(self._all) >= self.overall:
            waits.append(self.window - (now - self._all[0]))
        mine = self._by_client.get(client)
        if mine is not None:
            self._trim(mine, now)
            if len(mine) >= self.per_client:
                waits.append(self.window - (now - mine[0]))
            elif not mine:
                del self._by_client[client]
        return max(1, int(max(waits)) + 1) if waits else 0

    def failed(self, client: str) -> None:
        now = time.monotonic()
        self._all.append(now)
        self._by_client.setdefault(client, deque()).append(now)
        if len(self._by_client) > 10_000:  # a flood of addresses must not grow this for ever
            for key in [k for k, v in self._by_client.items() if not v
                        or now - v[-1] > self.window]:
                del self._by_client[key]

    def succeeded(self, client: str) -> None:
        self._by_client.pop(client, None)
