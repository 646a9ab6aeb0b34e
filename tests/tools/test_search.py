"""search_jobs on real Redis: each filter, the cursor, bad input, and a Node-made queue."""

from __future__ import annotations

from typing import Any

import pytest
from tests.interop.bull import NodeBull

from pyqueue import BulkJob, InvalidOptionsError, JobOptions, Queue, Worker, WorkerOptions
from pyqueue.tools import search as search_module
from pyqueue.tools.search import SearchPage, parse_path, search_jobs

FAST = WorkerOptions(drain_delay=1, guard_interval=200, stalled_interval=0, shutdown_grace=5)


async def _all(queue: Queue[Any], **filters: Any) -> list[str]:
    """Every matching id, following the cursor to the end."""
    ids: list[str] = []
    cursor = "0"
    while True:
        page = await search_jobs(queue, cursor=cursor, **filters)
        ids.extend(j.id for j in page.jobs)
        cursor = page.cursor
        if cursor == "0":
            return ids


@pytest.fixture
async def shop(redis_url: str, queue_name: str) -> Any:
    """A queue with waiting, delayed and failed jobs of known content."""
    async with Queue(queue_name, redis_url) as queue:
        await queue.add({"user": {"id": 7, "email": "Ann@Example.com"}, "items": [{"sku": "B-1"}]},
                        name="email", job_id="e1")
        await queue.add({"user": {"id": 8, "email": "bob@example.com"}, "items": []},
                        name="email", job_id="e2")
        await queue.add({"user": {"id": 7}, "total": 12.5}, name="charge", job_id="c1")
        await queue.add({"user": {"id": 9}, "note": None}, name="charge", job_id="c2",
                        delay=3_600_000)
        await queue.add({"user": {"id": 10}}, name="charge", job_id="c3")

        def handler(job: Any) -> None:
            if job.id == "c3":
                raise RuntimeError("Card DECLINED by bank")

        worker = Worker(queue, {"charge": handler, "*": handler}, options=FAST)
        async with worker:
            done = 0
            async for _ in worker.events("completed", "failed"):
                done += 1
                if done == 4:
                    break
        await queue.add({"user": {"id": 11}, "tags": ["vip", "new"]}, name="email", job_id="e3")
        yield queue


async def test_each_filter(shop: Queue[Any]) -> None:
    assert sorted(await _all(shop, name="email")) == ["e1", "e2", "e3"]
    assert await _all(shop, id="c3") == ["c3"]
    assert await _all(shop, id="nope") == []
    assert sorted(await _all(shop, data_path="user.id", data_value=7)) == ["c1", "e1"]
    assert await _all(shop, data_path="items[0].sku", data_value="B-1") == ["e1"]
    assert await _all(shop, data_path="$.items.0.sku", data_value="B-1") == ["e1"]
    assert await _all(shop, data_path="tags", data_value=["vip", "new"]) == ["e3"]
    assert await _all(shop, data_path="total") == ["c1"]
    # A path whose value is null does not "exist".
    assert await _all(shop, data_path="note") == []
    assert await _all(shop, text="ann@example") == ["e1"]
    assert await _all(shop, failed_reason="card declined") == ["c3"]
    # Filters combine with AND.
    assert await _all(shop, name="email", data_path="user.id", data_value=7) == ["e1"]
    assert await _all(shop, name="charge", text="ann") == []


async def test_state_restricts_and_orders(shop: Queue[Any]) -> None:
    assert await _all(shop, state="delayed") == ["c2"]
    assert await _all(shop, state="failed") == ["c3"]
    assert sorted(await _all(shop, state="completed")) == ["c1", "e1", "e2"]
    assert await _all(shop, state="waiting") == ["e3"]
    assert await _all(shop, state="completed", id="c3") == []
    assert await _all(shop, state="failed", id="c3") == ["c3"]
    # Without a state, failed jobs come first.
    page = await search_jobs(shop, count=1)
    assert [j.id for j in page.jobs] == ["c3"]
    assert page.cursor != "0"


async def test_returns_full_jobs(shop: Queue[Any]) -> None:
    page = await search_jobs(shop, failed_reason="declined")
    assert isinstance(page, SearchPage)
    (job,) = page.jobs
    assert job.name == "charge"
    assert job.data == {"user": {"id": 10}}
    assert job.failed_reason == "Card DECLINED by bank"
    assert page.cursor == "0"


