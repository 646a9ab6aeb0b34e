"""The pure KEYS/ARGV builders and the script loader (pyqueue._protocol.bull.lua), without Redis."""

from __future__ import annotations

import re
from collections.abc import Callable
from importlib import resources

import pytest

from pyqueue._protocol.bull import lua
from pyqueue._protocol.bull import script_args as s
from pyqueue._protocol.bull import script_args_admin as admin
from pyqueue._protocol.bull.keys import QueueKeys

K = QueueKeys("bull", "q")
T = "tok"

BUILT: dict[str, Callable[[], s.ScriptArgs]] = {
    "addJobs": lambda: s.add_jobs_args(
        K,
        [s.AddJobSpec(job_id="", name="n", data="{}", opts="{}", timestamp=10,
                      delay=0, priority=0, lifo=False)],
        token=T,
    ),
    "addRepeatableJob": lambda: s.add_repeatable_job_args(
        K,
        s.AddJobSpec(job_id="repeat:x:1", name="n", data="{}", opts="{}", timestamp=10,
                     delay=0, priority=0, lifo=False),
        token=T, repeat_key="n:::1000", millis=1000, chain=False,
    ),
    "addJob": lambda: s.add_job_args(
        K, job_id="", name="n", data="{}", opts="{}", timestamp=10, delay=0, priority=0,
        lifo=False, token=T,
    ),
    "moveToActive": lambda: s.move_to_active_args(K, token=T, lock_duration=1, now=2),
    "moveToFinished": lambda: s.move_to_finished_args(
        K, "1", kind="completed", token=T, finished_on=5, value="null", keep_count=-1,
        keep_age=None, event_payload="{}", fetch_next=True, lock_duration=30,
    ),
    "moveToDelayed": lambda: s.move_to_delayed_args(K, "1", token=T, score=1),
    "retryJob": lambda: s.retry_job_args(K, "1", token=T, lifo=False),
    "moveStalledJobsToWait": lambda: s.move_stalled_jobs_to_wait_args(
        K, max_stalled_count=1, now=2, stalled_interval=3
    ),
    "extendLock": lambda: s.extend_lock_args(K, "1", token=T, duration=1),
    "takeLock": lambda: s.take_lock_args(K, "1", token=T, duration=1),
    "releaseLock": lambda: s.release_lock_args(K, "1", token=T),
    "updateDelaySet": lambda: s.update_delay_set_args(K, now=1, token=T),
    "promote": lambda: admin.promote_args(K, "1", token=T),
    "pause": lambda: admin.pause_args(K, paused=True),
    "removeJob": lambda: admin.remove_job_args(K, "1", token=T),
    "removeJobs": lambda: admin.remove_jobs_args(K, pattern="*", cursor="0"),
    "removeRepeatable": lambda: admin.remove_repeatable_args(
        K, id_prefix="repeat:x:", repeat_key="k"
    ),
    "updateProgress": lambda: admin.update_progress_args(
        K, "1", progress_json="1", event_payload="{}"
    ),
    "updateData": lambda: admin.update_data_args(K, "1", data_json="{}"),
    "cleanJobsInSet": lambda: admin.clean_jobs_in_set_args(
        K, "completed", max_timestamp=1, limit=0
    ),
    "obliterate": lambda: admin.obliterate_args(K, count=1000, force=True),
    "empty": lambda: admin.empty_args(K),
    "addLog": lambda: admin.add_log_args(K, "1", line="l"),
    "reprocessJob": lambda: admin.reprocess_job_args(K, "1", lifo=False, token=T, now=1),
    "retryJobs": lambda: admin.retry_jobs_args(K, count=1000),
    "isFinished": lambda: admin.is_finished_args(K, "1"),
    "getCountsPerPriority": lambda: admin.get_counts_per_priority_args(K, [0, 1]),
    "isJobInList": lambda: admin.is_job_in_list_args(K.wait, "1"),
    "abortJob": lambda: admin.abort_job_args(
        K, "1", reason="aborted", now=1, event_payload="{}", abort_payload="{}",
        abort_field="pqAbort", keep_json='{"count":-1}',
    ),
}


