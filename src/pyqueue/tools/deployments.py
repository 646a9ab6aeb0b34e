"""The tools' client for any Redis deployment: one server, Sentinel or Cluster.

The CLI, the exporter and the dashboard read many queues at once, so on a
cluster they use redis-py's cluster client, which sends each key's command to
its slot's master and runs SCAN on every master. Commands about connections
rather than keys (``CLIENT LIST``) are per node: :func:`client_lists` asks
every master, since a worker's connections are on its queue's master only.
"""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import parse_qsl, unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.sentinel import Sentinel

from pyqueue import InvalidOptionsError

_TIMEOUTS = ("socket_timeout", "socket_connect_timeout")
_SENTINEL_AUTH = ("sentinel_username", "sentinel_password")


def _fail(url: str, problem: str) -> InvalidOptionsError:
    parts = urlsplit(url)
    shown = url if parts.password is None else url.replace(f":{parts.password}@", ":***@", 1)
    return InvalidOptionsError(f"{problem}, in {shown!r}")


def _hosts(url: str) -> list[tuple[str, int]]:
    found = []
    for item in urlsplit(url).netloc.rpartition("@")[2].split(","):
        host, _, port = item.strip().rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise _fail(url, f"expected host:port[,host:port...], got {item!r}")
        found.append((host.strip("[]"), int(port)))
    return found


def open_client(url: str, *, connect_timeout: float, read_timeout: float) -> aioredis.Redis:
    """A client for ``url``: one server, ``redis+sentinel://`` or ``redis+cluster://``.

    The cluster client is returned typed as :class:`redis.asyncio.Redis`: it
    offers every key command the tools send, and :func:`client_lists` handles
    the one that differs.

    Raises:
        InvalidOptionsError: a malformed multi-host URL (named in the message).
        ValueError: redis-py refused a plain URL.
    """
    parts = urlsplit(url)
    timeouts: dict[str, Any] = {
        "socket_connect_timeout": connect_timeout, "socket_timeout": read_timeout,
    }
    if "+" not in parts.scheme:
        return aioredis.Redis.from_url(url, **timeouts)
    kind = parts.scheme.partition("+")[2]
    auth: dict[str, Any] = {}
    sentinel_auth: dict[str, Any] = {}
    if parts.username:
        auth["username"] = unquote(parts.username)
    if parts.password is not None:
        auth["password"] = unquote(parts.password)
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name in _TIMEOUTS:
            try:
                timeouts[name] = float(value)
            except ValueError:
                raise _fail(url, f"{name} must be a number of seconds, got {value!r}") from None
        elif name in _SENTINEL_AUTH and kind == "sentinel":
            sentinel_auth[name.removeprefix("sentinel_")] = value
        else:
            raise _fail(url, f"unknown option {name!r}")
    hosts = _hosts(url)
    ssl = parts.scheme.startswith("rediss")
    path = [p for p in parts.path.split("/") if p]
    if kind == "cluster":
        if path not in ([], ["0"]):
            raise _fail(url, "Redis Cluster has only database 0")
        cluster = aioredis.RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in hosts], ssl=ssl,
            **auth, **timeouts,
        )
        return cast("aioredis.Redis", cluster)
    if not path or len(path) > 2 or not (len(path) == 1 or path[1].isdigit()):
        raise _fail(url, "a Sentinel URL needs /<master name>[/<db>]")
    manager = Sentinel(  # type: ignore[no-untyped-call,unused-ignore]
        hosts, sentinel_kwargs={**sentinel_auth, **timeouts}
    )
    return cast("aioredis.Redis", manager.master_for(
        unquote(path[0]), db=int(path[1]) if len(path) == 2 else 0, ssl=ssl, **auth, **timeouts,
    ))


async def client_lists(client: aioredis.Redis) -> list[dict[str, Any]]:
    """``CLIENT LIST`` of the server, or of every master of a cluster, concatenated."""
    if not isinstance(client, aioredis.RedisCluster):
        return cast("list[dict[str, Any]]", await client.client_list())
    entries: list[dict[str, Any]] = []
    for node in client.get_primaries():
        entries += cast(
            "list[dict[str, Any]]", await client.client_list(target_nodes=node)
        )
    return entries
