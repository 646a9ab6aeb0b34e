"""A minimal JSON-over-HTTP call on the standard library (blocking; jobs run in threads)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]
    body: Any  # decoded JSON, or None when the body was empty or not JSON


def post_json(
    url: str, payload: Any, headers: Mapping[str, str], timeout: float = 30.0
) -> HttpResponse:
    """POST ``payload`` as JSON; any HTTP status comes back as a response.

    Raises:
        OSError: the server could not be reached (``urllib.error.URLError`` is one).
    """
    data = json.dumps(payload).encode()
    request = urllib.request.Request(
        url, data=data, method="POST",
        headers={"Content-Type": "application/json", "Accept": "application/json", **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return HttpResponse(reply.status, dict(reply.headers.items()), _decode(reply.read()))
    except urllib.error.HTTPError as err:
        with err:
            return HttpResponse(err.code, dict(err.headers.items()), _decode(err.read()))


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None
