"""Finding the server to talk to, for Redis Cluster and Sentinel deployments.

A queue whose keys share one hash tag lives in one cluster slot, so every
connection of that queue (script calls, blocking fetch, pub/sub, lock renewal,
admin reads) can be an ordinary connection to that slot's master. That keeps
MULTI, BLMOVE, CLIENT UNBLOCK and pub/sub exactly as on a single server. What
changes is only *where* a connection goes and when it must move:

- :class:`SlotRoute` asks the cluster (``CLUSTER SLOTS``, through redis-py) which
  master serves the slot, and forgets the answer on ``MOVED`` or a connection
  failure, so the next connection asks again.
- :class:`SentinelRoute` asks the Sentinels for the master's address, through
  redis-py's Sentinel client (which skips a master they see as down).
- The connection classes below give redis-py clients the same behaviour that
  redis-py's own Sentinel connections have: look up the address at connect time,
  and turn ``MOVED`` (or ``READONLY``, from a demoted master) into a connection
  error, which redis-py's retry answers by reconnecting to the new address.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Sequence
from typing import Any, Protocol

import redis
import redis.asyncio as aioredis
import redis.asyncio.sentinel as aiosentinel
import redis.sentinel
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.exceptions import (
    BusyLoadingError,
    MovedError,
    ReadOnlyError,
    RedisError,
    ResponseError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry

from pyqueue._protocol.cluster_watch import SlotWatcher, slot_watcher_for
from pyqueue._protocol.sentinel_watch import Severable, Watcher, shutdown_socket, watcher_for
from pyqueue.errors import TransientServerError, transient_code

Address = tuple[str, int]

# Our own generator: a library must not move the application's global random state
# (a watcher thread shuffling through it perturbed seeded code, Hypothesis in our tests).
_RANDOM = random.Random()

# Connection options that matter to a discovery connection (auth, TLS, timeouts).
_DISCOVERY_KEYS = (
    "username", "password", "credential_provider", "socket_timeout", "socket_connect_timeout",
    "ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs", "ssl_check_hostname",
)


def hash_tag(base: str) -> str | None:
    """The hash tag every key starting with ``base`` shares, or None.

    Redis hashes only the part between the first ``{`` and the next ``}`` when
    that part is not empty; job keys are ``base + id``, so the tag must close
    inside ``base`` for all of a queue's keys to share it.
    """
    start = base.find("{")
    if start < 0:
        return None
    end = base.find("}", start + 1)
    if end <= start + 1:
        return None
    return base[start + 1:end]


def slot_of(base: str) -> int:
    return int(key_slot(base.encode()))


def as_transient(exc: ResponseError | BusyLoadingError) -> RedisError:
    """A transient server state (LOADING, BUSY...) as TransientServerError; others as they are."""
    message = str(exc)
    code = "LOADING" if isinstance(exc, BusyLoadingError) else transient_code(message)
    return exc if code is None else TransientServerError(message, code=code)


def is_master(role: Any) -> bool:
    """Whether a ``ROLE`` reply says master."""
    first = role[0] if isinstance(role, list) and role else role
    return first in (b"master", "master")


def not_master(host: str, port: int, role: Any) -> TransientServerError:
    first = role[0] if isinstance(role, list) and role else role
    shown = first.decode() if isinstance(first, bytes) else str(first)
    return TransientServerError(
        f"{host}:{port} is a {shown}, not the master Sentinel named (a failover is under "
        "way); reconnecting", code="READONLY",
    )


def parse_moved(exc: MovedError) -> Address | None:
    # "MOVED <slot> <host>:<port>"
    parts = str(exc).split()
    if len(parts) < 2 or ":" not in parts[-1]:
        return None
    host, _, port = parts[-1].rpartition(":")
    return (host, int(port)) if port.isdigit() else None


class SlotRoute:
    """The master of one slot, as the cluster last said; shared by a queue's connections.

    It holds no connection of its own: each look-up opens a short-lived one in
    the caller's event loop (or thread), so one route serves async and sync
    clients alike.
    """

    def __init__(self, nodes: Sequence[Address], slot: int, kwargs: dict[str, Any]) -> None:
        if not nodes:
            raise ValueError("a cluster needs at least one node address")
        self.slot = slot
        self._nodes: list[Address] = list(dict.fromkeys(nodes))
        self._kwargs = {k: kwargs[k] for k in _DISCOVERY_KEYS if kwargs.get(k) is not None}
        self._ssl = bool(kwargs.get("ssl"))
        self._address: Address | None = None
        self._suspect: Address | None = None
        self._lock = threading.Lock()
        self._watcher: SlotWatcher | None = None

    @property
    def address(self) -> Address | None:
        return self._address

    @property
    def nodes(self) -> list[Address]:
        with self._lock:
            return list(self._nodes)

    check_role = False  # a cluster says MOVED; ROLE is "master" on every slot owner

    def register(self, conn: Severable) -> None:
        """Sever ``conn`` as soon as ``CLUSTER SLOTS`` gives the slot another master."""
        with self._lock:
            watcher = self._watcher
            if watcher is None:
                watcher = self._watcher = slot_watcher_for(
                    self._nodes[:], self._kwargs, self._ssl, owner=self
                )
        watcher.register(self, conn)

    def forget(self, moved_to: Address | None = None) -> None:
        """The cached master is wrong (MOVED) or unreachable; look again next time."""
        with self._lock:
            if self._address is not None and moved_to is None:
                # Unreachable, perhaps silent: ask it last, so a frozen node does
                # not cost a timeout of its own before the healthy ones answer.
                self._suspect = self._address
            self._address = moved_to
            if moved_to is not None and moved_to not in self._nodes:
                self._nodes.append(moved_to)

    def _learn(self, slots: Any) -> Address | None:
        """Take in a raw ``CLUSTER SLOTS`` reply: ``[[start, end, [host, port, id], ...]]``."""
        found: Address | None = None
        with self._lock:
            for start, end, primary, *_ in slots:
                host = primary[0].decode() if isinstance(primary[0], bytes) else str(primary[0])
                address = (host, int(primary[1]))
                if address not in self._nodes:
                    self._nodes.append(address)
                if int(start) <= self.slot <= int(end):
                    found = address
            self._address = found
        return found

    def _candidates(self) -> list[Address]:
        with self._lock:
            nodes = list(self._nodes)
            suspect = self._suspect
        _RANDOM.shuffle(nodes)  # spread discovery, and skip a dead seed quickly on average
        nodes.sort(key=lambda node: node == suspect)
        return nodes

    def _no_master(self, errors: list[str]) -> RedisConnectionError:
        detail = "; ".join(errors[-3:]) or "no node answered"
        return RedisConnectionError(f"no master serves cluster slot {self.slot} ({detail})")

    async def locate(self) -> Address:
        """The slot's master, asking the cluster when it is not known."""
        cached = self._address
        if cached is not None:
            return cached
        errors: list[str] = []
        for host, port in self._candidates():
            client = aioredis.Redis(
                host=host, port=port, ssl=self._ssl, retry=AsyncRetry(NoBackoff(), 0),
                **self._kwargs,
            )
            try:
                found = self._learn(
                    await client.execute_command("CLUSTER SLOTS")  # type: ignore[no-untyped-call]
                )
            except (RedisError, OSError) as exc:
                errors.append(f"{host}:{port}: {exc}")
                continue
            finally:
                await client.aclose()
            if found is not None:
                return found
            errors.append(f"{host}:{port}: slot {self.slot} has no master")
        raise self._no_master(errors)

    def locate_sync(self) -> Address:
        cached = self._address
        if cached is not None:
            return cached
        errors: list[str] = []
        for host, port in self._candidates():
            client = redis.Redis(
                host=host, port=port, ssl=self._ssl, retry=Retry(NoBackoff(), 0), **self._kwargs
            )
            try:
                found = self._learn(
                    client.execute_command("CLUSTER SLOTS")  # type: ignore[no-untyped-call]
                )
            except (RedisError, OSError) as exc:
                errors.append(f"{host}:{port}: {exc}")
                continue
            finally:
                client.close()
            if found is not None:
                return found
            errors.append(f"{host}:{port}: slot {self.slot} has no master")
        raise self._no_master(errors)


