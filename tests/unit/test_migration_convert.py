"""The migration's pure parts, without Redis: option and id conversions, schedule
plans, key names, script builders and their key counts, the cut-over plan."""

from __future__ import annotations

import re
from importlib import resources

import pytest

from pyqueue import InvalidOptionsError
from pyqueue._protocol.bull.keys import QueueKeys
from pyqueue._protocol.bullmq.keys import BullMQKeys
from pyqueue._protocol.migration import lua
from pyqueue._protocol.migration import script_args as sa
from pyqueue._protocol.migration.convert import (
    NOTE_EXPONENTIAL,
    NOTE_PREVENT_PARSING,
    NOTE_PRIORITY,
    NOTE_TIMEOUT,
    BullSchedule,
    bullmq_options,
    convert_job,
    id_candidate,
    parse_repeat_key,
    schedule_plan,
    scheduler_id_base,
)
from pyqueue._protocol.migration.keys import MigrationKeys
from pyqueue._protocol.migration.schedules import instance_prefix
from pyqueue.migrate import Fleet, cutover_plan
from pyqueue.repeat import Repeat


def test_options_take_bullmqs_names() -> None:
    opts, notes = bullmq_options({
        "attempts": 3, "backoff": 2000, "delay": 0, "timestamp": 5, "timeout": 60_000,
        "removeOnComplete": True, "removeOnFail": {"count": 5}, "lifo": True,
        "debounce": {"id": "d", "ttl": 100}, "stackTraceLimit": 3, "custom": [1],
    })
    assert opts == {
        "attempts": 3, "backoff": {"type": "fixed", "delay": 2000}, "delay": 0, "timestamp": 5,
        "removeOnComplete": True, "removeOnFail": {"count": 5}, "lifo": True,
        "de": {"id": "d", "ttl": 100}, "stackTraceLimit": 3, "custom": [1],
    }
    assert notes == (NOTE_TIMEOUT,)
    _, notes = bullmq_options({"backoff": {"type": "exponential", "delay": 10},
                               "preventParsingData": True, "priority": 2**22})
    assert set(notes) == {NOTE_EXPONENTIAL, NOTE_PREVENT_PARSING, NOTE_PRIORITY}


def test_repeat_options_take_the_iteration_shape() -> None:
    opts, _ = bullmq_options({"repeat": {
        "count": 4, "key": "n:id::Europe/Berlin:0 * * * *", "cron": "0 * * * *",
        "tz": "Europe/Berlin", "jobId": "id", "startDate": "2030-01-01T00:00:00.000Z",
        "endDate": 4070908800000, "limit": 9}})
    assert opts["repeat"] == {"pattern": "0 * * * *", "startDate": 1893456000000,
                              "tz": "Europe/Berlin", "endDate": 4070908800000, "limit": 9,
                              "count": 4}


@pytest.mark.parametrize(("job_id", "opts", "mode", "new_id"), [
    ("17", {}, "auto", "17"),
    ("order-1", {"jobId": "order-1"}, "keep", "order-1"),
    ("12345", {"jobId": "12345"}, "map", "bull-12345"),
    ("12345", {"jobId": 12345}, "map", "bull-12345"),
    ("a:b", {"jobId": "a:b"}, "map", "a-b"),
    ("a:b:c", {"jobId": "a:b:c"}, "keep", "a:b:c"),
    ("wait", {"jobId": "wait"}, "map", "bull-wait"),
    ("0", {"jobId": "0"}, "map", "bull-0"),
    ("de:x", {"jobId": "de:x"}, "map", "de-x"),
])
def test_ids_bullmq_refuses_are_mapped(job_id: str, opts: dict[str, object], mode: str,
                                       new_id: str) -> None:
    c = convert_job(job_id, opts, 0)
    assert (c.id_mode, c.new_id) == (mode, new_id)
    if "jobId" in opts:
        assert c.opts["jobId"] == new_id


def test_id_candidates_are_valid_and_distinct() -> None:
    seen = {id_candidate("7", n) for n in range(5)}
    assert seen == {"bull-7", "bull-7-2", "bull-7-3", "bull-7-4", "bull-7-5"}
    assert convert_job("repeat:abc:5", {"jobId": "repeat:abc:5"}, 0,
                       iteration_id="repeat:s:5").new_id == "repeat:s:5"


def test_priority_is_bounded_to_bullmqs() -> None:
    c = convert_job("1", {"priority": 2**25}, 2**25)
    assert c.priority == 2**21 - 1
    assert NOTE_PRIORITY in c.notes


def test_repeat_keys_and_instance_ids_follow_bull() -> None:
    repeat = Repeat(cron="*/5 * * * *", tz="Europe/Berlin", job_id="myid")
    key = repeat.key("rep")
    assert parse_repeat_key(key) == ("rep", {"jobId": "myid", "tz": "Europe/Berlin",
                                             "cron": "*/5 * * * *"})
    assert instance_prefix("rep", "myid", key) == repeat.id_prefix("rep")
    assert parse_repeat_key("rep:::2000") == ("rep", {"every": 2000})
    # Bull's spec example: name rep, key rep:::2000.
    assert instance_prefix("rep", None, "rep:::2000") == \
        "repeat:08c3ade290fda9c08fdf79f21f126f41:"