def test_every_script_file_is_listed() -> None:
    files = {
        p.name[: -len(".lua")]
        for p in resources.files("pyqueue._protocol.bull").joinpath("commands").iterdir()
        if p.name.endswith(".lua")
    }
    assert files == set(lua.SCRIPT_NAMES)
    # Bull's 25 commands + addJobs, addRepeatableJob, empty, and pyqueue's abortJob
    assert len(lua.SCRIPT_NAMES) == 29
    assert set(BUILT) == {name.rsplit("-", 1)[0] for name in lua.SCRIPT_NAMES}


@pytest.mark.parametrize("name", lua.SCRIPT_NAMES)
def test_sources_load_with_includes_resolved(name: str) -> None:
    source = lua.load_source(name)
    assert "@include" not in source
    assert source.lstrip().startswith("--[[")
    header = source.split("]]", 1)[0]
    assert "KEYS[1]" in header
    assert "Returns" in header
    assert "Publishes" in header
    # Each include is pulled in once, even when reached twice.
    for fn in re.findall(r"^local function (\w+)", source, flags=re.MULTILINE):
        assert source.count(f"local function {fn}(") == 1, fn
    assert lua.load_source(name.rsplit("-", 1)[0]) == source


@pytest.mark.parametrize("command", sorted(BUILT))
def test_key_counts_match_file_names(command: str) -> None:
    keys, _ = BUILT[command]()
    assert len(keys) == lua.numkeys(command)


def test_numkeys_and_unknown() -> None:
    assert lua.numkeys("removeJob") == 10
    assert lua.numkeys("removeJob-10") == 10
    with pytest.raises(KeyError):
        lua.numkeys("nope")
    with pytest.raises(KeyError):
        lua.load_source("nope")


def test_add_job_argument_order() -> None:
    keys, args = s.add_job_args(
        K, job_id="c", name="n", data='{"a":1}', opts='{"x":1}', timestamp=100, delay=50,
        priority=3, lifo=True, token=T,
    )
    assert keys == ["bull:q:wait", "bull:q:paused", "bull:q:meta-paused", "bull:q:id",
                    "bull:q:delayed", "bull:q:priority"]
    assert args == ["bull:q:", "c", "n", '{"a":1}', '{"x":1}', 100, 50, 150, 3, "RPUSH", T]
    _, args = s.add_job_args(
        K, job_id="", name="n", data="{}", opts="{}", timestamp=100, delay=-5, priority=0,
        lifo=False, token=T,
    )
    assert args[5:10] == [100, 0, 0, 0, "LPUSH"]


def test_move_to_active_arguments() -> None:
    keys, args = s.move_to_active_args(K, token=T, lock_duration=30000, now=7)
    assert keys == ["bull:q:wait", "bull:q:active", "bull:q:priority", "bull:q:active@tok",
                    "bull:q:stalled", "bull:q:limiter", "bull:q:delayed", "bull:q:drained"]
    assert args == ["bull:q:", T, 30000, 7, ""]
    _, args = s.move_to_active_args(
        K, token=T, lock_duration=1, now=2, job_id="9", limiter_max=2, limiter_duration=1000
    )
    assert args == ["bull:q:", T, 1, 2, "9", 2, 1000, "false"]
    _, args = s.move_to_active_args(
        K, token=T, lock_duration=1, now=2, limiter_max=2, limiter_duration=1000,
        bounce_back=True, group_key=True,
    )
    assert args[5:] == [2, 1000, "true", "true"]


def test_move_to_finished_arguments() -> None:
    keys, args = s.move_to_finished_args(
        K, "5", kind="failed", token=T, finished_on=9, value="boom", keep_count=10,
        keep_age=60, event_payload="{}", fetch_next=False, lock_duration=30,
        metrics_max_points=100, attempts_made=2, stacktrace='["e"]',
    )
    assert keys == ["bull:q:active", "bull:q:failed", "bull:q:5", "bull:q:wait",
                    "bull:q:priority", "bull:q:active@tok", "bull:q:delayed", "bull:q:stalled",
                    "bull:q:metrics:failed"]
    assert args == ["5", 9, "failedReason", "boom", T, '{"count":10,"age":60}', "{}", "0",
                    "bull:q:", 30, T, 100, 2, '["e"]']
    _, args = BUILT["moveToFinished"]()
    assert args[2] == "returnvalue"
    assert args[5] == '{"count":-1}'
    assert args[7] == "1"
    assert args[11] == ""
    assert len(args) == 12


