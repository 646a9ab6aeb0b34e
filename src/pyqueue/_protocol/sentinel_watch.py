"""Following Sentinel's master changes at once, not at the next connection error.

A master that loses a failover is not told at once. After a double failover (or
a partition that heals), the first promoted server stays a master until
Sentinel's next poll turns it into a replica, 11 s in one measured run, and
every connection already open to it keeps writing there; those writes are
discarded when it resyncs. Asking Sentinel only at connect time cannot help a
connection that is already open.

So each process runs one :class:`Watcher` thread per monitored master (shared
by every queue, client and event loop that uses it): it subscribes to
``+switch-master`` (and the failover steps before it) on every Sentinel and,
on each message and every :data:`POLL_EVERY` seconds, asks every Sentinel for
the newest configuration (see :meth:`Watcher._poll`).
When the address changes, every connection registered with it is severed
(``shutdown`` of its socket, which is safe from another thread): a command in
flight fails with a connection error, which callers already answer by
reconnecting, and the reconnect asks Sentinel again. A thread, not a task: a
route serves asyncio clients on any loop and the lock renewer's blocking client.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import weakref
from collections.abc import Sequence
from typing import Any, Protocol

import redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

Address = tuple[str, int]

ENABLED = True
"""False: connections are not followed between connects (the behaviour before; tests
set it to measure what following saves)."""

POLL_EVERY = 0.5
"""Seconds between two address checks by polling (``+switch-master`` is heard at once)."""
_LISTEN_SLICE = 0.05
# The failover's steps that move the master: a replica selected, told REPLICAOF
# NO ONE, seen promoted; the new configuration. Each makes the watcher poll.
_CHANNELS = (
    "+selected-slave", "+failover-state-send-slaveof-noone", "+promoted-slave",
    "+switch-master", "-failover-abort-slave-timeout", "-failover-abort-no-good-slave",
)
_log = logging.getLogger("pyqueue.sentinel")


class Severable(Protocol):
    """A connection that can be cut from another thread."""

    def sever(self) -> None: ...


def shutdown_socket(sock: Any) -> None:
    """Shut a socket down (both ways); whoever reads it then sees the connection end."""
    if sock is None:
        return
    with contextlib.suppress(OSError, ValueError, AttributeError):
        sock.shutdown(socket.SHUT_RDWR)


class Watcher:
    """Watches one Sentinel-monitored master; severs registered connections when it moves.

    Started by the first :meth:`register`; the thread stops when every route using
    it is gone (:func:`watcher_for` hands out one per master and process).
    """

    def __init__(
        self, sentinels: Sequence[Address], service: str, kwargs: dict[str, Any]
    ) -> None:
        self._sentinels = list(sentinels)
        self._service = service
        self._kwargs = {"socket_timeout": 1.0, "socket_connect_timeout": 1.0, **kwargs}
        self._conns: weakref.WeakSet[Any] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._users = 0
        self.address: Address | None = None
        self.epoch = -1
        self.switches = 0

    # --- users --------------------------------------------------------------

    def acquire(self) -> None:
        with self._lock:
            self._users += 1

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            last = self._users <= 0
        if last:
            self._stop.set()

    def register(self, conn: Severable) -> None:
        """Sever ``conn`` when the master moves (held weakly)."""
        if not ENABLED:
            return
        with self._lock:
            self._conns.add(conn)
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(
                    target=self._run, name=f"pyqueue-sentinel-{self._service}", daemon=True
                )
                self._thread.start()

    def located(self, address: Address) -> None:
        """A connection was told ``address``: the watcher's baseline, if it has none."""
        with self._lock:
            if self.address is None:
                self.address = address

    def newest(self) -> Address | None:
        """The master's address in the newest configuration seen (highest config epoch)."""
        with self._lock:
            return self.address if self.epoch >= 0 else None

    # --- the thread -----------------------------------------------------------

    def _moved(self, address: Address, epoch: int, why: str) -> None:
        # Sentinels disagree while a failover spreads: an older configuration (a
        # lower config epoch) never moves us back.
        with self._lock:
            if epoch < self.epoch or address == self.address:
                self.epoch = max(self.epoch, epoch)
                return
            old, self.address, self.epoch = self.address, address, epoch
            if old is None or old == address:
                return
            self.switches += 1
            conns = list(self._conns)
        _log.warning(
            "Sentinel master %s moved from %s:%d to %s:%d (%s); moving %d connection(s)",
            self._service, old[0], old[1], address[0], address[1], why, len(conns),
        )
        for conn in conns:
            conn.sever()

    def _run(self) -> None:
        try:
            self._watch()
        except Exception:  # the thread must never die noisily; connections still work
            _log.exception("Sentinel watcher for %s stopped", self._service)

    def _watch(self) -> None:
        subscriptions: dict[Address, Any] = {}
        polled_at = POLL_EVERY  # poll at once: the first answer sets the baseline
        clock = threading.Event()  # only for its wait(): an interruptible sleep
        turn = 0
        try:
            while not self._stop.is_set():
                for address in self._sentinels:
                    if address not in subscriptions:
                        subscriptions[address] = self._subscribe(address)
                heard = False
                for address, pubsub in list(subscriptions.items()):
                    if pubsub is None:
                        continue
                    try:
                        message = pubsub.get_message(timeout=_LISTEN_SLICE)
                    except (RedisError, OSError):
                        with contextlib.suppress(RedisError, OSError):
                            pubsub.close()
                        subscriptions[address] = None
                        continue
                    if message and message.get("type") == "message":
                        heard = self._heard(message.get("data")) or heard
                if all(p is None for p in subscriptions.values()):
                    clock.wait(_LISTEN_SLICE)
                polled_at += _LISTEN_SLICE * max(1, len(subscriptions))
                if polled_at >= POLL_EVERY or heard:
                    polled_at = 0.0
                    turn += 1
                    self._poll(turn)
                    # Retry the Sentinels we could not subscribe to, at the poll's pace.
                    for address in [a for a, p in subscriptions.items() if p is None]:
                        del subscriptions[address]
        finally:
            for pubsub in subscriptions.values():
                if pubsub is not None:
                    with contextlib.suppress(RedisError, OSError):
                        pubsub.close()

    def _client(self, address: Address) -> redis.Redis:
        # One try: a silent Sentinel must not hold up the others for seconds.
        return redis.Redis(
            host=address[0], port=address[1], retry=Retry(NoBackoff(), 0), **self._kwargs
        )

    def _subscribe(self, address: Address) -> Any:
        client = self._client(address)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(*_CHANNELS)
        except (RedisError, OSError):
            with contextlib.suppress(RedisError, OSError):
                pubsub.close()
            return None
        return pubsub

    def _heard(self, data: Any) -> bool:
        """A failover event about our master: poll at once (the messages carry no epoch)."""
        # "+switch-master <name> <old ip> <old port> <new ip> <new port>", or
        # "<type> <name> <ip> <port> @ <master name> <master ip> <master port>".
        parts = _text(data).split()
        return bool(parts) and (parts[0] == self._service or (
            "@" in parts and parts[parts.index("@") + 1:][:1] == [self._service]
        ))

    def _poll(self, turn: int) -> None:
        """Ask every Sentinel; follow the newest answer.

        Newest is the highest config epoch. A Sentinel running a failover names
        the replica it selected (flag ``promoted``) before its configuration
        switches; from the moment that replica is told ``REPLICAOF NO ONE`` the
        old master's writes are lost, so that replica wins over its own epoch's
        configuration, and connections wait for it (ROLE) instead of writing to
        the old master. An aborted failover drops the flag and we move back.
        """
        del turn
        best: tuple[int, int, Address] | None = None
        for address in self._sentinels:
            try:
                with contextlib.closing(self._client(address)) as client:
                    candidate = self._ask(client)
            except (RedisError, OSError, KeyError, ValueError, IndexError, TypeError):
                continue
            if best is None or candidate[:2] > best[:2]:
                best = candidate
        if best is not None:
            epoch, promoting, found = best
            self._moved(found, epoch, f"config epoch {epoch}"
                        + (", replica being promoted" if promoting else ""))

    def _ask(self, client: redis.Redis) -> tuple[int, int, Address]:
        """``(config epoch, 1 if promoting, address)`` from one Sentinel."""
        fields = _fields(client.execute_command(  # type: ignore[no-untyped-call]
            "SENTINEL", "MASTER", self._service
        ))
        epoch = int(fields.get("config-epoch", "0"))
        if "failover_in_progress" in fields.get("flags", ""):
            replicas = client.execute_command(  # type: ignore[no-untyped-call]
                "SENTINEL", "REPLICAS", self._service
            )
            for raw in replicas or []:
                replica = _fields(raw)
                if "promoted" in replica.get("flags", "").split(","):
                    return epoch, 1, (replica["ip"], int(replica["port"]))
        return epoch, 0, (fields["ip"], int(fields["port"]))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _fields(raw: Any) -> dict[str, str]:
    """``SENTINEL MASTER``'s reply (a flat list, or a dict under RESP3) as str to str."""
    if isinstance(raw, dict):
        items = list(raw.items())
    else:
        pairs = iter(raw or [])
        items = list(zip(pairs, pairs))  # noqa: B905 - one iterator, taken in pairs
    return {
        (k.decode() if isinstance(k, bytes) else str(k)): (
            v.decode() if isinstance(v, bytes) else str(v)
        )
        for k, v in items
    }


_WATCHERS: dict[tuple[Any, ...], Watcher] = {}
_WATCHERS_LOCK = threading.Lock()


def watcher_for(
    sentinels: Sequence[Address], service: str, kwargs: dict[str, Any], owner: object
) -> Watcher:
    """The process's watcher of ``service``; released when ``owner`` is collected."""
    key = (tuple(sentinels), service, tuple(sorted((k, repr(v)) for k, v in kwargs.items())))
    with _WATCHERS_LOCK:
        watcher = _WATCHERS.get(key)
        if watcher is None or watcher._stop.is_set():
            watcher = _WATCHERS[key] = Watcher(sentinels, service, kwargs)
        watcher.acquire()
    weakref.finalize(owner, watcher.release)
    return watcher
