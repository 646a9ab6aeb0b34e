"""Local HTTP servers that answer as Square's Inventory API and Expo's push API do.

Used by the tests and by ``--demo`` (which has no real Square account to talk to).
Each runs a ``ThreadingHTTPServer`` on 127.0.0.1 in a daemon thread::

    with FakeSquare(tokens={"tok"}, counts=[...], page_size=2) as square:
        SquareClient(square.url)...
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

# A scripted reply: (status, headers, body).
Reply = tuple[int, dict[str, str], Any]
EXPO_SEND_PATH = "/--/api/v2/push/send"
EXPO_DEFAULT_PROJECT = "@bookwish/app"


class _Server:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        # Replies to give before the normal behaviour, one per request; None answers
        # that request normally.
        self.script: list[Reply | None] = []
        self.delay = 0.0
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                status, headers, reply = owner._handle(self.path, dict(self.headers), body)
                # bytes go out as they are: a body that is not JSON, as a broken proxy sends.
                data = reply if isinstance(reply, bytes) else json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,),
                                        daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def _handle(self, path: str, headers: dict[str, str], body: Any) -> Reply:
        with self._lock:
            self.requests.append({"path": path, "headers": headers, "body": body})
            scripted = self.script.pop(0) if self.script else None
        if self.delay:
            time.sleep(self.delay)
        return scripted if scripted is not None else self.answer(path, headers, body)

    def answer(self, path: str, headers: dict[str, str], body: Any) -> Reply:
        raise NotImplementedError

    def start(self) -> Self:
        self._thread.start()
        return self

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class FakeSquare(_Server):
    """``POST /v2/inventory/counts/batch-retrieve`` with cursor pagination and bearer auth.

    ``counts`` are Square ``InventoryCount`` objects (any locations and states); the
    request's ``location_ids`` and ``states`` filters apply as Square applies them.
    """

    def __init__(self, *, tokens: Iterable[str], counts: list[dict[str, Any]] | None = None,
                 page_size: int = 100) -> None:
        super().__init__()
        self.tokens = set(tokens)
        self.counts = list(counts or [])
        self.page_size = page_size

    def answer(self, path: str, headers: dict[str, str], body: Any) -> Reply:
        if path != "/v2/inventory/counts/batch-retrieve":
            return 404, {}, {"errors": [{"category": "INVALID_REQUEST_ERROR", "code": "NOT_FOUND"}]}
        auth = headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
            return 401, {}, {"errors": [{"category": "AUTHENTICATION_ERROR",
                                         "code": "UNAUTHORIZED",
                                         "detail": "This request could not be authorized."}]}
        locations = set(body.get("location_ids") or [])
        states = set(body.get("states") or [])
        matching = [c for c in self.counts
                    if (not locations or c.get("location_id") in locations)
                    and (not states or c.get("state") in states)]
        start = int(body.get("cursor") or 0)
        page = matching[start : start + self.page_size]
        reply: dict[str, Any] = {"counts": page} if page else {}
        if start + self.page_size < len(matching):
            reply["cursor"] = str(start + self.page_size)
        return 200, {}, reply


class FakeExpo(_Server):
    """``POST /--/api/v2/push/send``: one ticket per message, as Expo answers.

    - ``unregistered`` tokens get a ``DeviceNotRegistered`` ticket;
    - ``ticket_errors`` scripts per-token ticket errors for the next pushes, e.g.
      ``{"tok": ["MessageRateExceeded"]}`` fails the first push to ``"tok"`` only;
    - ``projects`` maps a token to its Expo project (default ``@bookwish/app``): a
      request mixing projects is refused whole with 400 ``PUSH_TOO_MANY_EXPERIENCE_IDS``
      and the tokens per project in ``details``; more than 100 messages get 400
      ``PUSH_TOO_MANY_NOTIFICATIONS``.
    """

    def __init__(self, *, unregistered: Iterable[str] = ()) -> None:
        super().__init__()
        self.unregistered = set(unregistered)
        self.ticket_errors: dict[str, list[str]] = {}
        self.projects: dict[str, str] = {}
        self.accepted: list[str] = []  # tokens that got an "ok" ticket, in order

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Every message of every request, refused or not."""
        return [m for r in self.requests if r["path"] == EXPO_SEND_PATH
                for m in (r["body"] or [])]

    def answer(self, path: str, headers: dict[str, str], body: Any) -> Reply:
        if path != EXPO_SEND_PATH:
            return 404, {}, {"errors": [{"code": "NOT_FOUND"}]}
        messages = list(body or [])
        if len(messages) > 100:
            return 400, {}, {"errors": [{
                "code": "PUSH_TOO_MANY_NOTIFICATIONS",
                "message": "You are trying to send more than 100 push notifications in one "
                           "request.", "isTransient": False}]}
        by_project: dict[str, list[str]] = {}
        for message in messages:
            token = str(message.get("to"))
            by_project.setdefault(self.projects.get(token, EXPO_DEFAULT_PROJECT), []).append(
                token)
        if len(by_project) > 1:
            return 400, {}, {"errors": [{
                "code": "PUSH_TOO_MANY_EXPERIENCE_IDS",
                "message": "All push notification messages in the same request must be for "
                           "the same project; check the details field to investigate "
                           "conflicting tokens.",
                "details": by_project, "isTransient": False}]}
        tickets = [self._ticket(message, i) for i, message in enumerate(messages)]
        return 200, {}, {"data": tickets}

    def _ticket(self, message: dict[str, Any], index: int) -> dict[str, Any]:
        token = message.get("to")
        scripted = self.ticket_errors.get(str(token), [])
        if scripted:
            code = scripted.pop(0)
            return {"status": "error", "message": code, "details": {"error": code}}
        if token in self.unregistered:
            return {"status": "error",
                    "message": f"\"{token}\" is not a registered push notification recipient",
                    "details": {"error": "DeviceNotRegistered"}}
        self.accepted.append(str(token))
        return {"status": "ok", "id": f"ticket-{len(self.requests)}-{index}"}