class SentinelRoute:
    """The address of a Sentinel-monitored master, asked afresh at every connect."""

    check_role = True
    """Connections check ``ROLE`` once connected: Sentinel's answer can be stale."""

    def __init__(
        self, sentinels: Sequence[Address], service: str, sentinel_kwargs: dict[str, Any]
    ) -> None:
        self.sentinels = list(sentinels)
        self.service = service
        self.sentinel_kwargs = dict(sentinel_kwargs)
        self._watcher: Watcher | None = None
        self._watcher_lock = threading.Lock()

    @property
    def watcher(self) -> Watcher:
        """This process's watcher of the master (``+switch-master``), made on first use."""
        with self._watcher_lock:
            if self._watcher is None:
                self._watcher = watcher_for(
                    self.sentinels, self.service, self.sentinel_kwargs, owner=self
                )
            return self._watcher

    def register(self, conn: Severable) -> None:
        """Sever ``conn`` as soon as Sentinel moves the master."""
        self.watcher.register(conn)

    def forget(self, moved_to: Address | None = None) -> None:
        """Nothing is cached: every connect asks the Sentinels."""

    async def locate(self) -> Address:
        newest = self.watcher.newest()
        if newest is not None:  # the newest configuration any Sentinel has
            return newest
        manager = aiosentinel.Sentinel(  # type: ignore[no-untyped-call,unused-ignore]
            self.sentinels, sentinel_kwargs=self.sentinel_kwargs
        )
        try:
            host, port = await manager.discover_master(self.service)
        finally:
            for client in manager.sentinels:
                await client.aclose()
        self.watcher.located((str(host), int(port)))
        return str(host), int(port)

    def locate_sync(self) -> Address:
        newest = self.watcher.newest()
        if newest is not None:
            return newest
        manager = redis.sentinel.Sentinel(  # type: ignore[no-untyped-call,unused-ignore]
            self.sentinels, sentinel_kwargs=self.sentinel_kwargs
        )
        try:
            host, port = manager.discover_master(self.service)  # type: ignore[no-untyped-call,unused-ignore]
        finally:
            for client in manager.sentinels:
                client.close()
        self.watcher.located((str(host), int(port)))
        return str(host), int(port)


