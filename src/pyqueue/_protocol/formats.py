"""The wire formats a queue can speak, by name, behind one interface.

:func:`open_protocol` is where the public API chooses a format: every other
caller holds the :class:`~pyqueue._protocol.interface.QueueProtocol` it
returns and never asks which format it is. The return type makes mypy prove
that each format's class implements the whole interface.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from redis.exceptions import AskError, BusyLoadingError, ResponseError

from pyqueue._protocol.bull.adapter import BullProtocol
from pyqueue._protocol.bullmq.protocol import BullMQProtocol
from pyqueue._protocol.fastconn import cluster_node_error
from pyqueue._protocol.routing import as_transient
from pyqueue.errors import InvalidOptionsError

if TYPE_CHECKING:
    from collections.abc import Sequence

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
        fast: The lean connection for the per-job scripts, if any (either format).

    Raises:
        InvalidOptionsError: an unknown format.
    """
    if format == "bull":
        return BullProtocol(client, prefix, queue, fast)
    if format == "bullmq":
        return BullMQProtocol(client, prefix, queue, fast)
    raise InvalidOptionsError(f"protocol: must be one of {', '.join(FORMATS)}, got {format!r}")


# Keys only one format writes. BullMQ: its events stream, wake-up marker, priority
# counter and prioritized set, and a meta hash with its settings; Bull 4: its
# priority index and paused flag key.
_BULLMQ_ONLY = ("events", "marker", "pc", "prioritized", "waiting-children")
_BULL_ONLY = ("priority", "meta-paused")


PROBE_LENGTH = len(_BULLMQ_ONLY) + len(_BULL_ONLY) + 1
"""How many replies :func:`probe_format` queues (tools slice a shared pipeline's replies)."""


def probe_format(pipe: Any, prefix: str, queue: str) -> None:
    """Queue on ``pipe`` the :data:`PROBE_LENGTH` reads :func:`format_from` decides by.

    For tools that learn many queues' formats in one pipelined round trip; the
    reads are EXISTS and HMGET of ``meta``, which fail only on a ``meta`` of the
    wrong type.
    """
    base = f"{prefix}:{queue}:"
    for suffix in (*_BULLMQ_ONLY, *_BULL_ONLY):
        pipe.exists(base + suffix)
    pipe.hmget(base + "meta", "version", "opts.maxLenEvents")


def format_from(found: Sequence[Any]) -> Format | None:
    """The format the replies of :func:`probe_format` show (see :func:`detect_format`)."""
    bullmq = any(found[: len(_BULLMQ_ONLY)])
    meta = found[PROBE_LENGTH - 1]
    version, max_len = meta if isinstance(meta, list) else (None, None)
    if bullmq or max_len is not None or (
        isinstance(version, bytes) and version.startswith(b"bullmq")
    ):
        return "bullmq"
    if any(found[len(_BULLMQ_ONLY):PROBE_LENGTH - 1]):
        return "bull"
    return None


async def detect_format(client: aioredis.Redis, prefix: str, queue: str) -> Format | None:
    """Which format an existing queue speaks, from the keys only one format writes.

    Returns None for a queue with no such key (new, or only finished jobs left),
    which either format may take. A queue holding marks of both (two clients of
    different formats already mixed) is reported as BullMQ, whose ``meta`` says
    so in its ``version`` field when a BullMQ Queue opened it.

    Raises:
        TransientServerError: the server is loading, busy... (as the scripts raise it).
    """
    try:
        async with client.pipeline(transaction=False) as pipe:
            probe_format(pipe, prefix, queue)
            # Errors unraised: raised, redis-py prefixes their text with the command's.
            found: list[Any] = await pipe.execute(raise_on_error=False)
        for item in found:
            if isinstance(item, Exception):
                raise item
    except (ResponseError, BusyLoadingError) as exc:
        # Often the first command a queue sends: its errors read as every later one's.
        if isinstance(exc, AskError):  # MOVED or ASK: a plain URL to a cluster node
            raise cluster_node_error(exc) from exc
        mapped = as_transient(exc)
        if mapped is exc:
            raise
        raise mapped from exc
    return format_from(found)
