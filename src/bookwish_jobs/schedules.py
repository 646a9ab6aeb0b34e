"""The repeatable jobs, declared exactly as the Node app's start-up declares them.

A Bull schedule is identified by its repeat key ``name:jobId:endDate:tz:cron``. The
Node app calls ``queue.add(data, {repeat: {cron}, jobId?})`` without a job name and
without ``tz``, so its keys are:

=====================  ======================================================
queue                  repeat key
=====================  ======================================================
square-sync            ``__default__:square-sync-<storeId>:::0 * * * *``
reservation-cleanup    ``__default__:reservation-cleanup-recurring:::*/15 * * * *``
order-digest           ``__default__::::0 6 * * *`` (data ``{type: 'daily'}``)
=====================  ======================================================

bookwish_jobs declares the same name, job id, cron and (absent) tz, so both sides
write the same key and the same instance ids: Redis keeps one schedule per job,
whoever declares it, however often. Without ``tz`` the cron fires in the local zone
of the process that schedules the next instance (Node and pyqueue alike), so every
process on these queues must run with the same ``TZ``.

Earlier bookwish_jobs versions used other keys (named jobs, ``every`` instead of
cron, a ``tz``); :data:`LEGACY_JOB_NAMES` lists their job names so start-up can
remove them.
"""

from __future__ import annotations

from dataclasses import dataclass

from bookwish_jobs import names
from pyqueue import Repeat

DEFAULT_JOB_NAME = "__default__"
SQUARE_SYNC_CRON = "0 * * * *"
RESERVATION_CLEANUP_CRON = "*/15 * * * *"
RESERVATION_CLEANUP_ID = "reservation-cleanup-recurring"
ORDER_DIGEST_CRON = "0 6 * * *"
SQUARE_SYNC_ID_PREFIX = "square-sync-"

# The job names bookwish_jobs used before it adopted Bull's default name; any schedule
# under one of these names on our queues was made by an older bookwish_jobs.
LEGACY_JOB_NAMES: dict[str, str] = {
    names.NOTIFICATIONS: "send-notification",
    names.SQUARE_SYNC: "square-sync",
    names.RESERVATION_CLEANUP: "reservation-cleanup",
    names.ORDER_DIGEST: "order-digest",
}


@dataclass(frozen=True, slots=True)
class Schedule:
    queue: str
    repeat: Repeat

    @property
    def key(self) -> str:
        return self.repeat.key(DEFAULT_JOB_NAME)


def square_sync_id(store_id: str) -> str:
    """The job id of a store's hourly sync (also dedupes a manual trigger against it)."""
    return f"{SQUARE_SYNC_ID_PREFIX}{store_id}"


def square_sync(store_id: str) -> Schedule:
    return Schedule(names.SQUARE_SYNC,
                    Repeat(cron=SQUARE_SYNC_CRON, job_id=square_sync_id(store_id)))


RESERVATION_CLEANUP = Schedule(
    names.RESERVATION_CLEANUP, Repeat(cron=RESERVATION_CLEANUP_CRON, job_id=RESERVATION_CLEANUP_ID))
ORDER_DIGEST = Schedule(names.ORDER_DIGEST, Repeat(cron=ORDER_DIGEST_CRON))


def is_legacy(queue: str, entry: dict[str, object]) -> bool:
    """Whether a ``get_repeatable_jobs`` entry was declared by an older bookwish_jobs."""
    return entry.get("name") == LEGACY_JOB_NAMES.get(queue)
