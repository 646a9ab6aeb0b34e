"""BullMQ mode's pure KEYS/ARGV builders, without Redis."""

from __future__ import annotations

import re

import pytest

from pyqueue._protocol.bullmq import lua
from pyqueue._protocol.bullmq import script_args as sa
from pyqueue._protocol.bullmq import script_args_admin as adm
from pyqueue._protocol.bullmq.keys import BullMQKeys, split_job_key
from pyqueue._protocol.interface import Attempt, Dedup, Keep, NewJob, ParentRef, WorkerSpec

K = BullMQKeys("bull", "q")
W = WorkerSpec(lock_duration=30_000, limiter_max=10, limiter_duration=1000, name="w1",
               metrics_max_points=60)


def _job(**kw: object) -> NewJob:
    base: dict[str, object] = {"job_id": "", "name": "n", "data": "{}",
                               "opts": '{"attempts":0}', "timestamp": 5}
    return NewJob(**{**base, **kw})  # type: ignore[arg-type]


def test_keys_follow_bullmqs_layout() -> None:
    assert K.base == "bull:q:"
    assert K.qualified_name == "bull:q"
    assert (K.wait, K.active, K.prioritized, K.priority_counter, K.marker, K.events) == (
        "bull:q:wait", "bull:q:active", "bull:q:prioritized", "bull:q:pc", "bull:q:marker",
        "bull:q:events",
    )
    assert K.waiting_children == "bull:q:waiting-children"
    assert K.dedup("x") == "bull:q:de:x"
    assert K.dedup_next("x") == "bull:q:dn:x"
    assert K.scheduler("s") == "bull:q:repeat:s"
    assert K.lock("7") == "bull:q:7:lock"
    assert K.dependencies("7") == "bull:q:7:dependencies"
    assert K.worker_client_name == "bull:cQ=="
    assert K.named_worker_client_name("w") == "bull:cQ==:w:w"
    assert K.events_client_name == "bull:cQ==:qe"
    assert split_job_key("bull:q:repeat:s:17") == ("bull:q:repeat:s:", "17")


def test_every_builder_matches_its_scripts_key_count() -> None:
    built = [
        sa.add_job_args(K, _job()), sa.add_jobs_args(K, [_job(), _job()]),
        sa.move_to_active_args(K, token="t", worker=W, now=1),
        sa.move_to_finished_args(K, "1", kind="completed", token="t", now=1, value="1",
                                 keep=Keep(-1), worker=W, max_attempts=0, fetch_next=True),
        sa.move_to_delayed_args(K, "1", token="t", now=1, delay=5),
        sa.retry_job_args(K, "1", token="t", now=1, lifo=False),
        sa.release_args(K, "1", token="t"), sa.extend_lock_args(K, "1", token="t", duration=5),
        sa.extend_locks_args(K, ["1"], ["t"], 5),
        sa.stalled_args(K, max_stalled_count=1, now=1, interval=5),
        adm.pause_args(K, paused=True), adm.promote_args(K, "1"),
        adm.change_priority_args(K, "1", priority=2, lifo=False),
        adm.change_delay_args(K, "1", delay=5, now=1),
        adm.remove_job_args(K, "1", with_children=True),
        adm.reprocess_args(K, "1", state="failed", lifo=False),
        adm.move_jobs_to_wait_args(K, state="failed", count=5, up_to=1),
        adm.clean_args(K, "waiting", max_timestamp=1, limit=0),
        adm.drain_args(K, delayed=True), adm.obliterate_args(K, count=5, force=False),
        adm.update_progress_args(K, "1", progress_json="1"),
        adm.add_log_args(K, "1", line="x", keep_logs=None),
        adm.update_data_args(K, "1", data_json="{}"), adm.get_counts_args(K, ["waiting"]),
        adm.get_state_args(K, "1"), adm.is_finished_args(K, "1"),
        adm.remove_dedup_args(K, "d", "1"), adm.counts_per_priority_args(K, [0, 1]),
        adm.promote_delayed_args(K, now=1),
        adm.add_scheduler_args(K, "s", now=1, next_millis=None, name="n", data_json="{}",
                               template_json="{}", iteration_json="{}", every=5, pattern=None,
                               tz=None, limit=None, start_date=None, end_date=None, offset=3),
        adm.update_scheduler_args(K, "s", now=1, next_millis=9, producer_id="repeat:s:1",
                                  iteration_json="{}"),
        adm.remove_scheduler_args(K, "s"),
    ]
    assert len(built) == len(lua.SCRIPT_NAMES)  # one builder (at least) per script
    for keys, _ in built:
        assert all(k.startswith("bull:q:") for k in keys)


def test_checked_refuses_a_wrong_key_count() -> None:
    with pytest.raises(AssertionError, match="moveToActive takes 9 keys, got 1"):
        sa.checked("moveToActive", ["x"], [])


def test_add_argv_describes_one_job_in_eighteen_arguments() -> None:
    job = _job(job_id="my-id", delay=-5, priority=3, lifo=True,
               dedup=Dedup(id="d", ttl=100, extend=True, keep_last_if_active=True),
               parent=ParentRef(id="p1", queue="bull:parents", on_failure="ignore"),
               waiting_children=True)
    argv = sa.add_argv(K.base, job)
    assert len(argv) == sa.ADD_ARGS_PER_JOB
    assert argv == [
        "bull:q:", "my-id", "n", 5, "{}", '{"attempts":0}', 0, 3, "1", "bull:parents:p1",
        '{"id":"p1","queueKey":"bull:parents","idof":true}', "bull:parents:p1:dependencies",
        "", "d", 100, "ek", "1", "0",
    ]
    _, many = sa.add_jobs_args(K, [job, _job()])
    assert len(many) == 2 * sa.ADD_ARGS_PER_JOB


