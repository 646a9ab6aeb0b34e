"""Redis connections: created once, with bytes responses, from a URL or a client.

Responses are always bytes (``decode_responses=False``): job data may hold any
bytes, and decoding happens once in :mod:`pyqueue._protocol.bull.wire`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import redis
import redis.asyncio as aioredis
import redis.asyncio.sentinel as aiosentinel
from redis.connection import parse_url

from pyqueue._protocol.fastconn import DEFAULT_TIMEOUT, FastConnection
from pyqueue._protocol.routing import (
    Address,
    Route,
    RoutedConnection,
    RoutedSSLConnection,
    SentinelRoute,
    SlotRoute,
    SyncRoutedConnection,
    SyncRoutedSSLConnection,
    hash_tag,
    slot_of,
)
from pyqueue.errors import InvalidOptionsError

_SCHEMES = (
    "redis", "rediss", "unix", "redis+sentinel", "rediss+sentinel", "redis+cluster",
    "rediss+cluster",
)
_FLOAT_OPTIONS = ("socket_timeout", "socket_connect_timeout")
# A pool's size limit unless the caller or the URL sets one: redis-py <= 7's default.
# redis-py 8 lowered it to 100 and raises MaxConnectionsError past it, which would
# fail the 101st concurrent job.finished() or queue.add() on one Queue.
_POOL_LIMIT = 2**31
_SENTINEL_OPTIONS = ("sentinel_username", "sentinel_password")
# Async connection classes whose keyword arguments we can replay, with their
# blocking twins (the lock renewal thread needs one).
_SYNC_TWIN: dict[type[Any], type[Any]] = {
    aioredis.Connection: redis.Connection,
    aioredis.SSLConnection: redis.SSLConnection,
    aioredis.UnixDomainSocketConnection: redis.UnixDomainSocketConnection,
}
# Keyword arguments that belong to a pool or to one host, not to the connection.
_NOT_REPLAYED = ("connection_class", "connection_pool", "host", "port", "route")


def redact(url: str) -> str:
    """The URL with any password replaced, safe to log or put in an error."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def validate_url(url: object) -> str:
    """Check a Redis URL's shape before any connection is made."""
    if not isinstance(url, str) or not url:
        raise InvalidOptionsError(f"redis_url: must be a non-empty string, got {url!r}")
    parts = urlsplit(url)
    if parts.scheme not in _SCHEMES:
        raise InvalidOptionsError(
            f"redis_url: scheme must be one of {', '.join(_SCHEMES)}, in {redact(url)!r}"
        )
    if "+" in parts.scheme:
        _parse_multi_host(url)
        return url
    try:
        port = parts.port
    except ValueError:
        raise InvalidOptionsError(f"redis_url: invalid port in {redact(url)!r}") from None
    if parts.scheme != "unix" and not parts.hostname:
        raise InvalidOptionsError(f"redis_url: missing host in {redact(url)!r}")
    del port
    path = parts.path.lstrip("/")
    if parts.scheme != "unix" and path and not path.isdigit():
        raise InvalidOptionsError(f"redis_url: database must be a number in {redact(url)!r}")
    return url


def _addresses(netloc: str, url: str) -> list[Address]:
    hosts = netloc.rpartition("@")[2]
    found: list[Address] = []
    for item in hosts.split(","):
        host, _, port = item.strip().rpartition(":")
        host = host.strip("[]")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise InvalidOptionsError(
                f"redis_url: expected host:port[,host:port...], got {item!r} in {redact(url)!r}"
            )
        found.append((host, int(port)))
    return found


@dataclass(frozen=True, slots=True)
class _MultiHost:
    kind: str  # "sentinel" or "cluster"
    addresses: list[Address]
    service: str | None
    kwargs: dict[str, Any]
    sentinel_kwargs: dict[str, Any]