def test_failed_attempt_arguments() -> None:
    _, args = s.move_to_delayed_args(K, "1", token=T, score=4096)
    assert args == [4096, "1", T]
    _, args = s.move_to_delayed_args(
        K, "1", token=T, score=4096, attempts_made=1, stacktrace="[]", failed_reason="r"
    )
    assert args == [4096, "1", T, 1, "[]", "r"]
    keys, args = s.retry_job_args(K, "1", token=T, lifo=True, attempts_made=2)
    assert keys == ["bull:q:active", "bull:q:wait", "bull:q:1", "bull:q:meta-paused",
                    "bull:q:paused", "bull:q:stalled", "bull:q:priority"]
    assert args == ["RPUSH", "1", T, 2, "", ""]


def test_pause_resume_keys() -> None:
    keys, args = admin.pause_args(K, paused=True)
    assert keys == ["bull:q:wait", "bull:q:paused", "bull:q:meta-paused", "bull:q:paused",
                    "bull:q:meta"]
    assert args == ["paused"]
    keys, args = admin.pause_args(K, paused=False)
    assert keys[:2] == ["bull:q:paused", "bull:q:wait"]
    assert keys[3] == "bull:q:resumed"
    assert args == ["resumed"]


def test_misc_argument_orders() -> None:
    assert s.move_stalled_jobs_to_wait_args(K, max_stalled_count=1, now=2, stalled_interval=3)[
        1
    ] == [1, "bull:q:", 2, 3]
    assert s.extend_lock_args(K, "1", token=T, duration=5) == (
        ["bull:q:1:lock", "bull:q:stalled"], [T, 5, "1"]
    )
    assert admin.remove_job_args(K, "1", token=T)[0][7:] == ["bull:q:1", "bull:q:1:logs",
                                                         "bull:q:limiter"]
    assert admin.remove_repeatable_args(K, id_prefix="p:", repeat_key="k") == (
        ["bull:q:repeat", "bull:q:delayed"], ["p:", "k", "bull:q:"]
    )
    assert admin.clean_jobs_in_set_args(K, "wait", max_timestamp=5, limit=2) == (
        ["bull:q:wait", "bull:q:priority", "bull:q:limiter"], ["bull:q:", 5, 2, "wait"]
    )
    assert admin.obliterate_args(K, count=10, force=False) == (
        ["bull:q:meta-paused", "bull:q:"], [10, ""]
    )
    assert admin.empty_args(K) == (
        ["bull:q:wait", "bull:q:paused", "bull:q:meta-paused", "bull:q:delayed",
         "bull:q:priority", "bull:q:limiter", "bull:q:limiter:index", "bull:q:meta"],
        ["bull:q:"],
    )
    assert admin.add_log_args(K, "1", line="l", keep_logs=3)[1] == ["1", "l", 3]
    assert admin.reprocess_job_args(K, "1", lifo=True, token=T, now=4)[1] == ["1", "RPUSH", T, 4]
    assert admin.retry_jobs_args(K, count=7)[0][0] == "bull:q:"
    assert admin.get_counts_per_priority_args(K, [0, 3])[1] == [0, 3]


@pytest.mark.parametrize(
    ("due", "job_id", "expected"),
    [
        (1000, "1", 1000 * 4096 + 1),
        (1000, "4097", 1000 * 4096 + 1),
        (1000, "abc", 1000 * 4096),
        (1000, "repeat:x:1", 1000 * 4096),
        (1000, "0x10", 1000 * 4096 + 16),
        (1000.5, "3", 1000 * 4096 + 2048 + 3),
        (0, "3", 0),
        (-1, "3", 0),
    ],
)
def test_delayed_score(due: float, job_id: str, expected: int) -> None:
    assert s.delayed_score(due, job_id) == expected
