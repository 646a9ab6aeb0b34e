"""How _Protocol.write groups requests into sends.

The transport here only records what it is given: what is under test is where
the sends are cut, which a real socket would hide (the kernel merges them).
"""

from __future__ import annotations

import asyncio
from typing import Any

from pyqueue._protocol import fastconn


class _Recorder(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.sends: list[bytes] = []

    def write(self, data: Any) -> None:
        self.sends.append(bytes(data))

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


async def _sends_for(requests: int, *, already_pending: int = 0) -> list[bytes]:
    proto = fastconn._Protocol()
    transport = _Recorder()
    proto.connection_made(transport)
    loop = asyncio.get_running_loop()
    for _ in range(already_pending):
        proto.pending.append(loop.create_future())
    for i in range(requests):
        # As FastConnection._send_encoded does: the waiter first, then the bytes.
        proto.pending.append(loop.create_future())
        proto.write(b"<%d>" % i)
    await asyncio.sleep(0)  # the loop turn that flushes what is left
    proto.connection_lost(None)
    return transport.sends


async def test_a_request_to_an_idle_socket_goes_out_alone_and_at_once() -> None:
    assert await _sends_for(1) == [b"<0>"]


async def test_requests_behind_one_in_flight_share_sends_of_at_most_a_batch() -> None:
    n = 2 * fastconn._BATCH + 7
    sends = await _sends_for(n)
    # The first finds the socket idle; then full batches leave as they fill up,
    # and the remainder on the loop turn.
    sizes = [send.count(b"<") for send in sends]
    assert sizes == [1, fastconn._BATCH, fastconn._BATCH, n - 1 - 2 * fastconn._BATCH]
    assert b"".join(sends) == b"".join(b"<%d>" % i for i in range(n))  # in order


async def test_a_short_burst_waits_for_the_loop_turn_as_one_send() -> None:
    sends = await _sends_for(5, already_pending=3)
    assert sends == [b"<0><1><2><3><4>"]
