"""The keys a migration reads and writes: the Bull side, the BullMQ side, its own.

Bull's and BullMQ's key names come from their keys modules; this module only
names the migration's own keys, all under the *target* queue (where a later
run, or an operator, finds them again):

* ``pq-migrate:state``: a hash: where the jobs come from, whether the Bull
  structures were staged (in place), and a counter per moved state;
* ``pq-migrate:ids``: a hash, Bull id -> BullMQ id, for every job whose id
  changed (custom ids BullMQ refuses, counter ids taken in the target);
* ``pq-migrate:schedulers``: a hash, Bull repeat key -> job scheduler id;
* ``pq-migrate:suspects``: a sorted set of active Bull jobs seen without a
  lock, scored by when that was first seen (two sightings make a stall);
* in place only, ``pq-migrate:src:<wait|paused|priority|delayed|completed|failed|repeat>``:
  Bull's structures, renamed aside at the start so that the jobs still to
  convert are never confused with the ones already converted, which land in
  the same key names.

None of these names can be a BullMQ job's key: BullMQ refuses custom ids with
one ``:``, and its counter ids are digits.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyqueue._protocol.bull.keys import QueueKeys
from pyqueue._protocol.bullmq.keys import BullMQKeys

_OWN = "pq-migrate:"
# Bull's structures a migration in place renames aside (active stays: its jobs
# are held by workers, or by locks that have to expire first).
STAGED: tuple[str, ...] = ("wait", "paused", "priority", "delayed", "completed", "failed",
                           "repeat")


@dataclass(frozen=True, slots=True)
class BullSide:
    """Where the Bull jobs still to move are: the live queue, or its staged copy.

    Job hashes, logs and locks are always the live queue's (``keys``).
    """

    keys: QueueKeys
    wait: str
    paused: str
    priority: str
    delayed: str
    completed: str
    failed: str
    repeat: str

    @property
    def active(self) -> str:
        return self.keys.active

    @property
    def base(self) -> str:
        return self.keys.base

    def state_key(self, state: str) -> str:
        """The list or sorted set holding Bull jobs of ``state`` (``active`` too)."""
        if state == "active":
            return self.keys.active
        return str(getattr(self, state))


@dataclass(frozen=True, slots=True)
class MigrationKeys:
    """Every key of one migration, from ``source`` (Bull 4) to ``target`` (BullMQ 6).

    Args:
        source: The Bull queue's keys.
        target: The BullMQ queue's keys; the same prefix and name as ``source``
            for a migration in place.
    """

    source: QueueKeys
    target: BullMQKeys
    bull: BullSide = field(init=False)

    def __post_init__(self) -> None:
        live = self.source
        if self.in_place:
            names = {name: self.staged(name) for name in STAGED}
        else:
            names = {name: live.key(name) for name in STAGED}
        object.__setattr__(self, "bull", BullSide(keys=live, **names))

    @property
    def in_place(self) -> bool:
        """Whether both formats share one set of keys."""
        return self.source.base == self.target.base

    def own(self, suffix: str) -> str:
        return self.target.key(_OWN + suffix)

    @property
    def state(self) -> str:
        return self.own("state")

    @property
    def ids(self) -> str:
        return self.own("ids")

    @property
    def schedulers(self) -> str:
        return self.own("schedulers")

    @property
    def suspects(self) -> str:
        return self.own("suspects")

    def staged(self, name: str) -> str:
        """Where a migration in place keeps Bull's structure ``name`` meanwhile."""
        return self.source.key(f"{_OWN}src:{name}")

    @property
    def staged_keys(self) -> list[str]:
        return [self.staged(name) for name in STAGED]

    @property
    def own_keys(self) -> list[str]:
        """The migration's bookkeeping keys (not the staged structures)."""
        return [self.state, self.ids, self.schedulers, self.suspects]
