"""Which command confirms a write for :class:`~pyqueue.options.Durability`: WAIT or WAITAOF.

``WAIT n t`` returns once ``n`` replicas *received* the connection's writes.
``WAITAOF l n t`` (Redis >= 7.2) returns once they are *fsynced* to the AOF of
the master (``l`` = 1) and of ``n`` replicas: a write then survives the loss of
the master and a restart of the replicas. A replica running without AOF never
confirms a WAITAOF (Redis reports no fsynced offset for it), and ``l`` = 1 is an
error on a master without AOF, so the choice depends on the deployment:

- ``aof=None`` (auto): WAITAOF when the server is >= 7.2 *and* the master runs
  with AOF (a deployment that persists its master with AOF persists its replicas
  the same way); WAIT otherwise.
- ``aof=True``: WAITAOF, refused with a clear error on an older server or a
  master without AOF.
- ``aof=False``: always WAIT.

The facts come from ``INFO server`` (``redis_version``) and ``INFO persistence``
(``aof_enabled``), asked once per connection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyqueue.errors import InvalidOptionsError

WAITAOF_SINCE = (7, 2, 0)


@dataclass(frozen=True, slots=True)
class ServerFacts:
    version: tuple[int, ...]
    aof_enabled: bool


@dataclass(frozen=True, slots=True)
class WaitPlan:
    """The command to send after a write, and how to read its reply."""

    command: tuple[str | int, ...]

    @property
    def waitaof(self) -> bool:
        return self.command[0] == "WAITAOF"

    def confirmed(self, reply: Any) -> tuple[int, bool]:
        """``(replicas that confirmed, local AOF fsync confirmed)`` from the reply."""
        if not self.waitaof:
            return int(reply), True
        local, replicas = reply
        return int(replicas), int(local) >= 1

    def what(self) -> str:
        return "fsynced to their AOF (WAITAOF)" if self.waitaof else "confirmed (WAIT)"


def info_fields(raw: bytes | str) -> dict[str, str]:
    """The ``key:value`` lines of an INFO reply."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and not key.startswith("#"):
            out[key.strip()] = value.strip()
    return out


def parse_version(text: str) -> tuple[int, ...]:
    """``"7.2.4"`` -> ``(7, 2, 4)``; anything unreadable counts as (0,) (use WAIT)."""
    parts: list[int] = []
    for piece in text.split("."):
        digits = ""
        for ch in piece:
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            break
        parts.append(int(digits))
        if len(digits) < len(piece):  # "0-m01": a pre-release tag ends the version
            break
    return tuple(parts) or (0,)


def _at_least(version: tuple[int, ...], wanted: tuple[int, ...]) -> bool:
    # (7, 2) is 7.2.0: pad before comparing, as (7, 2) < (7, 2, 0) for tuples.
    width = max(len(version), len(wanted))
    return version + (0,) * (width - len(version)) >= wanted + (0,) * (width - len(wanted))


def at_least_72(version: tuple[int, ...]) -> bool:
    return _at_least(version, WAITAOF_SINCE)


def plan(replicas: int, timeout_ms: int, aof: bool | None, facts: ServerFacts) -> WaitPlan:
    """The confirming command for a ``Durability`` on a server with these facts.

    Raises:
        InvalidOptionsError: ``aof=True`` where WAITAOF cannot work (named why).
    """
    supported = _at_least(facts.version, WAITAOF_SINCE)
    if aof is True:
        shown = ".".join(map(str, facts.version))
        if not supported:
            raise InvalidOptionsError(
                f"durability.aof: WAITAOF needs Redis >= 7.2, but the server is {shown}; "
                "use aof=None to fall back to WAIT"
            )
        if not facts.aof_enabled:
            raise InvalidOptionsError(
                "durability.aof: WAITAOF needs the master to run with appendonly yes, "
                "but its INFO persistence says aof_enabled:0"
            )
    if aof is False or not supported or not facts.aof_enabled:
        return WaitPlan(("WAIT", replicas, timeout_ms))
    return WaitPlan(("WAITAOF", 1, replicas, timeout_ms))
