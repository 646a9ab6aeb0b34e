"""What must hold before a migration may start, and the clients that could break it.

In place, Bull's and BullMQ's code would share one set of keys: a Node Bull
(or pyqueue Bull-mode) worker still running would fetch converted jobs with
Bull's scripts, so the queue must have none. Workers name their connection
``<prefix>:<base64(queue)>`` (Bull's ``getWorkers`` and bull-board count
them by it; BullMQ's add ``:w:<name>`` or ``:qe``), which is what CLIENT LIST
is searched for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from pyqueue._protocol.formats import detect_format

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from pyqueue._protocol.migration.keys import MigrationKeys


async def queue_clients(client: aioredis.Redis, mk: MigrationKeys) -> list[str]:
    """The connections named as a worker of the source queue: ``"addr name"`` each."""
    name = mk.source.worker_client_name
    found = cast("list[dict[str, Any]]", await client.client_list())
    out = []
    for entry in found:
        own = str(entry.get("name") or "")
        if own == name or own.startswith(name + ":"):
            out.append(f"{entry.get('addr', '?')} {own}")
    return out


async def migration_state(client: aioredis.Redis, mk: MigrationKeys) -> dict[str, str]:
    """The target's record of a migration into it (empty: none yet)."""
    raw = cast("dict[bytes, bytes]", await client.hgetall(mk.state))
    return {k.decode(): v.decode() for k, v in raw.items()}


async def blockers(client: aioredis.Redis, mk: MigrationKeys, *, force: bool) -> list[str]:
    """Why a migration from ``mk.source`` to ``mk.target`` must not start (empty: it may)."""
    out: list[str] = []
    src, dst = mk.source, mk.target
    state = await migration_state(client, mk)
    recorded = state.get("source")
    if recorded and recorded != src.base:
        out.append(f"{dst.base[:-1]} already receives the jobs of {recorded[:-1]} "
                   "(one target takes one source)")
    source_format = await detect_format(client, src.prefix, src.queue)
    resuming = recorded == src.base
    if source_format == "bullmq" and not resuming:
        out.append(f"{src.base[:-1]} is a BullMQ queue already, not a Bull one")
    if not mk.in_place:
        target_format = await detect_format(client, dst.prefix, dst.queue)
        if target_format == "bull":
            out.append(f"{dst.base[:-1]} is a Bull queue: migrate into a new BullMQ queue "
                       "or an existing BullMQ one")
    elif not force and not state.get("finished"):
        workers = await queue_clients(client, mk)
        if workers:
            listed = ", ".join(workers[:5]) + (" ..." if len(workers) > 5 else "")
            out.append(
                f"{len(workers)} worker connection(s) still use {src.base[:-1]} ({listed}): "
                "stop every Bull worker before migrating in place (or migrate into "
                "another prefix or name, which the old queue's workers may keep serving; "
                "force=True / --force overrides this check)"
            )
    return out
