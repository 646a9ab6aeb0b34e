"""RedisServer against the free-port race: the port it picked may be taken before it binds."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import redis

from pyqueue import embedded
from pyqueue.embedded import RedisServer


@pytest.fixture
def listener() -> Iterator[int]:
    """A port held by a plain listening socket that never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def _first_then_free(monkeypatch: pytest.MonkeyPatch, taken: int) -> None:
    """free_port() hands out ``taken`` once, as if someone grabbed it after the check."""
    ports = iter([taken])
    real = embedded.free_port
    monkeypatch.setattr(embedded, "free_port", lambda: next(ports, None) or real())


def _pid_behind(url: str) -> int:
    return int(redis.Redis.from_url(url).info("server")["process_id"])


def test_a_chosen_port_taken_before_the_bind_is_replaced(
    monkeypatch: pytest.MonkeyPatch, listener: int
) -> None:
    _first_then_free(monkeypatch, listener)
    with RedisServer() as server:
        assert server.port != listener
        assert _pid_behind(server.url) == server.pid


def test_another_redis_on_the_chosen_port_is_not_taken_for_ours(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with RedisServer() as other:
        _first_then_free(monkeypatch, other.port)
        with RedisServer() as server:
            # Before the fix, PING was answered by `other` while ours failed to bind.
            assert server.running
            assert server.port != other.port
            assert _pid_behind(server.url) == server.pid


def test_a_port_given_by_the_caller_is_never_swapped(listener: int) -> None:
    server = RedisServer(port=listener)
    with pytest.raises(RuntimeError, match=f"already in use.*:{listener}: bind"):
        server.start()
    assert server.port == listener
    assert not server.running
    server.close()


def test_a_restart_waits_for_its_own_start_not_the_last_ones_log() -> None:
    with RedisServer() as server:
        first = server.pid
        server.restart(kill=True)
        assert server.pid != first
        assert _pid_behind(server.url) == server.pid
