"""Sentinel and Cluster URLs and hash tags, without a server."""

from __future__ import annotations

import pytest

from pyqueue._protocol.connection import ConnectionSpec, redact
from pyqueue._protocol.routing import hash_tag, slot_of
from pyqueue.errors import InvalidOptionsError


@pytest.mark.parametrize(("base", "tag"), [
    ("{bookwish}:emails:", "bookwish"),
    ("bull:{emails}:", "emails"),
    ("{a}{b}:q:", "a"),
    ("bull:emails:", None),
    ("{}:emails:", None),  # an empty tag hashes the whole key, as Redis does
    ("{bull:q:", None),  # never closed within the base
])
def test_hash_tag(base: str, tag: str | None) -> None:
    assert hash_tag(base) == tag


def test_every_key_of_a_tagged_queue_is_in_one_slot() -> None:
    base = "{bookwish}:emails:"
    slots = {slot_of(base + suffix) for suffix in ("wait", "active", "1", "1:lock", "id")}
    assert slots == {slot_of("bookwish")}


def test_sentinel_url() -> None:
    spec = ConnectionSpec.from_url(
        "redis+sentinel://u:p%40ss@h1:26379,h2:26380/mymaster/3"
        "?sentinel_password=sp&socket_timeout=2.5"
    )
    assert spec.sentinel is not None
    assert spec.sentinel.sentinels == [("h1", 26379), ("h2", 26380)]
    assert spec.sentinel.service == "mymaster"
    assert spec.sentinel.sentinel_kwargs == {"password": "sp", "socket_timeout": 2.5}
    assert spec.kwargs == {"username": "u", "password": "p@ss", "db": 3, "socket_timeout": 2.5}
    assert spec.read_timeout == 2.5
    assert not spec.ssl


def test_cluster_url_and_binding() -> None:
    spec = ConnectionSpec.from_url("rediss+cluster://:pw@n1:7000,n2:7001")
    assert spec.is_cluster
    assert spec.ssl
    assert spec.cluster_nodes == (("n1", 7000), ("n2", 7001))
    bound = spec.for_key("{bw}:emails:")
    assert bound.slot_route is not None
    assert bound.slot_route.slot == slot_of("bw")
    with pytest.raises(InvalidOptionsError, match="hash tag"):
        spec.for_key("bull:emails:")
    with pytest.raises(InvalidOptionsError, match="per queue"):
        spec.async_client()


@pytest.mark.parametrize(("url", "message"), [
    ("redis+cluster://n1:7000/1", "only database 0"),
    ("redis+cluster://n1:7000?sentinel_password=x", "unknown option"),
    ("redis+sentinel://n1:99999/m", "host:port"),
    ("redis+sentinel://n1:26379,/m", "host:port"),
    ("redis+sentinel://n1:26379/", "master name"),
])
def test_bad_urls(url: str, message: str) -> None:
    with pytest.raises(InvalidOptionsError, match=message):
        ConnectionSpec.from_url(url)


def test_redact_multi_host_url() -> None:
    assert redact("redis+sentinel://:secret@h1:1,h2:2/m") == "redis+sentinel://:***@h1:1,h2:2/m"