def _parse_multi_host(url: str) -> _MultiHost:
    """``redis+sentinel://[user:pw@]h:p[,h:p]/service[/db]`` or ``redis+cluster://[user:pw@]h:p[,h:p]``.

    The user and password are the data servers'; ``?sentinel_username=&sentinel_password=``
    are the Sentinels'; ``socket_timeout`` and ``socket_connect_timeout`` apply to both.
    """
    parts = urlsplit(url)
    kind = parts.scheme.partition("+")[2]
    userinfo, at, _ = parts.netloc.rpartition("@")
    kwargs: dict[str, Any] = {"ssl": parts.scheme.startswith("rediss")}
    if at:
        user, colon, password = userinfo.partition(":")
        if user:
            kwargs["username"] = unquote(user)
        if colon:
            kwargs["password"] = unquote(password)
    addresses = _addresses(parts.netloc, url)
    path = [p for p in parts.path.split("/") if p]
    service: str | None = None
    if kind == "sentinel":
        if not path or len(path) > 2:
            raise InvalidOptionsError(
                f"redis_url: a Sentinel URL needs /<master name>[/<db>], in {redact(url)!r}"
            )
        service = unquote(path[0])
        db = path[1] if len(path) == 2 else "0"
    else:
        if len(path) > 1:
            raise InvalidOptionsError(f"redis_url: unexpected path in {redact(url)!r}")
        db = path[0] if path else "0"
        if db != "0":
            raise InvalidOptionsError(
                f"redis_url: Redis Cluster has only database 0, got {db!r} in {redact(url)!r}"
            )
    if not db.isdigit():
        raise InvalidOptionsError(f"redis_url: database must be a number in {redact(url)!r}")
    kwargs["db"] = int(db)
    sentinel_kwargs: dict[str, Any] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name in _FLOAT_OPTIONS:
            try:
                kwargs[name] = sentinel_kwargs[name] = float(value)
            except ValueError:
                raise InvalidOptionsError(
                    f"redis_url: {name} must be a number of seconds, got {value!r}"
                ) from None
        elif name in _SENTINEL_OPTIONS and kind == "sentinel":
            sentinel_kwargs[name.removeprefix("sentinel_")] = value
        else:
            known = _FLOAT_OPTIONS + (_SENTINEL_OPTIONS if kind == "sentinel" else ())
            raise InvalidOptionsError(
                f"redis_url: unknown option {name!r} (known: {', '.join(known)})"
            )
    return _MultiHost(kind, addresses, service, kwargs, sentinel_kwargs)


