"""Repeat schedules against golden vectors produced by real Bull (cron-parser 4.9)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pyqueue.errors import InvalidOptionsError
from pyqueue.repeat import Repeat

# A copy kept in the repository; tests/data/README.md says how it was produced.
VECTORS = Path(__file__).resolve().parents[1] / "data" / "bull-repeat.json"


def _load() -> dict[str, Any]:
    if not VECTORS.exists():
        pytest.fail(f"golden vectors missing at {VECTORS}")
    data: dict[str, Any] = json.loads(VECTORS.read_text())
    return data


DATA = _load()


def _case_id(case: dict[str, Any]) -> str:
    extra = {k: case[k] for k in ("startDate", "endDate") if case.get(k)}
    return f"{case['cron']}|{case['tz']}|{case['now']}|{extra or ''}"


@pytest.mark.parametrize("case", DATA["cron"], ids=_case_id)
def test_cron_next_times_match_bull(case: dict[str, Any]) -> None:
    # Vectors were made in a process whose local zone was UTC: tz null means UTC.
    repeat = Repeat(
        cron=case["cron"],
        tz=case["tz"] or "UTC",
        start_date=case.get("startDate"),
        end_date=case.get("endDate"),
    )
    current = case["now"]
    got = []
    for _ in case["next"]:
        nxt = repeat.next_millis(current)
        got.append(nxt)
        if nxt is None:
            break
        current = nxt
    assert got == case["next"]


@pytest.mark.parametrize("case", DATA["every"], ids=lambda c: f"{c['every']}|{c['now']}")
def test_every_is_epoch_aligned(case: dict[str, Any]) -> None:
    assert Repeat(every=case["every"]).next_millis(case["now"]) == case["next"]


@pytest.mark.parametrize("case", DATA["keys"], ids=lambda c: c["key"])
def test_repeat_keys_and_instance_ids(case: dict[str, Any]) -> None:
    raw = case["repeat"]
    repeat = Repeat(
        cron=raw.get("cron"),
        every=raw.get("every"),
        tz=raw.get("tz"),
        end_date=raw.get("endDate"),
        job_id=case["jobId"],
    )
    assert repeat.key(case["name"]) == case["key"]
    assert repeat.instance_id(case["name"], case["at"]) == case["instanceId"]
    assert repeat.id_prefix(case["name"]) == case["removeId"]


def test_spec_examples() -> None:
    rep = Repeat(every=2000)
    assert rep.key("rep") == "rep:::2000"
    assert rep.instance_id("rep", 1795815814000) == (
        "repeat:08c3ade290fda9c08fdf79f21f126f41:1795815814000"
    )
    berlin = Repeat(
        cron="*/5 * * * *", tz="Europe/Berlin", end_date="2099-01-01T00:00:00Z", job_id="myid"
    )
    assert berlin.key("__default__") == (
        "__default__:myid:4070908800000:Europe/Berlin:*/5 * * * *"
    )
    assert berlin.id_prefix("__default__") == "repeat:a147b7f568c4400c55bf95b405924321:"


def test_six_field_cron_has_seconds_first() -> None:
    rep = Repeat(cron="*/5 * * * * *", tz="UTC")
    noon = 1704110400000  # 2024-01-01T12:00:00Z
    assert rep.next_millis(noon + 5000) == noon + 10000
    assert rep.next_millis(noon + 4999) == noon + 5000


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"cron": "not a cron"}, "repeat.cron"),
        ({"cron": "61 * * * *"}, "repeat.cron"),
        ({"cron": "0 * * * *", "tz": "Mars/Olympus"}, "repeat.tz"),
        ({"every": 0}, "repeat.every"),
        ({"every": -5}, "repeat.every"),
        ({"cron": "0 * * * *", "every": 1000}, "exactly one"),
        ({}, "exactly one"),
        ({"every": 1000, "limit": 0}, "repeat.limit"),
        ({"every": 1000, "end_date": "yesterday"}, "repeat.end_date"),
    ],
)
def test_bad_schedules_are_rejected(kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InvalidOptionsError, match=fragment):
        Repeat(**kwargs)
