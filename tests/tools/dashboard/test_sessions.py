"""Sessions that expire and end, throttled sign-ins, a read-only viewer token with masked
fields, and the audit trail (who, what, when; also in the job's log), over HTTP."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from pyqueue import Queue, Worker, WorkerOptions
from pyqueue.tools.dashboard import create_app
from pyqueue.tools.dashboard.masking import MASK, covers, mask, parse_mask
from pyqueue.tools.dashboard.sessions import LoginThrottle, SessionStore, User

FAST = WorkerOptions(drain_delay=1, guard_interval=200, stalled_interval=0, shutdown_grace=2)
TOKEN = "admin-token-123"
VIEWER = "viewer-token-456"


@pytest.fixture
def prefix() -> str:
    return f"ses{uuid.uuid4().hex[:8]}"


def _client(app: Any, address: str = "10.0.0.7") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 4000))
    return httpx.AsyncClient(transport=transport, base_url="http://dash.example")


async def _csrf(client: httpx.AsyncClient, path: str) -> str:
    page = await client.get(path)
    found = re.search(r'name="csrf" value="([0-9a-f]{64})"', page.text)
    assert found, page.text[:500]
    return found.group(1)


async def _sign_in(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/login", data={"token": token, "next": "/"})


async def test_sessions_end_at_logout_and_never_hold_the_token(
    redis_url: str, prefix: str
) -> None:
    app = create_app(redis_url, prefix, token=TOKEN)
    async with _client(app) as browser:
        signed = await _sign_in(browser, TOKEN)
        assert signed.status_code == 303
        cookie = browser.cookies["pqd_session"]
        assert TOKEN not in cookie
        assert len(cookie) >= 40
        assert (await browser.get("/")).status_code == 200
        page = await browser.get("/")
        assert 'id="signout"' in page.text
        # A stolen copy of the cookie works until the owner signs out, not after.
        async with _client(app, "10.0.0.99") as thief:
            thief.cookies.set("pqd_session", cookie)
            assert (await thief.get("/")).status_code == 200
            csrf = await _csrf(browser, "/")
            ended = await browser.post("/logout", data={"csrf": csrf})
            assert ended.status_code == 303
            assert ended.headers["location"] == "/login"
            assert "Max-Age=0" in ended.headers["set-cookie"]
            assert (await thief.get("/")).status_code == 401
        assert (await browser.get("/logout")).status_code == 401  # signed out already
    await app.aclose()


def test_sessions_expire_when_idle_and_when_old(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr("pyqueue.tools.dashboard.sessions.time.monotonic", lambda: clock[0])
    store = SessionStore(max_age=100, idle=30)
    user = User("admin", "token")
    sid = store.create(user)
    for _ in range(3):  # kept alive by use...
        clock[0] += 25
        assert store.get(sid) == user
    clock[0] += 31  # ...until idle too long
    assert store.get(sid) is None
    sid = store.create(user)
    for _ in range(4):
        clock[0] += 25
        assert store.get(sid) == user
    clock[0] += 25
    assert store.get(sid) is None  # over max_age however busy
    assert store.get("forged") is None


async def test_failed_sign_ins_are_throttled(redis_url: str, prefix: str) -> None:
    app = create_app(redis_url, prefix, token=TOKEN)
    async with _client(app, "10.0.0.5") as guesser, _client(app, "10.0.0.6") as other:
        statuses = [(await _sign_in(guesser, f"guess-{n:06d}")).status_code for n in range(8)]
        assert statuses[:5] == [401] * 5
        assert statuses[5:] == [429] * 3
        refused = await _sign_in(guesser, TOKEN)  # even the right token waits now
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) > 0
        for attempt in (
            guesser.get("/", params={"token": "guess-x"}),
            guesser.get("/api/overview", headers={"authorization": "Bearer guess-y"}),
        ):
            assert (await attempt).status_code == 429
        # Another address is not locked out by this one.
        assert (await _sign_in(other, TOKEN)).status_code == 303
    await app.aclose()
    throttle = LoginThrottle(per_client=2, overall=3, window=60)
    for address in ("a", "b", "c"):
        throttle.failed(address)
    assert throttle.retry_after("d") > 0  # a spread guessing run stops everyone


async def test_a_viewer_sees_masked_data_and_cannot_act(redis_url: str, prefix: str) -> None:
    async with Queue("orders", redis_url, prefix=prefix) as queue:
        job = await queue.add({"customer": {"email": "alice@example.com", "name": "Alice"},
                               "items": [{"sku": "b-1", "card": "4111"}]})
        app = create_app(redis_url, prefix, token=TOKEN, viewer_token=VIEWER,
                         mask=["customer.email", "items[*].card"])
        async with _client(app) as admin, _client(app, "10.0.0.8") as viewer:
            await _sign_in(admin, TOKEN)
            await _sign_in(viewer, VIEWER)
            seen = (await admin.get("/job", params={"queue": "orders", "id": job.id})).text
            assert "alice@example.com" in seen
            assert "4111" in seen
            shown = await viewer.get("/job", params={"queue": "orders", "id": job.id})
            assert shown.status_code == 200
            assert "alice@example.com" not in shown.text
            assert "4111" not in shown.text
            assert MASK in shown.text
            assert "Alice" in shown.text
            assert 'id="read-only"' in shown.text
            listed = await viewer.get("/queue", params={"name": "orders"})
            assert "alice@example.com" not in listed.text
            # Searching would tell a masked value by whether it matches.
            for query in ({"text": "alice"}, {"data_path": "customer.email",
                                              "data_value": "alice@example.com"},
                          {"data_path": "customer"}):
                probe = await viewer.get("/search", params={"queue": "orders", **query})
                assert probe.status_code == 403, query
                assert "alice@example.com" not in probe.text.replace(
                    'value="alice@example.com"', "")
            allowed = await viewer.get("/search", params={"queue": "orders",
                                                          "data_path": "customer.name",
                                                          "data_value": "Alice"})
            assert allowed.status_code == 200
            csrf = await _csrf(viewer, "/logout")
            refused = await viewer.post("/action", data={"op": "pause", "queue": "orders",
                                                         "csrf": csrf, "next": "/"})
            assert refused.status_code == 403
            assert not await queue.is_paused()
        await app.aclose()
    assert mask({"a": [{"b": 1}, {"b": 2}]}, [parse_mask("a[*].b")]) == {
        "a": [{"b": MASK}, {"b": MASK}]}
    assert covers([parse_mask("*.email")], ["customer", "email"])
    assert not covers([parse_mask("customer.email")], ["customer", "name"])
    with pytest.raises(ValueError, match="mask: not a path"):
        create_app(redis_url, prefix, mask=["a..b"])


async def test_every_action_is_audited_with_who_and_when(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    trail = tmp_path / "audit.jsonl"

    def fail(job: Any) -> None:
        raise RuntimeError("nope")

    async with Queue("mail", redis_url, prefix=prefix) as queue:
        job = await queue.add({"to": "x"})
        async with Worker(queue, fail, options=FAST):
            for _ in range(200):
                if await queue.get_job_state(job.id) == "failed":
                    break
                await asyncio.sleep(0.05)
        app = create_app(redis_url, prefix, basic_auth=("ops", "pw-1234"), audit_log=str(trail))
        transport = httpx.ASGITransport(app=app, client=("10.0.0.3", 4000))
        async with httpx.AsyncClient(transport=transport, base_url="http://dash.example",
                                     auth=("ops", "pw-1234")) as ops:
            csrf = await _csrf(ops, "/queue?name=mail")
            for form in ({"op": "retry", "id": job.id}, {"op": "pause"}, {"op": "resume"}):
                sent = await ops.post("/action", data={"queue": "mail", "csrf": csrf,
                                                       "next": "/", **form})
                assert sent.status_code == 303
            page = await ops.get("/audit")
            assert page.status_code == 200
            assert page.text.count("basic:ops") == 3
        await app.aclose()
        entries = [json.loads(line) for line in trail.read_text().splitlines()]
        assert [e["action"] for e in entries] == ["retry", "pause", "resume"]
        assert {e["who"] for e in entries} == {"basic:ops"}
        assert {e["client"] for e in entries} == {"10.0.0.3"}
        assert entries[0]["jobs"] == [job.id]
        assert all(isinstance(e["at"], int) for e in entries)
        logs, _ = await queue.get_job_logs(job.id)
        assert len(logs) == 1
        assert "retry by basic:ops (10.0.0.3)" in logs[0]
