"""The wire formats a queue can speak, by name, behind one interface.

:func:`open_protocol` is where the public API chooses a format: every other
caller holds the :class:`~pyqueue._protocol.interface.QueueProtocol` it
returns and never asks which format it is. The return type makes mypy prove
that each format's class implements the whole interface.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pyqueue._protocol.bull.adapter import BullProtocol
from pyqueue._protocol.bullmq.protocol import BullMQProtocol
from pyqueue.errors import InvalidOptionsError

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from pyqueue._protocol.fastconn import FastConnection
    from pyqueue._protocol.interface import QueueProtocol

Format = Literal["bull", "bullmq"]
FORMATS: tuple[Format, ...] = ("bull", "bullmq")


def open_protocol(format: str, client: aioredis.Redis, prefix: str, queue: str,
                  *, fast: FastConnection | None = None) -> QueueProtocol:
    """The format ``format`` of queue ``<prefix>:<queue>`` on ``client``.

    Args:
        format: ``"bull"`` (Bull 4) or ``"bullmq"`` (BullMQ 6).
        fast: Bull mode's lean connection for the per-job scripts, if any.

    Raises:
        InvalidOptionsError: an unknown format.
    """
    if format == "bull":
        return BullProtocol(client, prefix, queue, fast)
    if format == "bullmq":
        return BullMQProtocol(client, prefix, queue)
    raise InvalidOptionsError(f"protocol: must be one of {', '.join(FORMATS)}, got {format!r}")