@pytest.mark.parametrize(
    ("dedup", "flags"),
    [(None, ""), (Dedup(id="x"), ""), (Dedup(id="x", replace=True, reschedule=True), "rs")],
)
def test_dedup_flags(dedup: Dedup | None, flags: str) -> None:
    assert sa.dedup_flags(_job(dedup=dedup)) == flags


def test_finishing_arguments_carry_the_worker_and_the_attempt() -> None:
    keys, argv = sa.move_to_finished_args(
        K, "9", kind="failed", token="t", now=100, value="why", keep=Keep(3, 60, 50),
        worker=W, max_attempts=2, fetch_next=True, next_token="t2",
        attempt=Attempt(1, "why", '["stack"]'),
    )
    assert keys[9:] == ["bull:q:stalled", "bull:q:failed", "bull:q:9", "bull:q:metrics:failed"]
    assert argv == [
        "bull:q:", "9", 100, "t", "failed", "why", 3, 60, 50, 60, 2, "1", 30_000, 10, 1000,
        "w1", "t2", "failedReason", "why", "stacktrace", '["stack"]',
    ]
    _, plain = sa.move_to_finished_args(
        K, "9", kind="completed", token="t", now=1, value="null", keep=Keep(-1),
        worker=WorkerSpec(lock_duration=5), max_attempts=0, fetch_next=False)
    assert plain[6:] == [-1, "", "", "", 0, "0", 5, "", "", "", ""]


def test_delays_and_retries() -> None:
    _, argv = sa.move_to_delayed_args(K, "1", token="t", now=10, delay=-3, count_attempt=False)
    assert argv[4:7] == [0, "1", "0"]
    _, fetching = sa.move_to_delayed_args(K, "1", token="t", now=10, delay=5, worker=W)
    assert fetching[6:12] == ["1", 30_000, 10, 1000, "w1", ""]
    assert sa.retry_job_args(K, "1", token="t", now=1, lifo=True)[1][4] == "RPUSH"
    assert sa.retry_job_args(K, "1", token="t", now=1, lifo=False)[1][4] == "LPUSH"


def test_extend_locks_pairs_ids_with_their_tokens() -> None:
    keys, argv = sa.extend_locks_args(K, ["1", "2"], ["a", "b"], 30_000)
    assert (keys, argv) == (["bull:q:stalled"], ["bull:q:", 30_000, "1", "a", "2", "b"])
    with pytest.raises(ValueError, match="2 ids but 1 tokens"):
        sa.extend_locks_args(K, ["1", "2"], ["a"], 5)


def test_scheduler_arguments() -> None:
    _, argv = adm.add_scheduler_args(
        K, "s", now=1, next_millis=None, name="n", data_json="{}", template_json="{}",
        iteration_json="{}", every=None, pattern="* * * * *", tz="UTC", limit=3, start_date=None,
        end_date=9, offset=7)
    # An offset only travels with `every`, as BullMQ's JobScheduler sends it.
    assert argv == ["bull:q:", "s", 1, "", "n", "{}", "{}", "{}", "", "* * * * *", "UTC", 3, "",
                    9, ""]
    _, argv = adm.update_scheduler_args(K, "s", now=1, next_millis=None, producer_id="p",
                                        iteration_json="{}")
    assert argv == ["bull:q:", "s", 1, "", "p", "{}"]


def test_state_names() -> None:
    assert adm.get_counts_args(K, ["waiting", "paused", "active"])[1] == [
        "wait", "paused", "active",
    ]
    assert adm.clean_args(K, "waiting", max_timestamp=1, limit=0)[0][0] == "bull:q:wait"
    assert adm.move_jobs_to_wait_args(K, state="delayed", count=1, up_to="+inf")[1] == [
        "bull:q:", 1, "+inf", "delayed",
    ]


_CALL = re.compile(r"(?<![\w.:])([A-Za-z_]\w*)\s*\(")
_DEFINED = re.compile(r"local\s+function\s+(\w+)|local\s+(\w+)|^(\w+)\s*=\s*function",
                      re.MULTILINE)
_BLOCK_COMMENT = re.compile(r"--\[\[.*?\]\]", re.DOTALL)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BUILTINS = {
    "tonumber", "tostring", "ipairs", "pairs", "unpack", "type", "function", "if", "elseif",
    "return", "and", "or", "not", "while", "for", "until", "select", "error", "pcall",
}


@pytest.mark.parametrize("name", lua.SCRIPT_NAMES)
def test_every_function_a_script_calls_is_defined_in_it(name: str) -> None:
    source = _STRING.sub('""', _BLOCK_COMMENT.sub("", lua.load_source(name)))
    code = "\n".join(line.split("--", 1)[0] for line in source.splitlines())
    defined = {next(g for g in m.groups() if g) for m in _DEFINED.finditer(code)}
    called = set(_CALL.findall(code)) - _BUILTINS
    assert called <= defined, f"{name} calls undefined {sorted(called - defined)}"


@pytest.mark.parametrize("name", lua.SCRIPT_NAMES)
def test_every_script_opens_with_its_header(name: str) -> None:
    text = (lua.resources.files("pyqueue._protocol.bullmq") / "commands" / f"{name}.lua"
            ).read_text()
    assert text.startswith("--[[")
    header = text.split("]]", 1)[0]
    assert "Returns" in header or "returns" in header.lower()
    for i in range(1, lua.numkeys(name) + 1):
        assert f"KEYS[{i}]" in header, f"{name}: KEYS[{i}] is not described"
