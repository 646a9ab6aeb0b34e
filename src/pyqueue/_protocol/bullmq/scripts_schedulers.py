"""BullMQ mode's job scheduler calls: upsert, chaining from a started iteration,
removal and reading, as Node's ``Queue`` and ``Worker`` make them.

:class:`SchedulerCalls` is a mixin of :class:`.protocol.BullMQProtocol`; the
next-run arithmetic and iteration options come from :mod:`.schedulers`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from pyqueue._protocol.bullmq import script_args_admin as adm
from pyqueue._protocol.bullmq.schedulers import chain_plan, stored, upsert_plan
from pyqueue._protocol.bullmq.scripts import BullMQScripts, bullmq_error
from pyqueue._protocol.bullmq.wire import dumps, loads, public_options
from pyqueue._protocol.interface import SchedulerRepeat


class SchedulerCalls(BullMQScripts):
    """Job schedulers of one queue (the same client and keys as the other calls)."""

    async def upsert_job_scheduler(
        self, scheduler_id: str, repeat: SchedulerRepeat, *, now: int, name: str | None = None,
        data_json: str = "{}", template_opts: Mapping[str, Any] | None = None,
    ) -> tuple[str, int] | None:
        """Create or replace a scheduler and its next iteration (Queue.upsertJobScheduler).

        ``template_opts`` are job options by BullMQ's public names. Returns
        ``(iteration id, delay ms)``, or None when a pattern has no next run.

        Raises:
            InvalidOptionsError: an end date in the past.
            JobStateError: the iteration's id is taken (-10, -11).
        """
        template = stored(template_opts or {})
        plan = upsert_plan(scheduler_id, repeat, template, now=now)
        if plan is None:
            return None
        next_millis, iteration = plan
        built = adm.add_scheduler_args(
            self._keys, scheduler_id, now=now, next_millis=next_millis,
            name=name or scheduler_id, data_json=data_json, template_json=dumps(template),
            iteration_json=dumps(iteration), every=repeat.every, pattern=repeat.pattern,
            tz=repeat.tz, limit=repeat.limit, start_date=repeat.start_date,
            end_date=repeat.end_date, offset=repeat.offset,
        )
        raw = await self._run("addJobScheduler", built)
        if isinstance(raw, int):
            raise bullmq_error(raw, scheduler_id, "addJobScheduler")
        job_id, delay = raw
        return job_id.decode(), int(delay)

    async def schedule_next(self, job_id: str, raw_opts: Mapping[str, Any],
                            scheduler_id: str | None, *, now: int) -> str | None:
        """The scheduler's next iteration, as a Node Worker schedules it when it
        takes ``job_id``; None when it is not a scheduler's current iteration,
        the limit or end date is reached, or the next one exists already."""
        if not scheduler_id:
            return None
        plan = chain_plan(scheduler_id, raw_opts, now=now)
        if plan is None:
            return None
        next_millis, iteration = plan
        built = adm.update_scheduler_args(
            self._keys, scheduler_id, now=now, next_millis=next_millis, producer_id=job_id,
            iteration_json=dumps(iteration),
        )
        raw = await self._run("updateJobScheduler", built)
        return None if raw is None else cast("bytes", raw).decode()

    async def remove_job_scheduler(self, scheduler_id: str) -> bool:
        """removeJobScheduler-3: False when there was no such scheduler."""
        code: int = await self._run("removeJobScheduler",
                                    adm.remove_scheduler_args(self._keys, scheduler_id))
        return code == 0

    async def get_job_scheduler(self, scheduler_id: str) -> dict[str, Any] | None:
        """The scheduler as Node's ``getJobScheduler`` shows it, or None."""
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hgetall(self._keys.scheduler(scheduler_id))
            pipe.zscore(self._keys.repeat, scheduler_id)
            raw, score = await pipe.execute()
        if not raw or score is None:
            return None
        return scheduler_json(scheduler_id, raw, int(score))

    async def get_job_schedulers(self, start: int = 0, end: int = -1, *,
                                 asc: bool = False) -> list[dict[str, Any]]:
        """Schedulers by next run (latest first unless ``asc``), as Node lists them."""
        if asc:
            found = await self._client.zrange(self._keys.repeat, start, end, withscores=True)
        else:
            found = await self._client.zrevrange(self._keys.repeat, start, end, withscores=True)
        out = []
        for member, score in cast("list[tuple[bytes, float]]", found):
            one = await self.get_job_scheduler(member.decode())
            if one is not None:
                one["next"] = int(score)
                out.append(one)
        return out


def scheduler_json(scheduler_id: str, raw: Mapping[bytes, bytes], next_ms: int) -> dict[str, Any]:
    """A scheduler hash as Node's transformSchedulerData returns it."""
    text = {k.decode(): v.decode("utf-8", "replace") for k, v in raw.items()}
    out: dict[str, Any] = {"key": scheduler_id, "name": text.get("name"), "next": next_ms}
    for field, key in (("ic", "iterationCount"), ("limit", "limit"), ("startDate", "startDate"),
                       ("endDate", "endDate"), ("every", "every"), ("offset", "offset")):
        value = text.get(field)
        if value:
            out[key] = int(float(value))
    for field in ("tz", "pattern"):
        if text.get(field):
            out[field] = text[field]
    if text.get("data") or text.get("opts"):
        template: dict[str, Any] = {}
        if text.get("data"):
            template["data"] = loads(text["data"])
        if text.get("opts"):
            template["opts"] = public_options(loads(text["opts"]))
        out["template"] = template
    return out
