"""The migration's Lua script files: names, key counts, sources, registration.

Each command lives in ``commands/<command>-<numkeys>.lua``. A ``-- @include
<name>`` line pulls in ``commands/includes/<name>.lua``; ``-- @include
bullmq:<name>`` pulls in one of BullMQ mode's fragments, so that a job the
migration files into BullMQ's structures is filed by the very code BullMQ
mode's own scripts use (priority scores, delayed scores, markers, schedulers).
Each fragment comes in at most once per script.
"""

from __future__ import annotations

import functools
import re
import weakref
from importlib import resources
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    import redis.asyncio as aioredis
    from redis.commands.core import AsyncScript

SCRIPT_NAMES: tuple[str, ...] = (
    "begin-26",
    "finish-11",
    "migrateJobs-19",
    "migrateSchedule-17",
)

_FILE_OF: dict[str, str] = {name.rsplit("-", 1)[0]: name for name in SCRIPT_NAMES}
_INCLUDE = re.compile(r"^\s*--\s*@include\s+(\S+)\s*$")
_PACKAGES = {"": "pyqueue._protocol.migration", "bullmq": "pyqueue._protocol.bullmq"}


def file_name(command: str) -> str:
    """``migrateJobs`` or ``migrateJobs-19`` -> ``migrateJobs-19`` (KeyError if unknown)."""
    if command in _FILE_OF:
        return _FILE_OF[command]
    if command in SCRIPT_NAMES:
        return command
    raise KeyError(f"unknown migration script {command!r}")


def numkeys(command: str) -> int:
    """The number of KEYS a script takes, read from its file name."""
    return int(file_name(command).rsplit("-", 1)[1])


def _read(package: str, *parts: str) -> str:
    return resources.files(package).joinpath("commands", *parts).read_text(encoding="utf-8")


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
        owner, _, fragment = name.rpartition(":")
        if owner not in _PACKAGES:
            raise FileNotFoundError(f"include {name!r}: unknown folder {owner!r}")
        body = _read(_PACKAGES[owner], "includes", f"{fragment}.lua")
        if owner:
            # A BullMQ fragment's own includes name BullMQ's fragments.
            body = "\n".join(
                f"-- @include {owner}:{m.group(1)}" if (m := _INCLUDE.match(line)) else line
                for line in body.splitlines()
            )
        out.append(_resolve(body, seen))
    return "\n".join(out) + "\n"


@functools.cache
def load_source(command: str) -> str:
    """The Lua source of a script with every include resolved.

    Raises:
        KeyError: unknown command.
        FileNotFoundError: an include names a missing fragment.
    """
    return _resolve(_read(_PACKAGES[""], f"{file_name(command)}.lua"), set())


Registry: TypeAlias = dict[str, "AsyncScript"]
_REGISTERED: weakref.WeakKeyDictionary[aioredis.Redis, Registry] = weakref.WeakKeyDictionary()


def registered(client: aioredis.Redis) -> Registry:
    """Every migration script registered on an asyncio client, once per client."""
    scripts = _REGISTERED.get(client)
    if scripts is None:
        scripts = {
            name.rsplit("-", 1)[0]: client.register_script(load_source(name))
            for name in SCRIPT_NAMES
        }
        _REGISTERED[client] = scripts
    return scripts
