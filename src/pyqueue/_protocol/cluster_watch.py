"""Leaving a cluster node as soon as it stops owning a queue's slot.

A queue's connections go to its slot's master (:class:`~pyqueue._protocol.routing.SlotRoute`).
``MOVED`` tells a connection that sends a command to the wrong node, but a node
that stopped answering (a frozen VM, a partition: no RST, no reply) tells
nothing: each command waits out the socket timeout, and the next connect goes
back to the same cached address. So one :class:`SlotWatcher` thread per cluster
and process asks ``CLUSTER SLOTS`` every :data:`POLL_EVERY` seconds; when a
slot's master changes it updates the route and severs the route's connections
(``shutdown`` of their sockets, safe from another thread), so the commands in
flight fail at once and the next connect goes to the new master.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import weakref
from collections.abc import Sequence
from typing import Any, Protocol

import redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from pyqueue._protocol.sentinel_watch import Severable

Address = tuple[str, int]


# Our own generator: a library must not move the application's global random state
# (a watcher thread shuffling through it perturbed seeded code, Hypothesis in our tests).
_RANDOM = random.Random()

class SlotRoute(Protocol):
    """What the watcher needs of :class:`pyqueue._protocol.routing.SlotRoute`."""

    slot: int

    @property
    def address(self) -> Address | None: ...

    def forget(self, moved_to: Address | None = None) -> None: ...


POLL_EVERY = 1.0
"""Seconds between two ``CLUSTER SLOTS`` reads."""
_log = logging.getLogger("pyqueue.cluster")


def master_of(slots: Any, slot: int) -> Address | None:
    """The master serving ``slot`` in a raw ``CLUSTER SLOTS`` reply."""
    for start, end, primary, *_ in slots or []:
        if int(start) <= slot <= int(end):
            host = primary[0].decode() if isinstance(primary[0], bytes) else str(primary[0])
            return host, int(primary[1])
    return None


class SlotWatcher:
    """Polls one cluster's slot map; moves routes (and severs their connections) that changed."""

    def __init__(self, nodes: Sequence[Address], kwargs: dict[str, Any], ssl: bool) -> None:
        self._nodes = list(nodes)
        self._kwargs = {"socket_timeout": 1.0, "socket_connect_timeout": 1.0, **kwargs}
        self._ssl = ssl
        self._routes: weakref.WeakKeyDictionary[SlotRoute, weakref.WeakSet[Any]] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._users = 0
        self.moves = 0

    def acquire(self) -> None:
        with self._lock:
            self._users += 1

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            last = self._users <= 0
        if last:
            self._stop.set()

    def register(self, route: SlotRoute, conn: Severable) -> None:
        """Sever ``conn`` when ``route``'s slot moves to another master (both held weakly)."""
        with self._lock:
            conns = self._routes.get(route)
            if conns is None:
                conns = self._routes[route] = weakref.WeakSet()
            conns.add(conn)
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(
                    target=self._run, name="pyqueue-cluster-slots", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.wait(POLL_EVERY):
                slots = self._read_slots()
                if slots is not None:
                    self._apply(slots)
        except Exception:  # the thread must never die noisily; connections still work
            _log.exception("cluster slot watcher stopped")

    def _read_slots(self) -> Any:
        nodes = list(self._nodes)
        _RANDOM.shuffle(nodes)
        for host, port in nodes:
            client = redis.Redis(
                host=host, port=port, ssl=self._ssl, retry=Retry(NoBackoff(), 0), **self._kwargs
            )
            try:
                return client.execute_command("CLUSTER SLOTS")  # type: ignore[no-untyped-call]
            except (RedisError, OSError):
                continue
            finally:
                client.close()
        return None

    def _apply(self, slots: Any) -> None:
        with self._lock:
            routes = [(route, list(conns)) for route, conns in self._routes.items()]
        for route, conns in routes:
            now = master_of(slots, route.slot)
            before = route.address
            if now is None or before is None or now == before:
                continue
            self.moves += 1
            route.forget(now)
            _log.warning(
                "cluster slot %d moved from %s:%d to %s:%d; moving %d connection(s)",
                route.slot, before[0], before[1], now[0], now[1], len(conns),
            )
            for conn in conns:
                with contextlib.suppress(Exception):
                    conn.sever()


_WATCHERS: dict[tuple[Any, ...], SlotWatcher] = {}
_WATCHERS_LOCK = threading.Lock()


def slot_watcher_for(
    nodes: Sequence[Address], kwargs: dict[str, Any], ssl: bool, owner: object
) -> SlotWatcher:
    """The process's watcher of the cluster seeded by ``nodes``; released with ``owner``."""
    key = (tuple(sorted(nodes)), ssl, tuple(sorted((k, repr(v)) for k, v in kwargs.items())))
    with _WATCHERS_LOCK:
        watcher = _WATCHERS.get(key)
        if watcher is None or watcher._stop.is_set():
            watcher = _WATCHERS[key] = SlotWatcher(nodes, kwargs, ssl)
        watcher.acquire()
    weakref.finalize(owner, watcher.release)
    return watcher