class Route(Protocol):
    """Where a connection goes now; told when the answer proved wrong."""

    check_role: bool

    def register(self, conn: Severable) -> None: ...

    async def locate(self) -> Address: ...

    def locate_sync(self) -> Address: ...

    def forget(self, moved_to: Address | None = None) -> None: ...


class RoutedConnection(aioredis.Connection):
    """An async connection that asks its route for the address at every connect."""

    def __init__(self, *, route: Route, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.route = route
        self._routed_before = False

    async def connect(self) -> None:
        if self.is_connected:
            return
        if self._routed_before:
            # Reconnecting: the cached address may be a node that went silent.
            self.route.forget()
        self._routed_before = True
        self.host, self.port = await self.route.locate()
        try:
            await super().connect()  # type: ignore[no-untyped-call]
        except RedisConnectionError:
            self.route.forget()
            raise
        if self.route.check_role:
            await self.send_command("ROLE")
            role = await super().read_response()
            if not is_master(role):
                self.route.forget()
                await self.disconnect()
                raise not_master(self.host, self.port, role)
        self.route.register(self)

    def sever(self) -> None:
        """Cut the socket (from any thread): the reader sees the connection end."""
        writer = self._writer
        if writer is not None:
            shutdown_socket(writer.transport.get_extra_info("socket"))

    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().read_response(*args, **kwargs)
        except MovedError as exc:
            self.route.forget(parse_moved(exc))
            await self.disconnect()
            raise RedisConnectionError(f"cluster slot moved ({exc}); reconnecting") from exc
        except ReadOnlyError as exc:
            self.route.forget()
            await self.disconnect()
            raise TransientServerError(
                f"master became a replica ({exc}); reconnecting", code="READONLY"
            ) from exc
        except (ResponseError, BusyLoadingError) as exc:
            mapped = as_transient(exc)
            if getattr(mapped, "code", None) == "READONLY":  # Redis < 7, inside a script
                self.route.forget()
                await self.disconnect()
            raise mapped from exc


class RoutedSSLConnection(RoutedConnection, aioredis.SSLConnection):
    pass


class SyncRoutedConnection(redis.Connection):
    """The blocking twin of :class:`RoutedConnection` (lock renewal thread)."""

    def __init__(self, *, route: Route, **kwargs: Any) -> None:
        super().__init__(**kwargs)  # type: ignore[no-untyped-call]
        self.route = route
        self._routed_before = False

    def connect(self) -> None:
        if self._sock:
            return
        if self._routed_before:
            self.route.forget()
        self._routed_before = True
        self.host, self.port = self.route.locate_sync()
        try:
            super().connect()  # type: ignore[no-untyped-call]
        except RedisConnectionError:
            self.route.forget()
            raise
        if self.route.check_role:
            self.send_command("ROLE")  # type: ignore[no-untyped-call,unused-ignore]
            role = super().read_response()
            if not is_master(role):
                self.route.forget()
                self.disconnect()  # type: ignore[no-untyped-call]
                raise not_master(self.host, self.port, role)
        self.route.register(self)

    def sever(self) -> None:
        """Cut the socket (from any thread): the reader sees the connection end."""
        shutdown_socket(self._sock)

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().read_response(*args, **kwargs)
        except MovedError as exc:
            self.route.forget(parse_moved(exc))
            self.disconnect()  # type: ignore[no-untyped-call]
            raise RedisConnectionError(f"cluster slot moved ({exc}); reconnecting") from exc
        except ReadOnlyError as exc:
            self.route.forget()
            self.disconnect()  # type: ignore[no-untyped-call]
            raise TransientServerError(
                f"master became a replica ({exc}); reconnecting", code="READONLY"
            ) from exc
        except (ResponseError, BusyLoadingError) as exc:
            mapped = as_transient(exc)
            if getattr(mapped, "code", None) == "READONLY":  # Redis < 7, inside a script
                self.route.forget()
                self.disconnect()  # type: ignore[no-untyped-call]
            raise mapped from exc


class SyncRoutedSSLConnection(SyncRoutedConnection, redis.SSLConnection):
    pass
