"""Every page load reads bounded ranges: Redis's MONITOR shows what the pages asked for."""

from __future__ import annotations

import threading
import time
import urllib.request
from typing import Any

import redis
from tests.tools.dashboard.conftest import Harness

from pyqueue import Repeat
from pyqueue.tools.search import SLICE

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
RANGE_COMMANDS = ("LRANGE", "ZRANGE", "ZREVRANGE", "ZRANGEBYSCORE", "ZREVRANGEBYSCORE")
UNBOUNDED = ("KEYS", "SMEMBERS", "HKEYS", "HVALS", "SORT")


def _fail_odd(job: Any) -> Any:
    if job.data["n"] % 2:
        raise RuntimeError("odd")
    return job.data["n"]


def test_page_loads_read_bounded_ranges(harness: Harness, redis_url: str) -> None:
    worker = harness.start_worker("wide", _fail_odd)
    for n in range(120):
        harness.add("wide", {"n": n, "email": f"u{n}@example.com"})
    harness.wait_counts("wide", completed=60, failed=60)
    harness.stop_worker(worker)
    for n in range(250):
        harness.add("wide", {"n": n}, delay=3_600_000 if n % 5 == 0 else 0)
    harness.add("wide", {"kind": "tick"}, name="tick", repeat=Repeat(every=60_000))
    url = harness.serve()
    pages = [
        "/", "/api/overview", "/api/overview?queue=wide",
        *(f"/queue?name=wide&state={s}" for s in ("waiting", "completed", "failed", "delayed")),
        "/queue?name=wide&state=waiting&page=5", "/job?queue=wide&id=7", "/api/job?queue=wide&id=7",
        "/repeatable?name=wide", "/search?queue=wide&data_path=email&data_value=u7@example.com",
    ]
    _OPENER.open(url + "/", timeout=10).read()  # the queue scan, before watching

    seen: list[str] = []
    ready = threading.Event()
    stop = threading.Event()
    watcher = redis.Redis.from_url(redis_url)

    def listen() -> None:
        with watcher.monitor() as monitor:
            ready.set()
            for entry in monitor.listen():
                if stop.is_set():
                    return
                seen.append(str(entry["command"]))

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    assert ready.wait(5)
    time.sleep(0.2)
    for path in pages:
        with _OPENER.open(url + path, timeout=10) as response:
            assert response.status == 200, path
    stop.set()
    redis.Redis.from_url(redis_url).ping()  # one more command wakes the monitor
    thread.join(5)
    watcher.close()

    ours = [c for c in seen if harness.prefix in c]
    assert ours, "the pages read nothing?"
    ranges = [c.split() for c in ours if c.split()[0].upper() in RANGE_COMMANDS]
    assert len(ranges) >= len(pages) - 4
    for parts in ranges:
        command, _key, start, end = parts[0].upper(), parts[1], parts[2], parts[3]
        if command.endswith("BYSCORE"):
            assert "LIMIT" in (p.upper() for p in parts), parts
            continue
        low, high = int(start), int(end)
        assert high >= 0, f"unbounded read: {' '.join(parts)}"
        # Pages read 20 jobs, 100 for latency, 200 log lines; search a slice at a time.
        assert high - low < SLICE, f"range too wide: {' '.join(parts)}"
    assert not [c for c in seen if c.split()[0].upper() in UNBOUNDED]
    # Counts are O(1) reads, and the search went through its Lua script, slice by slice.
    assert any(c.split()[0].upper() in ("LLEN", "ZCARD") for c in ours)
    assert any(c.split()[0].upper() == "EVALSHA" for c in ours)
