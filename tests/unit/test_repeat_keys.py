"""Reading repeat keys the way Bull does, including names and ids with ':'."""

from __future__ import annotations

import hashlib

from pyqueue._scheduling import instance_prefixes_of_key, parse_repeat_key
from pyqueue.repeat import Repeat


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def test_plain_keys_parse_into_their_fields() -> None:
    assert parse_repeat_key("rep:::60000") == {
        "key": "rep:::60000", "name": "rep", "id": None, "end_date": None,
        "tz": None, "cron": None, "every": 60000,
    }
    cron_key = "__default__:myid:4070908800000:Europe/Berlin:*/5 * * * *"
    assert parse_repeat_key(cron_key) == {
        "key": cron_key, "name": "__default__", "id": "myid", "end_date": 4070908800000,
        "tz": "Europe/Berlin", "cron": "*/5 * * * *", "every": None,
    }


def test_colon_keys_shift_fields_as_bull_reads_them() -> None:
    # Bull: name "sync", id "store", endDate parseInt("store") -> null, the 5th
    # field "" -> no cron, so every = parseInt("42") = 42.
    assert parse_repeat_key("sync:store:store:42::300") == {
        "key": "sync:store:store:42::300", "name": "sync", "id": "store", "end_date": None,
        "tz": None, "cron": None, "every": 42,
    }
    # parseInt reads leading digits only; an unparsable field is null.
    assert parse_repeat_key("n:x:12ab:3q")["end_date"] == 12
    assert parse_repeat_key("n:x:12ab:3q")["every"] == 3
    assert parse_repeat_key("n:x::q")["every"] is None


def test_instance_prefixes_include_the_true_split() -> None:
    key = "sync:store:store:42::300"
    true_prefix = f"repeat:{_md5('sync:store' + 'store:42:' + _md5(key))}:"
    prefixes = instance_prefixes_of_key(key)
    assert true_prefix in prefixes
    # Bull's own reading (name "sync", id "store") comes first.
    assert prefixes[0] == f"repeat:{_md5('sync' + 'store:' + _md5(key))}:"
    assert len(prefixes) == len(set(prefixes))


def test_plain_key_has_one_prefix_matching_repeat() -> None:
    repeat = Repeat(every=500, job_id="abc")
    key = repeat.key("tick")
    assert instance_prefixes_of_key(key) == [repeat.id_prefix("tick")]
    cron = Repeat(cron="*/5 * * * *", tz="UTC")
    assert instance_prefixes_of_key(cron.key("n")) == [cron.id_prefix("n")]


def test_from_wire_reads_numbers_as_other_clients_store_them() -> None:
    # Infinity and NaN arrive as 1e400 / NaN: absent. Past 2**53 - 1: capped.
    assert Repeat.from_wire({"every": 10**20, "count": float("inf")}).every == 2**53 - 1
    assert Repeat.from_wire({"every": 10**20, "count": float("inf")}).count == 0
    assert Repeat.from_wire({"every": 5000, "limit": float("nan")}).limit is None
    assert Repeat.from_wire({"every": 5000, "limit": 3.0}).limit == 3
