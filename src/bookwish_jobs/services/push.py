"""Push notifications: Expo's push HTTP API, or log-only (the embedded default).

Expo answers ``POST /--/api/v2/push/send`` (at most 100 messages) with one ticket per
message, in order: ``{"status": "ok", "id": ...}`` or ``{"status": "error",
"message": ..., "details": {"error": "DeviceNotRegistered"}}``. The ticket errors are
``DeviceNotRegistered``, ``MessageTooBig``, ``MessageRateExceeded`` and
``InvalidCredentials``; what to do about each is the caller's decision.

Expo refuses a message whose whole payload (title, body, data, ...) is over 4096 bytes
with a ``MessageTooBig`` ticket. :func:`fit_for_expo` shortens the title and body of a
message to fit, so that a long notification is still pushed (its full text goes by
email for the critical types).

A request Expo refuses as a whole comes back as ``{"errors": [{"code": ...,
"message": ...}]}``:

- 429 (``TOO_MANY_REQUESTS``), 5xx, an unreachable server or a malformed answer →
  :class:`PushServiceError`: the same request may succeed later.
- any other 4xx (``PUSH_TOO_MANY_NOTIFICATIONS``, ``VALIDATION_ERROR``, a bad access
  token, a wrong URL, ...) → :class:`PushRequestRejected`: sending it again will not
  help. For ``PUSH_TOO_MANY_EXPERIENCE_IDS`` (tokens of several Expo projects in one
  request) it carries the tokens per project, so the caller can send one request each.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from bookwish_jobs.logs import log_event
from bookwish_jobs.services._http import post_json

SEND_PATH = "/--/api/v2/push/send"
MAX_BATCH = 100  # Expo's limit per request
DEVICE_NOT_REGISTERED = "DeviceNotRegistered"
MESSAGE_RATE_EXCEEDED = "MessageRateExceeded"
MESSAGE_TOO_BIG = "MessageTooBig"
INVALID_CREDENTIALS = "InvalidCredentials"
MIXED_PROJECTS = "PUSH_TOO_MANY_EXPERIENCE_IDS"
# Expo's limit is 4096 bytes for the whole platform payload; Expo and Apple or Google add
# their own fields around ours, so title, body and data get a little less.
PAYLOAD_BUDGET = 3_800
# A device shows a line or two of a title; a longer one only eats the body's room.
TITLE_MAX_CHARS = 200
ELLIPSIS = "\u2026"


class PushServiceError(Exception):
    """The push service failed the whole request; the same request may succeed later."""


class PushRequestRejected(Exception):
    """The push service refused the whole request as invalid; resending it will not help.

    Attributes:
        status: the HTTP status.
        codes: Expo's error codes, e.g. ``["PUSH_TOO_MANY_EXPERIENCE_IDS"]``.
        projects: for ``PUSH_TOO_MANY_EXPERIENCE_IDS``, the request's tokens grouped by
            Expo project; otherwise empty.
    """

    def __init__(self, status: int, errors: list[dict[str, Any]]) -> None:
        self.status = status
        self.codes = [str(e.get("code")) for e in errors]
        self.projects = _project_groups(errors)
        super().__init__(f"Expo push service answered {status}: {_describe(errors)}")


@dataclass(frozen=True, slots=True)
class PushMessage:
    to: str
    title: str
    body: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PushTicket:
    ok: bool
    id: str | None = None
    error: str | None = None  # Expo's details.error, e.g. "DeviceNotRegistered"
    message: str | None = None
    # False when nothing really went out (no push service configured): such a push
    # must not be recorded as delivered, or a retry with a real service would skip it.
    delivered: bool = True


def fit_for_expo(message: PushMessage) -> PushMessage:
    """``message`` with its title and body shortened (ending in "…") so the push fits
    Expo's size limit; the message itself when it fits already."""
    title, body = message.title, message.body
    if len(title) > TITLE_MAX_CHARS:
        title = title[: TITLE_MAX_CHARS - 1] + ELLIPSIS
    room = PAYLOAD_BUDGET - _size(title) - _size(json.dumps(message.data))
    if _size(body) > room:
        body = _cut(body, room - _size(ELLIPSIS)) + ELLIPSIS
    if (title, body) == (message.title, message.body):
        return message
    return replace(message, title=title, body=body)


