"""Regression tests for the bugs the chaos scenarios found (small and fast)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from pyqueue._engine.locks import LockRenewer
from pyqueue._protocol.fastconn import FastConnection


async def test_fastconn_fails_pending_requests_on_a_silent_socket() -> None:
    """Bug: a black-holed connection hung every hot-path call for ever."""

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accept and read, never reply
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    conn = FastConnection(f"redis://127.0.0.1:{port}/0?socket_timeout=0.4")
    start = time.monotonic()
    with pytest.raises(RedisConnectionError, match="no reply within"):
        await asyncio.wait_for(conn.execute("PING"), 5)
    assert time.monotonic() - start < 2
    conn.close()
    server.close()
    await server.wait_closed()


def test_renewer_adopts_our_unregistered_locks_while_the_loop_is_blocked() -> None:
    """Bug: a job fetched while a handler blocked the loop lost its lock (ran twice)."""
    renewed: list[list[str]] = []

    def renew(ids: Any) -> list[bool]:
        renewed.append(list(ids))
        return [i != "theirs" for i in ids]

    lost: list[str] = []
    renewer = LockRenewer(renew, 200, on_lost=lost.append, on_error=lambda e: None,
                          list_active=lambda: ["mine", "fetched", "theirs"])
    renewer.add("mine")
    renewer.beat()
    renewer.renew_now()
    assert renewed[-1] == ["mine"]  # loop alive: only registered ids
    time.sleep(0.15)  # no beat for longer than half a period: loop blocked
    renewer.renew_now()
    assert renewed[-1] == ["mine", "fetched", "theirs"]
    assert lost == []  # another worker's job is not "lost" by us
