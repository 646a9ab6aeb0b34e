"""The Lua script files: their names, key counts and sources, and registration.

Each Bull command lives in ``commands/<command>-<numkeys>.lua`` (fragments in
``commands/includes/``, pulled in with ``-- @include <name>`` lines). This module
reads them with :mod:`importlib.resources`, resolves includes once, and
registers every script once per asyncio client. Calling the scripts is
:class:`pyqueue._protocol.bull.scripts.Scripts`'s job.
"""

from __future__ import annotations

import re
import weakref
from importlib import resources
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    import redis.asyncio as aioredis
    from redis.commands.core import AsyncScript

SCRIPT_NAMES: tuple[str, ...] = (
    "abortJob-9",
    "addJob-6",
    "addJobs-6",
    "addRepeatableJob-7",
    "addLog-2",
    "cleanJobsInSet-3",
    "empty-8",
    "extendLock-2",
    "getCountsPerPriority-4",
    "isFinished-2",
    "isJobInList-1",
    "moveStalledJobsToWait-7",
    "moveToActive-8",
    "moveToDelayed-4",
    "moveToFinished-9",
    "obliterate-2",
    "pause-5",
    "promote-5",
    "releaseLock-1",
    "removeJob-10",
    "removeJobs-8",
    "removeRepeatable-2",
    "reprocessJob-6",
    "retryJob-7",
    "retryJobs-5",
    "takeLock-1",
    "updateData-1",
    "updateDelaySet-6",
    "updateProgress-2",
)

_FILE_OF: dict[str, str] = {name.rsplit("-", 1)[0]: name for name in SCRIPT_NAMES}
_INCLUDE = re.compile(r"^\s*--\s*@include\s+(\S+)\s*$")


def _file_name(command: str) -> str:
    """``addJob`` or ``addJob-6`` -> ``addJob-6``."""
    if command in _FILE_OF:
        return _FILE_OF[command]
    if command in SCRIPT_NAMES:
        return command
    raise KeyError(f"unknown script {command!r}")


def numkeys(command: str) -> int:
    """The number of KEYS a script takes, parsed from its file name.

    Args:
        command: A command (``addJob``) or file stem (``addJob-6``).
    """
    return int(_file_name(command).rsplit("-", 1)[1])


def _read(*parts: str) -> str:
    commands = resources.files("pyqueue._protocol.bull").joinpath("commands", *parts)
    return commands.read_text(encoding="utf-8")


def _resolve(text: str, seen: set[str]) -> str:
    out: list[str] = []
    for line in text.splitlines():
        match = _INCLUDE.match(line)
        if match is None:
            out.append(line)
            continue
        name = match.group(1)
        if name in seen:
            continue
        seen.add(name)
        out.append(_resolve(_read("includes", f"{name}.lua"), seen))
    return "\n".join(out) + "\n"


def load_source(command: str) -> str:
    """The Lua source of a script with every ``-- @include`` resolved once.

    Args:
        command: A command (``addJob``) or file stem (``addJob-6``).

    Raises:
        KeyError: unknown command.
        FileNotFoundError: an include names a missing fragment.
    """
    return _resolve(_read(f"{_file_name(command)}.lua"), set())


Registry: TypeAlias = dict[str, "AsyncScript"]
_REGISTERED: weakref.WeakKeyDictionary[aioredis.Redis, Registry] = weakref.WeakKeyDictionary()


def registered(client: aioredis.Redis) -> Registry:
    """Register every script once per client (redis-py reloads after SCRIPT FLUSH).

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
