"""Push notifications: Expo's push HTTP API, or log-only (the embedded default).

Expo answers ``POST /--/api/v2/push/send`` with one ticket per message, in order:
``{"status": "ok", "id": ...}`` or ``{"status": "error", "message": ...,
"details": {"error": "DeviceNotRegistered"}}``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from bookwish_jobs.logs import log_event
from bookwish_jobs.services._http import post_json

SEND_PATH = "/--/api/v2/push/send"
BATCH = 100  # Expo's limit per request
DEVICE_NOT_REGISTERED = "DeviceNotRegistered"


class PushServiceError(Exception):
    """The push service refused or failed the whole request (worth retrying)."""


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


class PushService(Protocol):
    def send(self, messages: list[PushMessage]) -> list[PushTicket]:
        """One ticket per message, in order. Raises PushServiceError for the whole batch."""


class ExpoPushClient:
    def __init__(self, base_url: str, access_token: str | None = None,
                 timeout: float = 30.0) -> None:
        self.url = base_url.rstrip("/") + SEND_PATH
        self.access_token = access_token
        self.timeout = timeout

    def send(self, messages: list[PushMessage]) -> list[PushTicket]:
        tickets: list[PushTicket] = []
        for start in range(0, len(messages), BATCH):
            tickets += self._send_batch(messages[start : start + BATCH])
        return tickets

    def _send_batch(self, messages: list[PushMessage]) -> list[PushTicket]:
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
        if reply.status != 200 or "errors" in body:
            raise PushServiceError(f"Expo push service answered {reply.status}: "
                                   f"{body.get('errors') or 'no details'}")
        data = body.get("data")
        if not isinstance(data, list) or len(data) != len(messages):
            raise PushServiceError("Expo push service returned a malformed ticket list")
        return [_ticket(t) for t in data]


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
    """Logs each push instead of sending it."""

    def send(self, messages: list[PushMessage]) -> list[PushTicket]:
        for m in messages:
            log_event("push.logged", to=m.to, title=m.title, data=m.data)
        return [PushTicket(ok=True, id="logged") for _ in messages]
