"""Node-only sanity tests: the driver and NodeBull work against the private Redis.

No pyqueue code runs here; these prove the harness itself, for both Bull versions.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from tests.interop.bull import single

if TYPE_CHECKING:
    import redis
    from tests.interop.bull import NodeBull

FAST = {"stalledInterval": 500, "lockDuration": 1000, "guardInterval": 200, "drainDelay": 1}


def test_version_is_installed(node_bull: NodeBull, bull_version: str) -> None:
    assert node_bull.version == bull_version


def test_node_producer_node_worker(
    node_bull: NodeBull, bull_version: str, queue_name: str, sync_redis: redis.Redis
) -> None:
    ids = node_bull.add(queue_name, [{"data": {"a": 1}}, {"name": "named", "data": {"b": "x"}}])
    ids += node_bull.add(queue_name, [{"data": {"c": i}} for i in range(3)], bulk=True)
    assert ids == ["1", "2", "3", "4", "5"]
    assert sync_redis.lrange(f"bull:{queue_name}:wait", 0, -1) == [b"5", b"4", b"3", b"2", b"1"]

    events = node_bull.run(
        {
            "queue": queue_name,
            "action": "process",
            "until": 5,
            "timeoutMs": 15000,
            "settings": FAST,
            "behaviour": {"named": {"return": "str", "log": ["hello"]}, "*": {"return": {"ok": 1}}},
        }
    )
    processing = [e for e in events if e["event"] == "processing"]
    assert [e["id"] for e in processing] == ids  # FIFO, concurrency 1
    assert processing[1]["name"] == "named"
    assert processing[0]["data"] == {"a": 1}
    assert set(processing[0]["opts"]) == {"attempts", "delay", "timestamp"}
    completed = {e["id"]: e["result"] for e in events if e["event"] == "completed"}
    assert completed == {"1": {"ok": 1}, "2": "str", "3": {"ok": 1}, "4": {"ok": 1}, "5": {"ok": 1}}
    done = events[-1]
    assert done["event"] == "done"
    assert done["reason"] == "until"
    assert done["completed"] == 5

    counts = node_bull.counts(queue_name)
    assert counts["counts"] == {
        "waiting": 0,
        "active": 0,
        "completed": 5,
        "failed": 0,
        "delayed": 0,
        "paused": 0,
    }
    assert counts["isPaused"] is False

    (job,) = node_bull.get_jobs(queue_name, ["2"])
    assert job["state"] == "completed"
    assert job["json"]["returnvalue"] == "str"
    assert sync_redis.hget(f"bull:{queue_name}:2", "returnvalue") == b'"str"'
    logs = node_bull.admin(queue_name, "getJobLogs", id="2")
    assert logs == {**logs, "ok": True, "value": {"logs": ["hello"], "count": 1}}


def test_retries_and_custom_backoff(
    node_bull: NodeBull, bull_version: str, queue_name: str
) -> None:
    node_bull.add(
        queue_name,
        [
            {"name": "lin", "data": {}, "opts": {"attempts": 3, "backoff": {"type": "linear"}}},
            {"name": "never", "data": {}, "opts": {"attempts": 5, "backoff": {"type": "never"}}},
        ],
    )
    events = node_bull.run(
        {
            "queue": queue_name,
            "action": "process",
            "until": 2,
            "timeoutMs": 15000,
            "settings": FAST,
            "backoffStrategies": {"linear": {"multiplier": 100}, "never": {"value": -1}},
            "behaviour": {
                "lin": {"failTimes": 2, "message": "flaky", "return": 7},
                "never": {"fail": "no retry"},
            },
        }
    )
    failed = [e for e in events if e["event"] == "failed"]
    assert sorted((e["id"], e["final"], e["reason"]) for e in failed) == [
        ("1", False, "flaky"),
        ("1", False, "flaky"),
        ("2", True, "no retry"),
    ]
    runs = [e["t"] for e in events if e["event"] == "processing" and e["id"] == "1"]
    assert len(runs) == 3
    assert runs[1] - runs[0] >= 90  # attemptsMade(1) * 100
    assert runs[2] - runs[1] >= 190  # attemptsMade(2) * 100
    (lin, never) = node_bull.get_jobs(queue_name, ["1", "2"])
    assert lin["state"] == "completed"
    assert lin["json"]["returnvalue"] == 7
    assert never["state"] == "failed"
    assert never["json"]["attemptsMade"] == 1
    assert never["json"]["failedReason"] == "no retry"


def test_global_events(node_bull: NodeBull, bull_version: str, queue_name: str) -> None:
    listen = {"queue": queue_name, "action": "listen", "timeoutMs": 15000, "until": 6}
    with node_bull.start(listen) as listener:
        listener.wait_for("ready", timeout=10)
        node_bull.add(queue_name, [{"data": {"n": 1}}])
        node_bull.run(
            {
                "queue": queue_name,
                "action": "process",
                "until": 1,
                "settings": FAST,
                "behaviour": {"*": {"progress": [42], "return": {"ok": True}}},
            }
        )
        node_bull.admin(queue_name, "pause")
        node_bull.admin(queue_name, "resume")
        listener.wait_for("global:resumed", timeout=10)
        events = listener.wait(15)
    names = [e["event"] for e in events]
    assert names[0] == "ready"
    assert names[-1] == "done"
    seen = {e["event"]: e["args"] for e in events if e["event"].startswith("global:")}
    assert seen["global:waiting"][0] == "1"
    assert seen["global:active"] == ["1", "waiting"]
    assert seen["global:progress"] == ["1", 42]
    job_id, val, prev = seen["global:completed"]
    assert (job_id, prev) == ("1", "active")
    assert isinstance(val, str)
    assert json.loads(val) == {"ok": True}
    assert "global:paused" in seen


def test_pause_counts_and_finished(node_bull: NodeBull, bull_version: str, queue_name: str) -> None:
    assert node_bull.admin(queue_name, "pause")["ok"] is True
    node_bull.add(queue_name, [{"data": {"p": 1}}])
    counts = node_bull.counts(queue_name)
    assert counts["isPaused"] is True
    assert counts["counts"]["paused"] == 1
    assert counts["paused"] == 1
    assert node_bull.admin(queue_name, "resume")["ok"] is True

    worker = {
        "queue": queue_name,
        "action": "process",
        "until": 3,
        "timeoutMs": 20000,
        "settings": FAST,
        "behaviour": {"ok": {"return": [1, "two"]}, "bad": {"fail": "nope"}, "*": {}},
    }
    with node_bull.start(worker) as proc:
        proc.wait_for("ready")
        ok = node_bull.run(
            {"queue": queue_name, "action": "finished", "job": {"name": "ok", "data": {}}}
        )
        assert single(ok, "finished") == {**single(ok, "finished"), "ok": True, "value": [1, "two"]}
        bad = node_bull.run(
            {"queue": queue_name, "action": "finished", "job": {"name": "bad", "data": {}}}
        )
        assert single(bad, "finished") == {**single(bad, "finished"), "ok": False, "error": "nope"}
        done = proc.wait_for("done", timeout=10)
    assert done == {**done, "reason": "until", "completed": 2, "finalFailed": 1}
    if node_bull.has("getCountsPerPriority"):
        per_priority = node_bull.admin(queue_name, "getCountsPerPriority", priorities=[0, 1])
        assert per_priority["value"] == {"0": 0, "1": 0}
    else:  # added in 4.13
        assert node_bull.admin(queue_name, "getCountsPerPriority", priorities=[0])["ok"] is False


def test_kill_then_stall_recovery(
    node_bull: NodeBull, bull_version: str, queue_name: str, sync_redis: redis.Redis
) -> None:
    node_bull.add(queue_name, [{"data": {"k": 1}}])
    hang = {
        "queue": queue_name,
        "action": "process",
        "settings": FAST,
        "timeoutMs": 20000,
        "behaviour": {"*": {"hang": True}},
    }
    with node_bull.start(hang) as victim:
        victim.wait_for("processing", id="1")
        victim.kill()
    assert victim.proc.returncode == -9
    assert sync_redis.lrange(f"bull:{queue_name}:active", 0, -1) == [b"1"]

    events = node_bull.run(
        {
            "queue": queue_name,
            "action": "process",
            "until": 1,
            "timeoutMs": 15000,
            "settings": FAST,
            "behaviour": {"*": {"return": "recovered"}},
        }
    )
    assert any(e["event"] == "stalled" and e["id"] == "1" for e in events)
    assert single(events, "completed")["result"] == "recovered"
    (job,) = node_bull.get_jobs(queue_name, ["1"])
    assert job["state"] == "completed"
    assert sync_redis.hget(f"bull:{queue_name}:1", "stalledCounter") == b"1"
