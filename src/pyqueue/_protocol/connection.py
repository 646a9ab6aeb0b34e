"""Redis connections: created once, with bytes responses, from a URL or a client.

Responses are always bytes (``decode_responses=False``): job data may hold any
bytes, and decoding happens once in :mod:`pyqueue._protocol.wire`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import redis
import redis.asyncio as aioredis
from redis.connection import parse_url

from pyqueue._protocol.fastconn import DEFAULT_TIMEOUT, FastConnection
from pyqueue.errors import InvalidOptionsError

_SCHEMES = ("redis", "rediss", "unix")


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


@dataclass(frozen=True, slots=True)
class ConnectionSpec:
    """How to open more connections to the same server (blocking, pub/sub, sync)."""

    url: str | None
    kwargs: dict[str, Any]
    ssl: bool

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

    @classmethod
    def from_url(cls, url: str) -> ConnectionSpec:
        validate_url(url)
        return cls(url=url, kwargs={}, ssl=url.startswith("rediss://"))

    @classmethod
    def from_client(cls, client: aioredis.Redis) -> ConnectionSpec:
        pool = client.connection_pool
        kwargs = dict(pool.connection_kwargs)
        kwargs["decode_responses"] = False
        ssl = issubclass(pool.connection_class, aioredis.SSLConnection)
        return cls(url=None, kwargs=kwargs, ssl=ssl)

    def async_client(
        self, *, max_connections: int | None = None, socket_timeout: float | bool | None = False
    ) -> aioredis.Redis:
        """A new async client with its own pool.

        Args:
            max_connections: Pool size limit.
            socket_timeout: Read timeout in seconds for this client, overriding the
                URL's (None: no timeout); ``False`` keeps the URL's setting.
        """
        if self.url is not None:
            pool = aioredis.ConnectionPool.from_url(
                self.url, decode_responses=False, max_connections=max_connections,
                socket_keepalive=True,
            )
        else:
            cls = aioredis.SSLConnection if self.ssl else aioredis.Connection
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
        if self.url is not None:
            return FastConnection(self.url)
        return FastConnection(kwargs={**self.kwargs, "ssl": self.ssl})

    def sync_client(self, *, socket_timeout: float | None = None) -> redis.Redis:
        """A blocking client, for threads that must work while the event loop is busy.

        Args:
            socket_timeout: When given, the read and connect timeout in seconds,
                overriding the URL's.
        """
        if self.url is not None:
            pool = redis.ConnectionPool.from_url(
                self.url, decode_responses=False, socket_keepalive=True
            )
        else:
            cls = redis.SSLConnection if self.ssl else redis.Connection
            kwargs = {k: v for k, v in self.kwargs.items() if k != "connection_class"}
            pool = redis.ConnectionPool(connection_class=cls, **kwargs)
        if socket_timeout is not None:
            pool.connection_kwargs["socket_timeout"] = socket_timeout
            pool.connection_kwargs["socket_connect_timeout"] = socket_timeout
        return redis.Redis.from_pool(pool)


def resolve(
    redis_url: str | None, connection: aioredis.Redis | None
) -> tuple[aioredis.Redis, ConnectionSpec, bool]:
    """Return ``(client, spec, owned)`` for a Queue or Worker.

    ``owned`` is False when the caller passed a client whose responses are bytes:
    it is used as is and not closed by us.
    """
    if redis_url is not None and connection is not None:
        raise InvalidOptionsError("give redis_url or connection, not both")
    if connection is not None:
        spec = ConnectionSpec.from_client(connection)
        if connection.connection_pool.connection_kwargs.get("decode_responses"):
            return spec.async_client(), spec, True
        return connection, spec, False
    # Only None means "the default": an empty string is a malformed URL.
    url = redis_url if redis_url is not None else "redis://127.0.0.1:6379/0"
    spec = ConnectionSpec.from_url(url)
    return spec.async_client(), spec, True