async def test_cursor_pages_through_everything_once(
    redis_url: str, queue_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small slices, so the walk crosses many slice and state boundaries.
    monkeypatch.setattr(search_module, "SLICE", 7)
    async with Queue(queue_name, redis_url) as queue:
        await queue.add_bulk(
            BulkJob({"n": n, "even": n % 2 == 0}, name="n", options=JobOptions(job_id=f"j{n}"))
            for n in range(300)
        )
        await queue.add_bulk(
            BulkJob({"n": n, "even": n % 2 == 0}, options=JobOptions(job_id=f"d{n}", delay=60_000))
            for n in range(300, 350)
        )
        pages = 0
        cursor, found = "0", []
        while True:
            page = await search_jobs(queue, data_path="even", data_value=True, count=10,
                                     cursor=cursor)
            assert len(page.jobs) <= 10
            found.extend(j.id for j in page.jobs)
            pages += 1
            cursor = page.cursor
            if cursor == "0":
                break
        expected = {f"j{n}" for n in range(0, 300, 2)} | {f"d{n}" for n in range(300, 350, 2)}
        assert sorted(found) == sorted(expected)
        assert len(found) == len(expected)
        assert pages >= len(expected) // 10


async def test_max_examined_bounds_one_page(redis_url: str, queue_name: str) -> None:
    async with Queue(queue_name, redis_url) as queue:
        await queue.add_bulk(BulkJob({"n": n}) for n in range(2500))
        await queue.add({"needle": True}, name="rare")  # newest: first in the wait list
        await queue.add_bulk(BulkJob({"n": n}) for n in range(10))
        page = await search_jobs(queue, name="missing", max_examined=1000)
        assert page.jobs == []
        assert page.examined == 1000
        assert page.cursor != "0"
        assert [j.name for j in (await search_jobs(queue, name="rare")).jobs] == ["rare"]
        assert await _all(queue, name="missing") == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"state": "wait"}, "state: must be one of"),
        ({"count": 0}, "count: must be an int >= 1"),
        ({"data_value": 3}, "data_value: needs data_path"),
        ({"data_path": "a..b"}, "data_path: not a dotted path"),
        ({"cursor": "banana"}, "cursor: not a cursor"),
        ({"cursor": "9.0", "state": "failed"}, "cursor: not a cursor"),
    ],
)
async def test_bad_input(
    redis_url: str, queue_name: str, kwargs: dict[str, Any], message: str
) -> None:
    async with Queue(queue_name, redis_url) as queue:
        with pytest.raises(InvalidOptionsError, match=message):
            await search_jobs(queue, **kwargs)


def test_parse_path() -> None:
    assert parse_path("a.b[2].c") == ["a", "b", "2", "c"]
    assert parse_path("$.x") == ["x"]
    with pytest.raises(InvalidOptionsError):
        parse_path("")


async def test_node_bull_queue(node_bull: NodeBull, redis_url: str, queue_name: str) -> None:
    node_bull.add(queue_name, [
        {"name": "email", "data": {"to": "zoe@example.com", "order": {"id": 41}}},
        {"name": "email", "data": {"to": "yan@example.com", "order": {"id": 42}}},
        {"name": "charge", "data": {"order": {"id": 42}}, "opts": {"jobId": "pay-42"}},
        {"name": "later", "data": {"x": 1}, "opts": {"delay": 3_600_000}},
    ])
    await node_bull.arun({
        "queue": queue_name, "action": "process", "until": 3,
        "behaviour": {"charge": {"fail": "insufficient funds"}, "*": {"return": "ok"}},
        "settings": {"stalledInterval": 5000, "guardInterval": 200, "drainDelay": 1},
    })
    async with Queue(queue_name, redis_url) as queue:
        failed = (await search_jobs(queue, failed_reason="INSUFFICIENT")).jobs
        assert [j.id for j in failed] == ["pay-42"]
        assert failed[0].failed_reason == "insufficient funds"
        orders = await _all(queue, data_path="order.id", data_value=42)
        assert sorted(orders) == sorted(["pay-42", (await _all(queue, text="yan@"))[0]])
        assert len(await _all(queue, name="email", state="completed")) == 2
        assert [j.name for j in (await search_jobs(queue, state="delayed")).jobs] == ["later"]


def test_the_benchmark_script_runs() -> None:
    """benchmarks/search.py on a small queue, so the script cannot rot (no timing asserted)."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "search.py"
    done = subprocess.run([sys.executable, str(script), "--n", "2000"], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "filled 2,000 jobs" in done.stdout
    lines = {line.split("  ")[0] for line in done.stdout.splitlines()}
    assert "name == charge" in lines
    assert "failed reason 'code 9)'" in lines
    found = {line.split("  ")[0]: line for line in done.stdout.splitlines()}
    # Jobs 9, 59, 109, ...: one in 50 failed with "code 9)".
    assert "      40 found" in found["failed reason 'code 9)'"]
