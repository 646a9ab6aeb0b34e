"""Following Sentinel's master changes at once, not at the next connection error.

A master that loses a failover is not told at once. After a double failover (or
a partition that heals), the first promoted server stays a master until
Sentinel's next poll turns it into a replica, 11 s in one measured run, and
every connection already open to it keeps writing there; those writes are
discarded when it resyncs. Asking Sentinel only at connect time cannot help a
connection that is already open.

So each process runs one :class:`Watcher` thread per monitored master (shared
by every queue, client and event loop that uses it): it subscribes to
``+switch-master`` on every Sentinel and, as a safety net for a lost message,
asks one Sentinel for the master's address every :data:`POLL_EVERY` seconds.
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
from redis.exceptions import RedisError

Address = tuple[str, int]

POLL_EVERY = 0.5
"""Seconds between two address checks by polling (``+switch-master`` is heard at once)."""
_LISTEN_SLICE = 0.05
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

    # --- the thread -----------------------------------------------------------

    def _moved(self, address: Address, why: str) -> None:
        with self._lock:
            old, self.address = self.address, address
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
        polled_at = 0.0
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
        return redis.Redis(host=address[0], port=address[1], **self._kwargs)

    def _subscribe(self, address: Address) -> Any:
        client = self._client(address)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe("+switch-master")
        except (RedisError, OSError):
            with contextlib.suppress(RedisError, OSError):
                pubsub.close()
            return None
        return pubsub

    def _heard(self, data: Any) -> bool:
        # "+switch-master <name> <old ip> <old port> <new ip> <new port>"
        text = data.decode() if isinstance(data, bytes) else str(data)
        parts = text.split()
        if len(parts) != 5 or parts[0] != self._service or not parts[4].isdigit():
            return False
        self._moved((parts[3], int(parts[4])), "+switch-master")
        return True

    def _poll(self, turn: int) -> None:
        count = len(self._sentinels)
        for i in range(count):
            address = self._sentinels[(turn + i) % count]
            try:
                with contextlib.closing(self._client(address)) as client:
                    found = client.execute_command(  # type: ignore[no-untyped-call]
                        "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self._service
                    )
            except (RedisError, OSError):
                continue
            if found:
                host, port = found
                host = host.decode() if isinstance(host, bytes) else str(host)
                self._moved((host, int(port)), "polled")
                return


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
