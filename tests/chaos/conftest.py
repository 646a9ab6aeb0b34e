"""Fixtures of the chaos tests: a proxy between the client and the session's Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from tests.chaos.proxy import ChaosProxy

from pyqueue.embedded import RedisServer


@pytest.fixture
async def proxied(redis_server: RedisServer) -> AsyncIterator[ChaosProxy]:
    """A ChaosProxy to the session's redis-server, closed after the test."""
    proxy = ChaosProxy("127.0.0.1", redis_server.port)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()
