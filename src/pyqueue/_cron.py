"""Declaring a settings object's cron schedules at start-up, and forgetting old ones.

Declaring is idempotent: a schedule's next instance has a deterministic id, so every
worker that starts adds the same job once (Bull's repeat keys, see
:mod:`pyqueue._scheduling`). To remove what a settings object declared earlier and no
longer lists, each queue keeps a record (a hash under the queue's keys, see
:attr:`QueueKeys.cron_registry <pyqueue._protocol.bull.keys.QueueKeys.cron_registry>`):
each declared schedule's repeat key, with the name of the settings that declared it.
Schedules declared by anything else (a producer, a Node app) are not in the record
under that name, so they are never removed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from pyqueue.options import JobOptions
    from pyqueue.queue import Queue
    from pyqueue.settings import PlannedCron


async def declare(queue: Queue[Any], planned: Sequence[PlannedCron], owner: str) -> None:
    """Make ``queue``'s schedules of ``owner`` exactly ``planned``.

    Raises:
        InvalidOptionsError: a schedule has no future fire time (nothing is written).
        redis.exceptions.RedisError: Redis failed; declaring again is safe.
    """
    registry = queue.keys.cron_registry
    recorded = cast("dict[bytes, bytes]", await queue.client.hgetall(registry))
    wanted = {item.key: item for item in planned}
    mine = {key.decode() for key, value in recorded.items() if value.decode() == owner}
    for key in sorted(mine - wanted.keys()):
        await queue.remove_repeatable_by_key(key)
        await queue.client.hdel(registry, key)
    for key, item in wanted.items():
        await queue.add(item.cron.data, name=item.job_name, repeat=item.cron.repeat(),
                        **_keywords(item.cron.options))
        await queue.client.hset(registry, key, owner)


def _keywords(options: JobOptions | None) -> dict[str, Any]:
    if options is None:
        return {}
    return {f.name: getattr(options, f.name) for f in fields(options)
            if f.name != "extra" and getattr(options, f.name) is not None}
