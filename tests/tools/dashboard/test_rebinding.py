"""DNS rebinding: without auth, the dashboard answers only Host names on its allowlist.

The probe of issue 29: with no auth (the loopback-only mode) the dashboard
answered any Host, so ``curl -H 'Host: evil.example:8765' .../queue?...`` got the
customers' emails, and a page on an attacker's name resolved to 127.0.0.1 read
them, read the CSRF token and paused a queue.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest

from pyqueue import Queue
from pyqueue.tools.dashboard import create_app

EMAIL = "alice@customer.example"


@pytest.fixture
def prefix() -> str:
    return f"reb{uuid.uuid4().hex[:8]}"


async def test_a_foreign_host_header_is_refused(redis_url: str, prefix: str) -> None:
    async with Queue("emails", redis_url, prefix=prefix) as queue:
        await queue.add({"to": EMAIL})
        app = create_app(redis_url, prefix)
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8765") as c:
            ok = await c.get("/queue?name=emails&state=waiting")
            assert ok.status_code == 200
            assert EMAIL in ok.text
            token = re.search(r'name="csrf" value="([0-9a-f]{64})"', ok.text)
            assert token is not None
            for host in ("evil.example:8765", "evil.example", "127.0.0.1.evil.example",
                         "localhost.evil.example:8765"):
                probe = await c.get("/queue?name=emails&state=waiting", headers={"host": host})
                assert probe.status_code == 400, host
                assert EMAIL not in probe.text
                assert "csrf" not in probe.text
                # What the rebound page would post: its own origin, the token it read.
                sent = await c.post("/action", headers={
                    "host": host, "origin": f"http://{host}"}, data={
                    "op": "pause", "queue": "emails", "csrf": token.group(1), "next": "/"})
                assert sent.status_code == 400, host
            assert not await queue.is_paused()
            for host in ("localhost:8765", "127.0.0.1:8765", "[::1]:8765", "LOCALHOST"):
                assert (await c.get("/", headers={"host": host})).status_code == 200, host
        await app.aclose()


async def test_the_allowlist_is_configurable(redis_url: str, prefix: str) -> None:
    app = create_app(redis_url, prefix, allowed_hosts=["queues.internal"])
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://queues.internal") as c:
        assert (await c.get("/")).status_code == 200
        assert (await c.get("/", headers={"host": "localhost"})).status_code == 400
        assert (await c.get("/", headers={"host": "evil.example"})).status_code == 400
    await app.aclose()
    with pytest.raises(ValueError, match="allowed_hosts"):
        create_app(redis_url, prefix, allowed_hosts=["bad host/x"])


def _unused(*_: Any) -> None:
    """Keeps the import of Any used on every Python (typing only)."""
