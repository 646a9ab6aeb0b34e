"""BullMQ mode's Lua script files: names, key counts, sources, registration.

Each command lives in ``commands/<command>-<numkeys>.lua``; shared fragments in
``commands/includes/`` are pulled in with ``-- @include <name>`` lines, each
at most once per script, in the order the command lists them. This module
reads them with :mod:`importlib.resources`, resolves the includes once per
process, and registers every script once per client. Calling them is
:class:`pyqueue._protocol.bullmq.scripts.BullMQScripts`'s job.
"""

from __future__ import annotations

import functools
import re
import weakref
from importlib import resources
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    import redis
    import redis.asyncio as aioredis
    from redis.commands.core import AsyncScript, Script

SCRIPT_NAMES: tuple[str, ...] = (
    "addJob-11",
    "addJobScheduler-10",
    "addJobs-11",
    "addLog-2",
    "changeDelay-4",
    "changePriority-7",
    "cleanJobsInSet-3",
    "drain-5",
    "extendLock-2",
    "extendLocks-1",
    "getCounts-1",
    "getCountsPerPriority-2",
    "getState-8",
    "isFinished-3",
    "moveJobFromActiveToWait-9",
    "moveJobsToWait-6",
    "moveStalledJobsToWait-8",
    "moveToActive-9",
    "moveToDelayed-11",
    "moveToFinished-13",
    "obliterate-2",
    "pause-7",
    "promote-9",
    "promoteDelayed-8",
    "removeDeduplicationKey-1",
    "removeJob-2",
    "removeJobScheduler-3",
    "reprocessJob-9",
    "retryJob-10",
    "updateData-1",
    "updateJobScheduler-10",
    "updateProgress-3",
)

_FILE_OF: dict[str, str] = {name.rsplit("-", 1)[0]: name for name in SCRIPT_NAMES}
_INCLUDE = re.compile(r"^\s*--\s*@include\s+(\S+)\s*$")


def file_name(command: str) -> str:
    """``addJob`` or ``addJob-11`` -> ``addJob-11``.

    Raises:
        KeyError: unknown command.
    """
    if command in _FILE_OF:
        return _FILE_OF[command]
    if command in SCRIPT_NAMES:
        return command
    raise KeyError(f"unknown BullMQ-mode script {command!r}")


def numkeys(command: str) -> int:
    """The number of KEYS a script takes, read from its file name."""
    return int(file_name(command).rsplit("-", 1)[1])


def _read(*parts: str) -> str:
    folder = resources.files("pyqueue._protocol.bullmq").joinpath("commands", *parts)
    return folder.read_text(encoding="utf-8")


def _resolve(text: str, seen: set[str]) -> str:
    out: list[str] = []
    for line in text.splitlines():
        match = _INCLUDE.match(line)
        if match is None:
            out.append(line)
            continue
        name = match.group(1)
        if name not in seen:
            seen.add(name)
            out.append(_resolve(_read("includes", f"{name}.lua"), seen))
    return "\n".join(out) + "\n"


@functools.cache
def load_source(command: str) -> str:
    """The Lua source of a script with every ``-- @include`` resolved.

    Args:
        command: A command (``addJob``) or file stem (``addJob-11``).

    Raises:
        KeyError: unknown command.
        FileNotFoundError: an include names a missing fragment.
    """
    return _resolve(_read(f"{file_name(command)}.lua"), set())


Registry: TypeAlias = dict[str, "AsyncScript"]
_REGISTERED: weakref.WeakKeyDictionary[aioredis.Redis, Registry] = weakref.WeakKeyDictionary()


def registered(client: aioredis.Redis) -> Registry:
    """Every script registered on an asyncio client, once per client.

    redis-py's script objects load themselves again after a SCRIPT FLUSH or a
    failover (NOSCRIPT), so registering once is enough.

    Returns:
        The client's script objects by command name (``addJob``).
    """
    scripts = _REGISTERED.get(client)
    if scripts is None:
        scripts = {
            name.rsplit("-", 1)[0]: client.register_script(load_source(name))
            for name in SCRIPT_NAMES
        }
        _REGISTERED[client] = scripts
    return scripts


def register_sync(client: redis.Redis, command: str) -> Script:
    """One script on a blocking client (the lock renewal thread's)."""
    return client.register_script(load_source(command))