@dataclass(frozen=True, slots=True)
class ConnectionSpec:
    """How to open more connections to the same server (blocking, pub/sub, sync).

    Three shapes: a URL (``url``); the keyword arguments of a plain, TLS or unix
    socket client (``kwargs`` and ``connection_class``); or a routed deployment
    (``sentinel`` or ``cluster``), whose connections ask where to go at connect
    time. A cluster spec must be bound to one queue (:meth:`for_key`) first,
    because a queue's connections all go to its slot's master.
    """

    url: str | None
    kwargs: dict[str, Any]
    ssl: bool
    connection_class: type[Any] | None = None
    sentinel: SentinelRoute | None = None
    cluster_nodes: tuple[Address, ...] = ()
    slot_route: SlotRoute | None = field(default=None, compare=False)

    @property
    def is_cluster(self) -> bool:
        return bool(self.cluster_nodes)

    @property
    def read_timeout(self) -> float:
        """Seconds a silent connection is given: ``socket_timeout`` if set, else 30.

        Connections that wait on purpose (blocking fetch, pub/sub) do not use it
        as a read timeout; they use it to pace their own liveness checks.
        """
        value = self.kwargs.get("socket_timeout")
        if self.url is not None:
            value = parse_url(self.url).get("socket_timeout")  # type: ignore[no-untyped-call]
        return float(value) if value else DEFAULT_TIMEOUT

    def describe(self) -> str:
        """Where this spec connects, for messages: a URL without its password."""
        if self.url is not None:
            return redact(self.url)
        if self.sentinel is not None:
            hosts = ",".join(f"{h}:{p}" for h, p in self.sentinel.sentinels)
            return f"redis+sentinel://{hosts}/{self.sentinel.service}"
        if self.is_cluster:
            return "redis+cluster://" + ",".join(f"{h}:{p}" for h, p in self.cluster_nodes)
        if self.kwargs.get("path"):
            return f"unix://{self.kwargs['path']}"
        host, port = self.kwargs.get("host", "127.0.0.1"), self.kwargs.get("port", 6379)
        scheme = "rediss" if self.ssl else "redis"
        return f"{scheme}://{host}:{port}/{self.kwargs.get('db', 0)}"

    @classmethod
    def from_url(cls, url: str) -> ConnectionSpec:
        validate_url(url)
        if "+" not in urlsplit(url).scheme:
            return cls(url=url, kwargs={}, ssl=url.startswith("rediss://"))
        multi = _parse_multi_host(url)
        ssl = bool(multi.kwargs.pop("ssl"))
        if multi.kind == "cluster":
            return cls(url=None, kwargs=multi.kwargs, ssl=ssl, cluster_nodes=tuple(multi.addresses))
        assert multi.service is not None
        route = SentinelRoute(multi.addresses, multi.service, multi.sentinel_kwargs)
        return cls(url=None, kwargs=multi.kwargs, ssl=ssl, sentinel=route)

    @classmethod
    def from_client(cls, client: Any) -> ConnectionSpec:
        """The spec of a redis-py asyncio client; refuses what it cannot reproduce.

        Raises:
            InvalidOptionsError: the client is of a kind whose connections
                pyqueue cannot open again (named in the message).
        """
        if isinstance(client, aioredis.RedisCluster):
            return cls._from_cluster_client(client)
        pool = getattr(client, "connection_pool", None)
        if not isinstance(pool, aioredis.ConnectionPool):
            raise InvalidOptionsError(
                f"connection: expected a redis.asyncio.Redis or RedisCluster client, "
                f"got {type(client).__name__}"
            )
        kwargs = {k: v for k, v in pool.connection_kwargs.items() if k != "connection_pool"}
        kwargs["decode_responses"] = False
        conn_cls = pool.connection_class
        if isinstance(pool, aiosentinel.SentinelConnectionPool):
            return cls._from_sentinel_pool(pool, kwargs)
        route = kwargs.get("route")
        if issubclass(conn_cls, RoutedConnection) and route is not None:
            # One of ours (a queue's client handed to another queue or worker).
            base = {k: v for k, v in kwargs.items() if k not in _NOT_REPLAYED}
            ssl = issubclass(conn_cls, aioredis.SSLConnection)
            if isinstance(route, SlotRoute):
                return cls(url=None, kwargs=base, ssl=ssl, cluster_nodes=tuple(route.nodes))
            return cls(url=None, kwargs=base, ssl=ssl, sentinel=route)
        if conn_cls not in _SYNC_TWIN:
            raise InvalidOptionsError(
                f"connection: unsupported connection class {conn_cls.__module__}."
                f"{conn_cls.__qualname__}; pass a client using redis-py's Connection, "
                "SSLConnection or UnixDomainSocketConnection, a Sentinel master_for() "
                "client, a RedisCluster client, or a URL"
            )
        ssl = conn_cls is aioredis.SSLConnection
        return cls(url=None, kwargs=kwargs, ssl=ssl, connection_class=conn_cls)

    @classmethod
    def _from_sentinel_pool(
        cls, pool: aiosentinel.SentinelConnectionPool, kwargs: dict[str, Any]
    ) -> ConnectionSpec:
        if not pool.is_master:
            raise InvalidOptionsError(
                "connection: a Sentinel replica client (slave_for) cannot run a queue; "
                "use Sentinel.master_for()"
            )
        manager = pool.sentinel_manager
        sentinels: list[Address] = []
        sentinel_kwargs: dict[str, Any] = {}
        for sentinel in manager.sentinels:
            ckw = sentinel.connection_pool.connection_kwargs
            sentinels.append((str(ckw.get("host", "127.0.0.1")), int(ckw.get("port", 26379))))
            for key in ("username", "password", "socket_timeout", "socket_connect_timeout"):
                if ckw.get(key) is not None:
                    sentinel_kwargs[key] = ckw[key]
        ssl = issubclass(pool.connection_class, aioredis.SSLConnection)
        base = {k: v for k, v in kwargs.items() if k not in _NOT_REPLAYED}
        route = SentinelRoute(sentinels, pool.service_name, sentinel_kwargs)
        return cls(url=None, kwargs=base, ssl=ssl, sentinel=route)

    @classmethod
    def _from_cluster_client(cls, client: aioredis.RedisCluster) -> ConnectionSpec:
        nodes = [
            (str(node.host), int(node.port))
            for node in list(client.nodes_manager.startup_nodes.values())
            + list(client.nodes_manager.nodes_cache.values())
        ]
        ckw = client.connection_kwargs
        base: dict[str, Any] = {
            k: ckw[k] for k in (
                "username", "password", "credential_provider", "socket_timeout",
                "socket_connect_timeout", "ssl_ca_certs", "ssl_certfile", "ssl_keyfile",
                "ssl_cert_reqs", "ssl_check_hostname",
            ) if ckw.get(k) is not None
        }
        ssl = issubclass(ckw.get("connection_class", aioredis.Connection), aioredis.SSLConnection)
        return cls(url=None, kwargs=base, ssl=ssl, cluster_nodes=tuple(dict.fromkeys(nodes)))

    def for_key(self, base: str) -> ConnectionSpec:
        """This spec for one queue (key prefix ``base``): on a cluster, its slot's master.

        Raises:
            InvalidOptionsError: on a cluster, when the queue's keys carry no hash
                tag and so would spread over slots (Bull's scripts need one slot).
        """
        if not self.is_cluster:
            return self
        tag = hash_tag(base)
        if tag is None:
            raise InvalidOptionsError(
                f"prefix: on Redis Cluster the queue's keys must share a hash tag, but "
                f"{base!r} has none; use a prefix such as '{{bull}}' (or '{{<app>}}'), "
                "as Bull documents, so every key of the queue is in one slot"
            )
        route = SlotRoute(self.cluster_nodes, slot_of(base), {**self.kwargs, "ssl": self.ssl})
        return replace(self, slot_route=route)

    def _route(self) -> Route | None:
        if self.sentinel is not None:
            return self.sentinel
        if self.is_cluster:
            if self.slot_route is None:
                raise InvalidOptionsError(
                    "a Redis Cluster connection is made per queue (its hash tag's slot)"
                )
            return self.slot_route
        return None

    def _replayed(self) -> dict[str, Any]:
        return {k: v for k, v in self.kwargs.items() if k not in _NOT_REPLAYED}

    def async_client(
        self, *, max_connections: int | None = None, socket_timeout: float | bool | None = False
    ) -> aioredis.Redis:
        """A new async client with its own pool.

        Args:
            max_connections: Pool size limit.
            socket_timeout: Read timeout in seconds for this client, overriding the
                URL's (None: no timeout); ``False`` keeps the URL's setting.
        """
        route = self._route()
        max_connections = max_connections or _POOL_LIMIT
        if self.url is not None:
            pool = aioredis.ConnectionPool.from_url(
                self.url, decode_responses=False, max_connections=max_connections,
                socket_keepalive=True,
            )
        elif route is not None:
            pool = aioredis.ConnectionPool(
                connection_class=RoutedSSLConnection if self.ssl else RoutedConnection,
                max_connections=max_connections, route=route,
                **{"socket_keepalive": True, **self._replayed()},
            )
        else:
            cls = self.connection_class or (
                aioredis.SSLConnection if self.ssl else aioredis.Connection
            )
            kwargs = {k: v for k, v in self.kwargs.items() if k != "connection_class"}
            pool = aioredis.ConnectionPool(
                connection_class=cls, max_connections=max_connections, **kwargs
            )
        if socket_timeout is not False:
            pool.connection_kwargs["socket_timeout"] = socket_timeout
        # from_pool: the client owns the pool and disconnects it on aclose().
        return aioredis.Redis.from_pool(pool)

    def fast_connection(self) -> FastConnection:
        """The lean pipelining connection used for per-job script calls."""
        route = self._route()
        if self.url is not None:
            return FastConnection(self.url)
        kwargs = {**self.kwargs, "ssl": self.ssl}
        if route is not None:
            return FastConnection(kwargs=kwargs, locator=route, cluster=self.is_cluster)
        return FastConnection(kwargs=kwargs)

    def sync_client(self, *, socket_timeout: float | None = None) -> redis.Redis:
        """A blocking client, for threads that must work while the event loop is busy.

        Args:
            socket_timeout: When given, the read and connect timeout in seconds,
                overriding the URL's.
        """
        route = self._route()
        if self.url is not None:
            pool = redis.ConnectionPool.from_url(
                self.url, decode_responses=False, socket_keepalive=True,
                max_connections=_POOL_LIMIT,
            )
        elif route is not None:
            pool = redis.ConnectionPool(
                connection_class=SyncRoutedSSLConnection if self.ssl else SyncRoutedConnection,
                route=route, max_connections=_POOL_LIMIT,
                **{"socket_keepalive": True, **self._replayed()},
            )
        else:
            cls = _SYNC_TWIN.get(self.connection_class or aioredis.Connection, redis.Connection)
            if self.connection_class is None and self.ssl:
                cls = redis.SSLConnection
            kwargs = {k: v for k, v in self.kwargs.items() if k != "connection_class"}
            pool = redis.ConnectionPool(
                connection_class=cls, **{"max_connections": _POOL_LIMIT, **kwargs}
            )
        if socket_timeout is not None:
            pool.connection_kwargs["socket_timeout"] = socket_timeout
            pool.connection_kwargs["socket_connect_timeout"] = socket_timeout
        return redis.Redis.from_pool(pool)


