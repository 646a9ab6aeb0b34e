"""Square's Inventory API: batch-retrieve inventory counts, following the cursor.

Errors: 401 → :class:`SquareAuthError` (the token was revoked: retrying is useless);
429 → wait ``Retry-After`` and ask again, up to ``rate_limit_retries`` times, then
:class:`SquareRateLimited`; 5xx or an unreachable server → :class:`SquareServerError`.
The access token only ever goes into the Authorization header: no message, log or
exception carries it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from typing import Any

from bookwish_jobs.logs import log_event
from bookwish_jobs.services._http import HttpResponse, post_json

COUNTS_PATH = "/v2/inventory/counts/batch-retrieve"
# At 1,000 counts a page, far more than a bookstore's catalog: a bound, not a limit.
MAX_PAGES = 10_000


class SquareError(Exception):
    """Square refused a request."""


class SquareAuthError(SquareError):
    """401: the access token is invalid or revoked."""


class SquareRateLimited(SquareError):
    """429 persisted after waiting as told."""


class SquareBadResponse(SquareError):
    """Square answered 200 with something that is not a valid page (not JSON, a count
    that is not a number, a pagination cursor it already gave)."""


class SquareServerError(SquareError):
    """5xx, or no answer at all: worth retrying later."""


@dataclass(frozen=True, slots=True)
class InventoryCount:
    catalog_object_id: str
    location_id: str | None
    state: str
    quantity: int


class SquareClient:
    def __init__(
        self, base_url: str, *, version: str = "2024-10-17", timeout: float = 30.0,
        rate_limit_retries: int = 3, max_retry_after: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.version = version
        self.timeout = timeout
        self.rate_limit_retries = rate_limit_retries
        self.max_retry_after = max_retry_after
        self.sleep = sleep

    def batch_retrieve_counts(
        self, access_token: str, location_ids: list[str] | None = None
    ) -> Iterator[list[InventoryCount]]:
        """Yield each page of counts until Square returns no cursor.

        Raises:
            SquareBadResponse: a page is not JSON, holds a non-numeric quantity, or
                repeats an earlier cursor (or there are more than ``MAX_PAGES``).
        """
        cursor: str | None = None
        seen: set[str] = set()
        for _page in range(MAX_PAGES):
            body: dict[str, Any] = {"limit": 1000}
            if location_ids:
                body["location_ids"] = location_ids
            if cursor:
                body["cursor"] = cursor
            reply = self._post(COUNTS_PATH, body, access_token)
            if not isinstance(reply.body, dict):
                raise SquareBadResponse(
                    "Square answered 200 with a body that is not a JSON object "
                    f"(page {len(seen) + 1}); no inventory was changed")
            counts = reply.body.get("counts") or []
            if not isinstance(counts, list):
                raise SquareBadResponse("Square's counts is not a list; no inventory was changed")
            yield [c for c in map(_count, counts) if c is not None]
            cursor = reply.body.get("cursor") or None
            if cursor is None:
                return
            if cursor in seen:
                raise SquareBadResponse(
                    f"Square repeated a pagination cursor after {len(seen) + 1} pages; "
                    "stopped so as not to loop for ever")
            seen.add(cursor)
        raise SquareBadResponse(f"Square returned more than {MAX_PAGES} pages; stopped")

    def _post(self, path: str, body: dict[str, Any], access_token: str) -> HttpResponse:
        headers = {"Authorization": f"Bearer {access_token}", "Square-Version": self.version}
        for attempt in range(self.rate_limit_retries + 1):
            try:
                reply = post_json(self.base_url + path, body, headers, self.timeout)
            except OSError as exc:
                raise SquareServerError(f"Square unreachable: {type(exc).__name__}") from None
            if reply.status == 200:
                return reply
            if reply.status == 401:
                raise SquareAuthError("Square rejected the access token (401)")
            if reply.status == 429:
                wait = min(_retry_after(reply), self.max_retry_after)
                if attempt < self.rate_limit_retries:
                    log_event("square.rate_limited", retry_after=wait, attempt=attempt + 1)
                    self.sleep(wait)
                    continue
                raise SquareRateLimited("Square kept answering 429 Too Many Requests")
            if reply.status >= 500:
                raise SquareServerError(f"Square answered {reply.status}")
            raise SquareError(f"Square answered {reply.status}: {_detail(reply)}")
        raise AssertionError("unreachable")  # pragma: no cover


def _retry_after(reply: HttpResponse) -> float:
    value = next((v for k, v in reply.headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return 1.0
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return 1.0


def _detail(reply: HttpResponse) -> str:
    errors = reply.body.get("errors") if isinstance(reply.body, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        return str(errors[0].get("code") or errors[0].get("category") or "")
    return ""


def _count(raw: Any) -> InventoryCount | None:
    if not isinstance(raw, dict) or not raw.get("catalog_object_id"):
        return None
    try:
        quantity = int(Decimal(str(raw.get("quantity", "0"))))
    except (InvalidOperation, ValueError, OverflowError):
        # "NaN"/"Infinity" parse as Decimal but have no int.
        raise SquareBadResponse(
            f"Square gave a non-numeric quantity {raw.get('quantity')!r} for catalog object "
            f"{raw['catalog_object_id']}; no inventory was changed") from None
    return InventoryCount(
        catalog_object_id=str(raw["catalog_object_id"]),
        location_id=raw.get("location_id"),
        state=str(raw.get("state", "")),
        quantity=quantity,
    )