def _size(text: str) -> int:
    return len(text.encode())


def _cut(text: str, size: int) -> str:
    """The longest start of ``text`` that is at most ``size`` bytes in UTF-8."""
    return text.encode()[: max(0, size)].decode(errors="ignore")


class PushService(Protocol):
    def send(self, messages: list[PushMessage]) -> list[PushTicket]:
        """Send at most :data:`MAX_BATCH` messages in one request.

        Returns:
            One ticket per message, in order.

        Raises:
            PushServiceError: the request failed as a whole; worth retrying.
            PushRequestRejected: the request was refused as a whole; not worth retrying.
            ValueError: more than ``MAX_BATCH`` messages.
        """


class ExpoPushClient:
    def __init__(self, base_url: str, access_token: str | None = None,
                 timeout: float = 30.0) -> None:
        self.url = base_url.rstrip("/") + SEND_PATH
        self.access_token = access_token
        self.timeout = timeout

    def send(self, messages: list[PushMessage]) -> list[PushTicket]:
        """One request to Expo; see :meth:`PushService.send`."""
        _check_batch(messages)
        headers = {"Accept-Encoding": "identity"}
        if self.access_token:
            headers["Authorization"] = f"Bearer {self.access_token}"
        payload = [
            {"to": m.to, "title": m.title, "body": m.body, "data": m.data, "sound": "default"}
            for m in messages
        ]
        try:
            reply = post_json(self.url, payload, headers, self.timeout)
        except OSError as exc:
            raise PushServiceError(f"Expo push service unreachable: {exc}") from exc
        body = reply.body if isinstance(reply.body, dict) else {}
        errors = [e for e in body.get("errors") or [] if isinstance(e, dict)]
        if reply.status == 429 or reply.status >= 500:
            raise PushServiceError(f"Expo push service answered {reply.status}: "
                                   f"{_describe(errors)}")
        if reply.status != 200:
            raise PushRequestRejected(reply.status, errors)
        data = body.get("data")
        if errors or not isinstance(data, list) or len(data) != len(messages):
            raise PushServiceError("Expo push service returned a malformed ticket list")
        return [_ticket(t) for t in data]


def _check_batch(messages: list[PushMessage]) -> None:
    if len(messages) > MAX_BATCH:
        raise ValueError(f"at most {MAX_BATCH} messages per request, got {len(messages)}")


def _describe(errors: list[dict[str, Any]]) -> str:
    # Codes and messages only: details can list push tokens.
    parts = [f"{e.get('code')}: {str(e.get('message') or '')[:200]}" for e in errors]
    return "; ".join(parts) or "no details"


def _project_groups(errors: list[dict[str, Any]]) -> list[list[str]]:
    for error in errors:
        details = error.get("details")
        if error.get("code") == MIXED_PROJECTS and isinstance(details, dict):
            return [[str(t) for t in tokens] for tokens in details.values()
                    if isinstance(tokens, list)]
    return []


def _ticket(raw: Any) -> PushTicket:
    if not isinstance(raw, dict):
        return PushTicket(ok=False, error="MalformedTicket")
    if raw.get("status") == "ok":
        return PushTicket(ok=True, id=raw.get("id"))
    details = raw.get("details")
    if not isinstance(details, dict):
        details = {}
    return PushTicket(ok=False, error=details.get("error"), message=raw.get("message"))


class LogPushService:
    """Logs each push instead of sending it (no ``EXPO_PUSH_URL``); nothing is delivered."""

    def send(self, messages: list[PushMessage]) -> list[PushTicket]:
        _check_batch(messages)
        for m in messages:
            log_event("push.logged", to=m.to, title=m.title, data=m.data)
        return [PushTicket(ok=True, id=None, delivered=False) for _ in messages]
