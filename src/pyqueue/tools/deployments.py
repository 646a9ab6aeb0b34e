"""The tools' client for any Redis deployment: one server, Sentinel or Cluster.

The CLI, the exporter and the dashboard read many queues at once, so on a
cluster they use redis-py's cluster client, which sends each key's command to
its slot's master and runs SCAN on every master. Commands about connections
rather than keys (``CLIENT LIST``) are per node: :func:`client_lists` asks
every master, since a worker's connections are on its queue's master only.
"""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode

from pyqueue._protocol.connection import ConnectionSpec

# Connection options redis-py's cluster client takes from a parsed cluster URL.
_CLUSTER_KEYS = ("username", "password", "socket_timeout", "socket_connect_timeout")


def open_client(url: str, *, connect_timeout: float, read_timeout: float) -> aioredis.Redis:
    """A client for ``url``; ``redis+cluster://`` gives a cluster client.

    The cluster client is returned typed as :class:`redis.asyncio.Redis`: it
    offers every key command the tools send, and :func:`is_cluster` tells the
    few places that must treat it differently.

    Raises:
        InvalidOptionsError: a malformed URL (named in the message).
        ValueError: redis-py refused a plain URL.
    """
    scheme = urlsplit(url).scheme
    if "+" not in scheme:
        return aioredis.Redis.from_url(
            url, socket_connect_timeout=connect_timeout, socket_timeout=read_timeout
        )
    spec = ConnectionSpec.from_url(url)
    if not spec.is_cluster:
        # Sentinel: pyqueue's own routed client asks the Sentinels at each connect.
        return spec.async_client()
    kwargs: dict[str, Any] = {
        "socket_connect_timeout": connect_timeout, "socket_timeout": read_timeout,
        **{k: spec.kwargs[k] for k in _CLUSTER_KEYS if spec.kwargs.get(k) is not None},
    }
    cluster = aioredis.RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in spec.cluster_nodes],
        ssl=spec.ssl, **kwargs,
    )
    return cast("aioredis.Redis", cluster)


def is_cluster(client: object) -> bool:
    return isinstance(client, aioredis.RedisCluster)


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