def test_scheduler_ids() -> None:
    assert scheduler_id_base("__default__", {"jobId": "square-sync-1"}, "q") == "square-sync-1"
    assert scheduler_id_base("digest", {}, "q") == "digest"
    assert scheduler_id_base("__default__", {}, "order-digest") == "order-digest"
    assert scheduler_id_base("a:b", {}, "q") == "a-b"


def test_schedule_plan_keeps_the_next_run_and_the_template() -> None:
    schedule = BullSchedule(
        key="__default__:r:::0 6 * * *", next_millis=1_900_000_000_000, name="__default__",
        repeat={"cron": "0 6 * * *", "jobId": "r", "count": 3, "key": "x"},
        data='{"type":"daily"}',
        opts={"attempts": 2, "repeat": {"cron": "0 6 * * *"}, "jobId": "repeat:x:1",
              "delay": 5, "timestamp": 1, "prevMillis": 1, "removeOnComplete": True})
    plan = schedule_plan(schedule, "r", now=1_000)
    assert plan.next_millis == 1_900_000_000_000
    assert plan.count == 3
    assert plan.template_opts == {"attempts": 2, "removeOnComplete": True}
    assert plan.iteration_opts["repeat"] == {"pattern": "0 6 * * *", "count": 3}
    assert plan.iteration_opts["prevMillis"] == 1_900_000_000_000
    assert plan.iteration_opts["repeatJobKey"] == "r"
    every = schedule_plan(BullSchedule(key="n:::60000", next_millis=120_000, name="n",
                                       repeat={"every": 60000, "startDate": 5}), "n", now=1)
    assert every.repeat.start_date is None
    assert every.repeat.offset is None


def test_keys() -> None:
    copy = MigrationKeys(QueueKeys("bull", "q"), BullMQKeys("bmq", "q"))
    assert not copy.in_place
    assert copy.bull.wait == "bull:q:wait"
    assert copy.ids == "bmq:q:pq-migrate:ids"
    same = MigrationKeys(QueueKeys("bull", "q"), BullMQKeys("bull", "q"))
    assert same.in_place
    assert same.bull.wait == "bull:q:pq-migrate:src:wait"
    assert same.bull.active == "bull:q:active"
    assert same.bull.state_key("delayed") == "bull:q:pq-migrate:src:delayed"


def test_builders_match_their_scripts() -> None:
    mk = MigrationKeys(QueueKeys("bull", "q"), BullMQKeys("bmq", "q"))
    move = sa.JobMove("1", "1", "auto", "{}", 0, False, None, "")
    keys, args = sa.migrate_jobs_args(mk, "wait", [move, move], now=1, stall_grace=2,
                                      max_stalled=1)
    assert len(args) == 6 + 2 * sa.ARGS_PER_JOB
    assert keys[0] == "bull:q:wait"
    assert keys[-1] == "bull:q:id"
    sa.begin_args(mk, now=1)
    sa.finish_args(mk, now=1)
    with pytest.raises(ValueError, match="unknown Bull state"):
        sa.migrate_jobs_args(mk, "prioritized", [move], now=1, stall_grace=1, max_stalled=1)


def test_every_script_has_a_header_and_its_includes() -> None:
    folder = resources.files("pyqueue._protocol.migration").joinpath("commands")
    files = sorted(p.name for p in folder.iterdir() if p.name.endswith(".lua"))
    assert files == sorted(f"{n}.lua" for n in lua.SCRIPT_NAMES)
    for name in lua.SCRIPT_NAMES:
        text = folder.joinpath(f"{name}.lua").read_text()
        header = text.split("]]", 1)[0]
        for part in ("KEYS[1]", "ARGV[1]", "Returns", "Events"):
            assert part in header, (name, part)
        assert len(re.findall(r"KEYS\[(\d+)\]", header)) >= 1
        assert "@include" not in lua.load_source(name)


def test_cutover_plan_walks_a_fleet() -> None:
    fleet = Fleet(node_producers=["api", "cron"], node_workers=["node-worker"],
                  python_workers=["py-worker"])
    steps = cutover_plan(["notifications", "order-digest"], fleet=fleet, to_prefix="bmq")
    text = "\n".join(steps)
    assert steps[0].startswith("1. ")
    assert text.index("py-worker") < text.index("--follow") < text.index("Switch api")
    assert text.index("Switch api") < text.index("Switch cron") < text.index("Retire")
    assert ("pyqueue migrate notifications order-digest --from bull --to bullmq --to-prefix "
            "bmq --follow --yes") in text
    in_place = "\n".join(cutover_plan(["q"], fleet=fleet))
    assert "Stop the Bull fleet (api, cron, node-worker, py-worker)" in in_place
    with pytest.raises(InvalidOptionsError, match="to_name"):
        cutover_plan(["a", "b"], fleet=fleet, to_name="x")
    with pytest.raises(InvalidOptionsError, match="node_producers"):
        Fleet(node_producers="api")
