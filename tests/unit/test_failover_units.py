"""The pure parts of following failovers and of transient errors (no server needed)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import redis.exceptions

from pyqueue import TransientServerError
from pyqueue._engine.outage import OutageLog, is_connection_error, retry_delay
from pyqueue._protocol.cluster_watch import master_of
from pyqueue._protocol.fastconn import _reply_error
from pyqueue._protocol.sentinel_watch import Watcher, _fields
from pyqueue.errors import transient_code


@pytest.mark.parametrize("code", ["LOADING", "BUSY", "MASTERDOWN", "CLUSTERDOWN", "NOREPLICAS"])
def test_transient_replies_become_transient_server_errors(code: str) -> None:
    exc = _reply_error(f"{code} something is not ready")
    assert isinstance(exc, TransientServerError)
    assert isinstance(exc, redis.exceptions.ConnectionError)
    assert exc.code == code
    assert transient_code(f"{code} x") == code


def test_other_replies_stay_response_errors() -> None:
    exc = _reply_error("ERR wrong number of arguments")
    assert type(exc) is redis.exceptions.ResponseError
    assert transient_code("ERR x") is None
    # Followed by the connection itself first (reconnect, cluster redirection).
    assert isinstance(_reply_error("READONLY x"), redis.exceptions.ReadOnlyError)
    assert isinstance(_reply_error("TRYAGAIN x"), redis.exceptions.TryAgainError)


def test_retry_delay_doubles_from_50_ms_and_is_capped() -> None:
    assert [retry_delay(n, 5_000) for n in range(0, 9)] == [
        0.0, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0,
    ]
    assert retry_delay(1_000, 5_000) == 5.0


def test_outage_log_says_lost_once_and_back_once(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("pyqueue.test-outage")
    outage = OutageLog(log, "queue q")
    with caplog.at_level(logging.DEBUG, logger="pyqueue.test-outage"):
        for _ in range(50):
            outage.error(redis.exceptions.ConnectionError("Error 111 connecting"))
        outage.error(ValueError("a handler's bug"))
        outage.ok()
        outage.ok()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 3, warnings
    assert "lost Redis" in warnings[0]
    assert "worker error: a handler's bug" in warnings[1]
    assert "reachable again" in warnings[2]
    assert "49 further errors" in warnings[2]
    assert is_connection_error(TransientServerError("LOADING", code="LOADING"))
    assert not is_connection_error(ValueError())


def test_master_of_reads_cluster_slots() -> None:
    slots = [[0, 5460, [b"127.0.0.1", 7000, b"id"]], [5461, 16383, ["10.0.0.2", 7001, "id2"]]]
    assert master_of(slots, 0) == ("127.0.0.1", 7000)
    assert master_of(slots, 9000) == ("10.0.0.2", 7001)
    assert master_of([], 1) is None


class _Conn:
    def __init__(self) -> None:
        self.severed = 0

    def sever(self) -> None:
        self.severed += 1


def test_watcher_moves_only_to_a_newer_configuration() -> None:
    watcher = Watcher([("127.0.0.1", 1)], "svc", {})
    conn = _Conn()
    watcher._conns.add(conn)  # registered without starting the thread
    watcher._moved(("10.0.0.1", 6379), 3, "polled")  # the baseline: nothing to sever
    assert (watcher.newest(), conn.severed) == (("10.0.0.1", 6379), 0)
    watcher._moved(("10.0.0.2", 6379), 2, "a Sentinel that has not heard yet")
    assert (watcher.newest(), conn.severed) == (("10.0.0.1", 6379), 0)
    watcher._moved(("10.0.0.2", 6379), 3, "the replica a failover promotes")
    assert (watcher.newest(), conn.severed) == (("10.0.0.2", 6379), 1)
    watcher._moved(("10.0.0.2", 6379), 4, "the switch itself: same address")
    assert conn.severed == 1


@pytest.mark.parametrize(("message", "ours"), [
    ("svc 127.0.0.1 1 127.0.0.1 2", True),
    ("other 127.0.0.1 1 127.0.0.1 2", False),
    ("slave 127.0.0.1:2 127.0.0.1 2 @ svc 127.0.0.1 1", True),
    ("slave 127.0.0.1:2 127.0.0.1 2 @ other 127.0.0.1 1", False),
    ("", False),
])
def test_watcher_hears_failover_messages_about_its_master(message: str, ours: bool) -> None:
    assert Watcher([("127.0.0.1", 1)], "svc", {})._heard(message.encode()) is ours


def test_sentinel_fields_from_resp2_and_resp3() -> None:
    flat: list[Any] = [b"ip", b"10.0.0.1", b"port", b"6379", b"config-epoch", b"2"]
    assert _fields(flat) == {"ip": "10.0.0.1", "port": "6379", "config-epoch": "2"}
    assert _fields({b"ip": b"h", "flags": "master"}) == {"ip": "h", "flags": "master"}