def resolve(
    redis_url: str | None, connection: aioredis.Redis | None, key_base: str | None = None
) -> tuple[aioredis.Redis, ConnectionSpec, bool]:
    """Return ``(client, spec, owned)`` for a Queue or Worker.

    ``owned`` is False when the caller passed a plain client whose responses are
    bytes: it is used as is and not closed by us. ``key_base`` (the queue's key
    prefix) binds a cluster spec to the queue's slot.

    Raises:
        InvalidOptionsError: a malformed URL, an unsupported client, or a queue
            without a hash tag on a cluster.
    """
    if redis_url is not None and connection is not None:
        raise InvalidOptionsError("give redis_url or connection, not both")
    if connection is not None:
        spec = ConnectionSpec.from_client(connection)
        if key_base is not None:
            spec = spec.for_key(key_base)
        routed = spec.sentinel is not None or spec.is_cluster
        if routed or connection.connection_pool.connection_kwargs.get("decode_responses"):
            # A cluster client cannot run MULTI over a queue's keys, nor CLIENT
            # UNBLOCK on the connection that blocks: use our own, routed like it.
            return spec.async_client(), spec, True
        return connection, spec, False
    # Only None means "the default": an empty string is a malformed URL.
    url = redis_url if redis_url is not None else "redis://127.0.0.1:6379/0"
    spec = ConnectionSpec.from_url(url)
    if key_base is not None:
        spec = spec.for_key(key_base)
    return spec.async_client(), spec, True
